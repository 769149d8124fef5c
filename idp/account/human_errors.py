"""What a resident reads when something goes wrong: one table from failure code to page text.

Every failure a resident can meet on the login pages or in the account portal that needs more
than a line of status text has a :class:`Problem` here: a title, what happened, and what to do
(where to go, what to bring). Callers look a code up with :func:`problem_for` (login failure
codes such as ``pin_blocked`` map onto the same pages) and render
``account/problem.html`` with :func:`problem_response`, or pass the :class:`Problem` to a page
of their own that includes that template.

Texts are English msgids translated by the catalogs (Japanese by default); they are lazy, so
the table is built once and each request reads it in its own language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from flask import Response, render_template, request
from flask_babel import lazy_gettext as _l

from idp.i18n import current_locale, use_locale

__all__ = ["PROBLEMS", "Problem", "page_frame", "problem_for", "problem_response"]


@dataclass(frozen=True)
class Problem:
    """One human error page: a stable code, its HTTP status and the texts."""

    code: str
    status: int
    title: Any
    happened: Any
    todo: tuple[Any, ...]
    #: Whether starting over (a new login) can help right now.
    can_retry: bool = True


_PROBLEMS: Final = (
    Problem(
        "pin_blocked",
        403,
        _l("Your PIN is locked"),
        _l(
            "The PIN of the user authentication certificate (4 digits) was entered wrongly too "
            "many times, so the card has locked it. Nothing was sent to the service."
        ),
        (
            _l(
                "Take your card to your municipal office and have the PIN reset there. "
                "The office checks that it is you."
            ),
            _l(
                "If you know your signature certificate password (6 to 16 letters and digits), "
                "you can also reset the PIN at a convenience-store kiosk (multi-copy machine) "
                "after reserving the reset with the JPKI app on your smartphone."
            ),
        ),
        can_retry=False,
    ),
    Problem(
        "sign_certificate_revoked",
        403,
        _l("Your signature certificate is no longer valid"),
        _l(
            "Your signature certificate has been revoked. This happens when your registered "
            "details (name, address, ...) change, for example after moving house."
        ),
        (
            _l(
                "Renew the certificate at the municipal office where you now live. "
                "Bring your My Number card."
            ),
            _l("Afterwards, sign in again: your new details are read from the card."),
        ),
        can_retry=False,
    ),
    Problem(
        "certificate_revoked",
        403,
        _l("Your card's certificate is no longer valid"),
        _l(
            "Your card's certificate has been revoked. This happens after the card was "
            "reported lost or suspended, or when your registered details changed."
        ),
        (
            _l(
                "Ask at your municipal office to have a new certificate written to your card. "
                "Bring your My Number card."
            ),
        ),
    ),
    Problem(
        "certificate_expired",
        403,
        _l("Your card's certificate has expired"),
        _l(
            "Your card's certificate has expired. The certificates on the card are valid "
            "until your fifth birthday after they were issued."
        ),
        (
            _l(
                "Renew the certificates (or the card) at your municipal office. "
                "Bring your My Number card."
            ),
        ),
    ),
    Problem(
        "login_timeout",
        410,
        _l("Time ran out"),
        _l(
            "The sign-in was not finished in time: the smartphone did not pick up the QR code, "
            "or the card was not read before the page expired. Nothing was sent to the service."
        ),
        (
            _l("Press “Try again” for a new QR code, or go back to the service and start again."),
            _l("Open the app first, then scan the QR code and keep the card on the phone."),
        ),
    ),
    Problem(
        "consent_declined",
        403,
        _l("You did not agree to share this information"),
        _l(
            "The service asked for information you declined to share, or whose consent you "
            "withdrew. Nothing was sent to it."
        ),
        (
            _l(
                "If you want to use the service, start again from the service and agree on the "
                "consent page."
            ),
            _l("You can see and withdraw your consents at any time on your account page."),
        ),
    ),
    Problem(
        "session_expired",
        401,
        _l("Please sign in again"),
        _l(
            "For your safety, the account page needs a card sign-in from the last 10 minutes, "
            "or you signed out in another window. Nothing was changed."
        ),
        (_l("Sign in again with your My Number card."),),
    ),
    Problem(
        "request_refused",
        403,
        _l("This request was refused"),
        _l(
            "The form was sent from another site, or from a page that is too old. "
            "Nothing was changed."
        ),
        (_l("Open your account page again and repeat what you wanted to do."),),
    ),
    Problem(
        "account_deleted",
        409,
        _l("This account has been deleted"),
        _l(
            "The account this sign-in belongs to was deleted while the sign-in was in progress. "
            "Nothing was sent to the service."
        ),
        (_l("Sign in again if you want to: your card will set up a new account."),),
    ),
    Problem(
        "service_unavailable",
        503,
        _l("The service is temporarily unavailable"),
        _l("A part of the sign-in service is not answering right now. Nothing was changed."),
        (_l("Please try again in a few minutes."),),
    ),
)

PROBLEMS: Final[Mapping[str, Problem]] = {problem.code: problem for problem in _PROBLEMS}

#: Codes used elsewhere (login failures, transaction states) that show one of the pages above.
_ALIASES: Final[Mapping[str, str]] = {
    "status_expired": "login_timeout",
    "transaction_expired": "login_timeout",
    "csrf_failed": "request_refused",
    "temporarily_unavailable": "service_unavailable",
    "trust_unavailable": "service_unavailable",
}


def problem_for(code: str | None) -> Problem | None:
    """The page for ``code`` (a problem code, a login failure code or an alias), or None."""
    if code is None:
        return None
    return PROBLEMS.get(_ALIASES.get(code, code))


def page_frame(locale: str | None = None) -> dict[str, str]:
    """``lang``, ``other_lang`` and ``lang_url`` for this request's page (``locale`` is used
    for the rest of the request when given)."""
    if locale is not None:
        use_locale(locale)
    lang = current_locale()
    other = "en" if lang == "ja" else "ja"
    query = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    return {
        "lang": lang,
        "other_lang": other,
        "lang_url": "?" + urlencode([*query, ("lang", other)]),
    }


def problem_response(
    code: str,
    *,
    locale: str | None = None,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> Response:
    """The problem page for ``code`` (``KeyError`` for an unknown one), never cached."""
    problem = problem_for(code)
    if problem is None:
        raise KeyError(code)
    frame = page_frame(locale)
    frame.update(context)
    body = render_template("account/problem.html", problem=problem, **frame)
    response = Response(body, status=status or problem.status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
