"""Languages: Flask-Babel with Japanese first and English available.

Every text a resident reads is an English sentence (the msgid) wrapped in ``_()`` / ``gettext``
in code or templates; ``idp/translations/{ja,en}/LC_MESSAGES/messages.po`` hold the Japanese and
the (identical or polished) English wording. A test checks that every msgid used is in both
catalogs and that no Japanese page shows an untranslated English sentence.

The locale of a request, first match wins:

1. ``?lang=ja|en`` on this request (the language switch link; it is also remembered in the
   ``myna_lang`` cookie and, on a login page, in the login transaction);
2. the locale remembered for the login transaction (the authorization request's
   ``ui_locales``, or the resident's later switch), set by the page with
   :func:`use_locale`; on a page answering the authorization request itself (an error page),
   its ``ui_locales`` parameter;
3. the ``myna_lang`` cookie (an earlier explicit switch);
4. the browser's ``Accept-Language``;
5. Japanese.

Compiled catalogs (``.mo``): they are not committed. :func:`init_app` compiles each ``.po``
with Babel's own compiler into ``<instance>/translations`` when the ``.mo`` there is missing or
older than its ``.po`` (an atomic rename, so concurrent workers are safe), or into a private
temporary directory when the instance directory is read-only. A fresh clone, ``make demo``, CI
and an installed wheel therefore need no build step.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit

from babel.dates import format_date, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, Response, g, has_request_context, request
from flask_babel import Babel, get_locale, refresh

from idp.card.eras import ERAS

__all__ = [
    "COOKIE",
    "DEFAULT_LOCALE",
    "LANGUAGE_NAMES",
    "LOCALES",
    "compile_catalogs",
    "current_locale",
    "explicit_choice",
    "format_birthdate",
    "format_day",
    "format_moment",
    "init_app",
    "negotiate",
    "switch_language",
    "switch_language_url",
    "use_locale",
    "wareki",
]

log = logging.getLogger(__name__)

DEFAULT_LOCALE: Final = "ja"
LOCALES: Final = ("ja", "en")
#: The cookie remembering an explicit language switch (not a secret; one year).
COOKIE: Final = "myna_lang"
_COOKIE_MAX_AGE: Final = 365 * 24 * 3600
_G_KEY: Final = "myna_locale"
#: Each language's own name, for the switch link (not translated: an autonym).
LANGUAGE_NAMES: Final = {"ja": "日本語", "en": "English"}

#: The package's own catalogs.
CATALOGS: Final = Path(__file__).resolve().parent / "translations"


def _supported(tag: str | None) -> str | None:
    if not tag:
        return None
    primary = tag.replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in LOCALES else None


def explicit_choice() -> str | None:
    """The ``?lang=`` of this request, when it names a supported locale."""
    if not has_request_context():
        return None
    return _supported(request.args.get("lang"))


def negotiate(ui_locales: Iterable[str] = ()) -> str:
    """The locale for a new login: ``?lang=``, else the first supported ``ui_locales`` tag,
    else the cookie, else ``Accept-Language``, else Japanese."""
    choice = explicit_choice()
    if choice:
        return choice
    for tag in ui_locales:
        found = _supported(tag)
        if found:
            return found
    return _browser_locale()


def _browser_locale() -> str:
    if not has_request_context():
        return DEFAULT_LOCALE
    cookie = _supported(request.cookies.get(COOKIE))
    if cookie:
        return cookie
    best = request.accept_languages.best_match(LOCALES)
    return best or DEFAULT_LOCALE


def select_locale() -> str:
    """Flask-Babel's locale selector (the order in the module docstring)."""
    choice = explicit_choice()
    if choice:
        return choice
    remembered = g.get(_G_KEY)
    if isinstance(remembered, str) and remembered in LOCALES:
        return remembered
    for tag in request.args.get("ui_locales", "").split():  # an authorization request's page
        found = _supported(tag)
        if found:
            return found
    return _browser_locale()


def use_locale(locale: str) -> None:
    """Use ``locale`` (a login transaction's remembered one) for the rest of this request,
    unless the request itself chose a language with ``?lang=``."""
    if locale in LOCALES:
        setattr(g, _G_KEY, locale)
        refresh()


def current_locale() -> str:
    """The locale of this request (``ja`` or ``en``)."""
    locale = get_locale()
    return locale.language if locale is not None else DEFAULT_LOCALE


def switch_language_url(locale: str) -> str:
    """This page's URL (path and query) with ``lang=locale``: the language switch link."""
    query = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    query.append(("lang", locale))
    return f"{request.path}?{urlencode(query)}"


