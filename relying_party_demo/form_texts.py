"""The demo relying party's words: gettext msgids (English) looked up by key.

The Japanese and English wording is in ``relying_party_demo/translations/{ja,en}``, compiled at
start into the instance directory like the provider's (the demo never imports ``idp``: it is a
separate client). Japanese first; ``?lang=en`` switches (remembered in the session and the
``rp_lang`` cookie), else the browser's ``Accept-Language``.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Final
from urllib.parse import urlencode

from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, Response, request
from flask_babel import Babel, force_locale, get_locale, gettext

__all__ = ["CATALOGS", "MESSAGES", "N_", "init_app", "text"]

CATALOGS: Final = Path(__file__).resolve().parent / "translations"
LOCALES: Final = ("ja", "en")
COOKIE: Final = "rp_lang"
LANGUAGE_NAMES: Final = {"ja": "日本語", "en": "English"}


def N_(msgid: str) -> str:
    """Mark ``msgid`` for extraction; translated where it is shown."""
    return msgid


MESSAGES: Final[dict[str, str]] = {
    "forms": N_("Online forms"),
    "start": N_("Sign in with the My Number card to apply"),
    "badge": N_("Verified with the My Number card"),
    "verified_at": N_("Verified at"),
    "name": N_("Name"),
    "address": N_("Address"),
    "birthdate": N_("Date of birth"),
    "gender": N_("Sex"),
    "male": N_("male"),
    "female": N_("female"),
    "other": N_("other / unknown"),
    "required": N_("required"),
    "to_review": N_("Review"),
    "review": N_("Review your application"),
    "edit": N_("Edit"),
    "sign_submit": N_("Sign with the card and submit"),
    "sign_note": N_(
        "Pressing the button signs the application with your My Number card's signature "
        "certificate (signature password) on your phone."
    ),
    "submitted": N_("Your application was received"),
    "submission_id": N_("Submission number"),
    "signer": N_("Signer"),
    "signed_at": N_("Signed at"),
    "signature_ok": N_("Signature verified"),
    "error": N_("The application could not be submitted"),
    "revoked": N_(
        "Your signature certificate is revoked: your registered details may have changed. "
        "Please renew the certificate at your municipal office."
    ),
    "not_signed": N_("An unsigned application is refused."),
    "staff": N_("Staff: submissions"),
    "staff_forms": N_("Staff: forms"),
    "download_cms": N_("Signature (.p7s)"),
    "download_doc": N_("Document (.json)"),
    "csv": N_("Export CSV"),
    "back": N_("Back to the start"),
    "fix_errors": N_("Please check your answers."),
    "save_form": N_("Save the form"),
    "verified": N_("verified"),
}


def text(key: str, lang: str) -> str:
    """The text ``key`` in ``lang``."""
    with force_locale(lang if lang in LOCALES else "ja"):
        return str(gettext(MESSAGES[key]))


JST: Final = timezone(timedelta(hours=9), "JST")


def moment(value: str, lang: str | None = None) -> str:
    """An ISO 8601 time as residents read it, in Japan time: ``2026年11月29日 21:45`` or
    ``29 November 2026, 21:45 JST``; anything unparsable as it is."""
    try:
        when = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return value
    local = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(JST)
    if (lang or current_locale()) == "ja":
        return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"
    return f"{format_date(local.date(), 'd MMMM y', locale='en')}, {local:%H:%M} JST"


def current_locale() -> str:
    locale = get_locale()
    return locale.language if locale is not None else "ja"


def _select() -> str:
    for choice in (request.args.get("lang"), request.cookies.get(COOKIE)):
        if choice in LOCALES:
            return str(choice)
    return request.accept_languages.best_match(LOCALES) or "ja"


def _remember(response: Response) -> Response:
    choice = request.args.get("lang")
    if choice in LOCALES and request.cookies.get(COOKIE) != choice:
        response.set_cookie(COOKIE, str(choice), httponly=True, samesite="Lax")
    return response


def switch_language_url(locale: str) -> str:
    query = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    return f"{request.path}?{urlencode([*query, ('lang', locale)])}"


def _compile(target: Path) -> None:
    for po_path in CATALOGS.glob("*/LC_MESSAGES/*.po"):
        mo_path = target / po_path.relative_to(CATALOGS).with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        with po_path.open("rb") as handle:
            catalog = read_po(handle)
        fd, temporary = tempfile.mkstemp(dir=mo_path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            write_mo(out, catalog)
        os.replace(temporary, mo_path)


def init_app(app: Flask) -> None:
    """Flask-Babel with the demo's catalogs; templates get ``_()`` and ``t(key)``."""
    target = Path(app.instance_path) / "translations" / "relying_party_demo"
    try:
        _compile(target)
    except OSError:
        target = Path(tempfile.mkdtemp(prefix="rp-translations-"))
        _compile(target)
    Babel(
        app,
        default_locale="ja",
        default_translation_directories=str(target),
        locale_selector=_select,
    )
    app.after_request(_remember)
    app.jinja_env.filters["moment"] = moment
    app.jinja_env.globals.update(
        t=lambda key: text(key, current_locale()),
        current_locale=current_locale,
        switch_language_url=switch_language_url,
        language_names=LANGUAGE_NAMES,
    )