def switch_language(locale: str) -> Response:
    """``/language/<locale>``: the language switch of a page whose URL must not be repeated in
    it (an error page answering a hostile authorization request). Remembers the choice and goes
    back to the referring page of this site with ``lang``, or to the top page."""
    if locale not in LOCALES:
        return Response("Not Found", status=404, mimetype="text/plain")
    location = "/"
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc == request.host and referrer.path.startswith("/"):
        query = [
            (k, v) for k, v in parse_qsl(referrer.query, keep_blank_values=True) if k != "lang"
        ]
        location = f"{referrer.path}?{urlencode([*query, ('lang', locale)])}"
    response = Response(status=303, headers={"Location": location})
    response.set_cookie(
        COOKIE,
        locale,
        max_age=_COOKIE_MAX_AGE,
        path="/",
        secure=request.is_secure,
        httponly=True,
        samesite="Lax",
    )
    return response


def _remember_choice(response: Response) -> Response:
    choice = explicit_choice()
    if choice and request.cookies.get(COOKIE) != choice:
        response.set_cookie(
            COOKIE,
            choice,
            max_age=_COOKIE_MAX_AGE,
            path="/",
            secure=request.is_secure,
            httponly=True,
            samesite="Lax",
        )
    return response


def compile_catalogs(source: Path, target: Path) -> None:
    """Compile ``source/<lang>/LC_MESSAGES/*.po`` to ``target/<lang>/LC_MESSAGES/*.mo`` when a
    ``.mo`` is missing or older than its ``.po``. Fuzzy entries are left out, as ``msgfmt``
    does."""
    for po_path in sorted(source.glob("*/LC_MESSAGES/*.po")):
        relative = po_path.relative_to(source).with_suffix(".mo")
        mo_path = target / relative
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=relative.parts[0])
        fd, temporary = tempfile.mkstemp(dir=mo_path.parent, suffix=".mo.tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                write_mo(out, catalog)
            os.replace(temporary, mo_path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def compiled_directory(source: Path, instance_path: str) -> Path:
    """Compile ``source`` into the instance directory, or a temporary one if that fails."""
    target = Path(instance_path) / "translations" / source.parent.name
    try:
        compile_catalogs(source, target)
    except OSError as error:
        target = Path(tempfile.mkdtemp(prefix="myna-translations-"))
        log.info("instance directory not writable (%s); catalogs compiled in %s", error, target)
        compile_catalogs(source, target)
    return target


def init_app(app: Flask, catalogs: Path = CATALOGS) -> Babel:
    """Set up Flask-Babel for ``app`` with ``catalogs`` (``<lang>/LC_MESSAGES/messages.po``).

    Templates get ``_``, ``gettext`` and ``ngettext`` (Jinja's i18n extension, new style:
    ``_("Hello %(name)s", name=...)``, autoescaped)."""
    directory = compiled_directory(catalogs, app.instance_path)
    babel = Babel(
        app,
        default_locale=DEFAULT_LOCALE,
        default_translation_directories=str(directory),
        locale_selector=select_locale,
    )
    app.after_request(_remember_choice)
    app.add_url_rule("/language/<locale>", "switch_language", switch_language)
    app.jinja_env.globals.update(
        language_names=LANGUAGE_NAMES,
        current_locale=current_locale,
        switch_language_url=switch_language_url,
    )
    return babel


# -- dates --------------------------------------------------------------------------------------

#: Japan Standard Time (no daylight saving time): times are shown as residents live them.
JST: Final = timezone(timedelta(hours=9), "JST")


def format_day(day: date, locale: str) -> str:
    """``2026年11月29日`` in Japanese, ``29 November 2026`` in English."""
    if locale == "ja":
        return f"{day.year}年{day.month}月{day.day}日"
    return str(format_date(day, "d MMMM y", locale="en"))


def wareki(day: date) -> str:
    """The Japanese-era date: ``昭和60年4月1日``, ``令和元年5月1日`` (``idp.card.eras``);
    the Gregorian one before 明治."""
    for _code, name, first, last in ERAS:
        if first <= day <= last:
            year = day.year - first.year + 1
            return f"{name}{'元' if year == 1 else year}年{day.month}月{day.day}日"
    return format_day(day, "ja")


def format_birthdate(day: date, locale: str) -> str:
    """Japanese: the era first, then the Gregorian date, ``昭和60年4月1日（1985年4月1日）``;
    English: ``1 April 1985``."""
    if locale == "ja":
        return f"{wareki(day)}（{format_day(day, 'ja')}）"
    return format_day(day, locale)


def format_moment(moment: datetime, locale: str) -> str:
    """A point in time in Japan time: ``2026年11月29日 21:45``, ``29 November 2026, 21:45 JST``."""
    local = moment.astimezone(JST) if moment.tzinfo else moment.replace(tzinfo=JST)
    clock = str(format_time(local, "HH:mm", locale=locale))
    if locale == "ja":
        return f"{format_day(local.date(), 'ja')} {clock}"
    return f"{format_day(local.date(), 'en')}, {clock} JST"
