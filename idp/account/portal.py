"""The resident portal, ``/account``: what the provider holds about you, and your controls.

Signed in with the card like any service (:mod:`idp.account.portal_auth`). Pages:

- ``GET /account`` -- the verified data (name, address, birthdate, gender), when and how it
  was verified (signature certificate issuer, serial, policy, validity; the linked card
  certificates, when linked and last used). Never the My Number, never a certificate body.
- ``GET /account/history`` -- every release to a service: which service, which items, when.
- ``GET /account/consents`` and ``POST /account/consents/revoke`` -- remembered consents;
  withdrawing one also ends that service's sessions by back-channel logout and says which
  services were told.
- ``GET /account/sessions``, ``POST /account/sessions/end``, ``/sessions/end-all``,
  ``POST /account/signout``.
- ``GET|POST /account/refresh`` -- read the signature certificate again (a card login with the
  signature password, as at enrolment).
- ``GET|POST /account/delete`` -- delete the account; the page states what is kept.
- ``GET /account/problem/<code>`` -- the human error pages (:mod:`idp.account.human_errors`).

Every form carries a CSRF token bound to the session; a cross-site POST, a missing or wrong
token is refused with a page that says nothing was changed (403). A POST without a good session
changes nothing and asks to sign in again (401). Redis or database outages show "try again in a
few minutes" (503).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any, Final

from flask import Blueprint, Flask, Response, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from idp.account.history import (
    consent_rows,
    credential_rows,
    evidence_of,
    format_birthdate,
    format_time,
    gender_label,
    release_rows,
)
from idp.account.human_errors import PROBLEMS, page_frame, problem_response
from idp.account.portal_actions import delete_account, request_refresh, revoke_service
from idp.account.portal_auth import (
    LOGIN_COOKIE,
    PORTAL_CLIENT_ID,
    SEEN_COOKIE,
    PortalSession,
    authorize_url,
    check_csrf,
    cross_site,
    csrf_token,
    ensure_portal_client,
    portal_session,
    read_pending_login,
    safe_next,
    same_state,
)
from idp.extensions import get_settings
from idp.i18n import current_locale
from idp.oidc.sessions import (
    LogoutReport,
    clear_session_cookie,
    end_all_sessions,
    end_session,
    sessions_for,
)
from idp.storage.base import db
from idp.storage.clients import get_client
from idp.storage.consents import get_consent
from idp.storage.ephemeral import StoreUnavailableError

__all__ = ["bp", "init_app"]

log = logging.getLogger(__name__)

bp = Blueprint("portal", __name__, url_prefix="/account")

NAV: Final = (
    ("portal.overview", _l("Your data")),
    ("portal.history", _l("Releases")),
    ("portal.consents", _l("Consents")),
    ("portal.sessions", _l("Sessions")),
    ("portal.refresh", _l("Read your card again")),
    ("portal.delete", _l("Delete your account")),
)

_CSP: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
_SEEN_MAX_AGE: Final = 365 * 24 * 3600

View = Callable[..., Response]


def init_app(app: Flask) -> None:
    """Register the portal's pages."""
    app.register_blueprint(bp)


# -- rendering ----------------------------------------------------------------------------------


def _render(
    template: str, current: PortalSession | None, status: int = 200, **context: Any
) -> Response:
    frame = page_frame()
    body = render_template(
        template,
        portal_nav=NAV if current is not None else None,
        csrf=csrf_token(current.session) if current is not None else None,
        current=current,
        **frame,
        **context,
    )
    response = Response(body, status=status, mimetype="text/html")
    return response


def _redirect(location: str, code: int = 303) -> Response:
    response = Response("", status=code)
    response.headers["Location"] = location
    return response


def _secure() -> bool:
    return get_settings().issuer.startswith("https://")


def _signin_again(next_path: str | None = None) -> Response:
    return problem_response(
        "session_expired", signin_url=url_for("portal.login", next=safe_next(next_path))
    )


def _refused() -> Response:
    return problem_response("request_refused", account_url=url_for("portal.overview"))


def signed_in(view: View) -> View:
    """A page for a signed-in resident: without a good session, sign in (again)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        current = portal_session()
        if current is None:
            if request.cookies.get(SEEN_COOKIE):
                return _signin_again(request.path)
            return _redirect(url_for("portal.login", next=request.path), 302)
        return view(current, *args, **kwargs)

    return wrapper


def action(view: View) -> View:
    """A form POST: same site, a good session, its CSRF token; otherwise nothing happens."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        if cross_site():
            log.warning("portal: cross-site POST to %s refused", request.path)
            return _refused()
        current = portal_session()
        if current is None:
            return _signin_again()
        if not check_csrf(current.session, request.form.get("csrf")):
            log.warning("portal: POST to %s with a bad CSRF token refused", request.path)
            return _refused()
        return view(current, *args, **kwargs)

    return wrapper


# -- signing in ---------------------------------------------------------------------------------


@bp.get("/login")
def login() -> Response:
    """Start a card login for the portal (``prompt=login``; state bound to a cookie)."""
    ensure_portal_client()
    location, cookie = authorize_url(request.args.get("next") or "/account", current_locale())
    response = _redirect(location)
    response.set_cookie(
        LOGIN_COOKIE,
        cookie,
        max_age=900,
        path="/account",
        secure=_secure(),
        httponly=True,
        samesite="Lax",
    )
    return response


@bp.get("/callback")
def callback() -> Response:
    """Back from ``/authorize``: the state must match the cookie, the session must be fresh."""
    pending = read_pending_login(request.cookies.get(LOGIN_COOKIE))
    if pending is None:
        return _signin_again()
    if not same_state(pending, request.args.get("state")):
        log.warning("portal: callback with a state that is not this browser's")
        return _refused()
    if request.args.get("error"):
        # The resident stopped the card login, or it failed: nothing changed, offer it again.
        return _signin_again(pending.next)
    current = portal_session(not_before=pending.started)
    if current is None:
        return _signin_again(pending.next)
    response = _redirect(pending.next)
    response.delete_cookie(LOGIN_COOKIE, path="/account", secure=_secure(), httponly=True)
    response.set_cookie(
        SEEN_COOKIE,
        "1",
        max_age=_SEEN_MAX_AGE,
        path="/account",
        secure=_secure(),
        httponly=True,
        samesite="Lax",
    )
    return response


# -- pages --------------------------------------------------------------------------------------


@bp.get("/")
@bp.get("")
@signed_in
def overview(current: PortalSession) -> Response:
    resident = current.resident
    locale = current_locale()
    return _render(
        "account/portal/overview.html",
        current,
        data=[
            (_l("Name"), resident.name),
            (_l("Address"), resident.address),
            (_l("Date of birth"), format_birthdate(resident.birthdate, locale)),
            (_l("Gender"), gender_label(resident.gender)),
        ],
        verified_at=format_time(resident.verified_at, locale),
        evidence=evidence_of(resident),
        credentials=credential_rows(resident, locale),
        enrolled_at=format_time(resident.created_at, locale),
    )


@bp.get("/history")
@signed_in
def history(current: PortalSession) -> Response:
    rows = release_rows(current.resident_id, current_locale(), hidden=(PORTAL_CLIENT_ID,))
    return _render("account/portal/history.html", current, releases=rows)


@bp.get("/consents")
@signed_in
def consents(current: PortalSession) -> Response:
    rows = consent_rows(current.resident_id, current_locale(), hidden=(PORTAL_CLIENT_ID,))
    return _render("account/portal/consents.html", current, consents=rows)


@bp.post("/consents/revoke")
@action
def revoke(current: PortalSession) -> Response:
    client_id = request.form.get("client_id", "")
    if (
        not client_id
        or client_id == PORTAL_CLIENT_ID
        or get_consent(current.resident_id, client_id) is None
    ):
        return _render(
            "account/portal/done.html",
            current,
            status=404,
            title=_l("There is no such consent"),
            message=_l("This consent was already withdrawn, or it never existed. Nothing changed."),
            report=None,
        )
    client = get_client(client_id)
    name = (client.name_en if current_locale() == "en" and client and client.name_en else None) or (
        client.name if client else client_id
    )
    _, report = revoke_service(current.resident_id, client_id)
    return _render(
        "account/portal/done.html",
        current,
        title=_l("Consent withdrawn"),
        message=_l(
            "%(client)s no longer receives your information. Signing in to it again asks for "
            "your consent again.",
            client=name,
        ),
        report=_report_names(report),
        client_id=client_id,
    )


def _report_names(report: LogoutReport) -> dict[str, Any]:
    locale = current_locale()

    def label(client_id: str) -> str:
        client = get_client(client_id)
        if client is None:
            return client_id
        return client.name_en if locale == "en" and client.name_en else client.name

    return {
        "sessions_ended": report.sessions_ended,
        "notified": [label(c) for c in report.notified],
        "failed": [label(c) for c in report.failed],
    }


@bp.get("/sessions")
@signed_in
def sessions(current: PortalSession) -> Response:
    locale = current_locale()
    names: dict[str, str] = {}

    def label(client_id: str) -> str:
        if client_id not in names:
            client = get_client(client_id)
            names[client_id] = (
                client_id
                if client is None
                else (client.name_en if locale == "en" and client.name_en else client.name)
            )
        return names[client_id]

    rows = [
        {
            "sid": info.sid,
            "this_browser": info.sid == current.session.sid,
            "signed_in": _when(info.auth_time, locale),
            "started": _when(info.created_at, locale),
            "expires": _when(info.expires_at, locale),
            "device": info.user_agent or "—",
            "services": [label(c) for c in info.clients],
        }
        for info in sessions_for(current.resident_id)
    ]
    return _render("account/portal/sessions.html", current, sessions=rows)


def _when(seconds: float, locale: str) -> str:
    return format_time(datetime.fromtimestamp(seconds, UTC), locale)


def _signed_out(report: LogoutReport, title: Any, message: Any) -> Response:
    response = _render(
        "account/portal/done.html",
        None,
        title=title,
        message=message,
        report=_report_names(report),
        signin_url=url_for("portal.login"),
    )
    clear_session_cookie(response)
    response.delete_cookie(SEEN_COOKIE, path="/account", secure=_secure(), httponly=True)
    return response


@bp.post("/sessions/end")
@action
def end_one(current: PortalSession) -> Response:
    sid = request.form.get("sid", "")
    if sid == current.session.sid:
        return _sign_out(current)
    mine = {info.sid for info in sessions_for(current.resident_id)}
    if sid not in mine:
        # Already ended, or not this resident's: nothing to do, nothing said about others.
        return _render(
            "account/portal/done.html",
            current,
            status=404,
            title=_l("This session has already ended"),
            message=_l("Nothing changed."),
            report=None,
        )
    report = end_session(sid)
    return _render(
        "account/portal/done.html",
        current,
        title=_l("The session was ended"),
        message=_l("That browser or device is signed out. This browser stays signed in."),
        report=_report_names(report),
    )


@bp.post("/sessions/end-all")
@action
def end_all(current: PortalSession) -> Response:
    report = end_all_sessions(current.resident_id)
    return _signed_out(
        report,
        _l("You are signed out everywhere"),
        _l(
            "Every browser and device that was signed in with your card is signed out, "
            "this one too."
        ),
    )


@bp.post("/signout")
@action
def signout(current: PortalSession) -> Response:
    return _sign_out(current)


def _sign_out(current: PortalSession) -> Response:
    report = end_session(current.session.sid)
    return _signed_out(report, _l("You are signed out"), _l("This browser is signed out."))


@bp.route("/refresh", methods=["GET"])
@signed_in
def refresh(current: PortalSession) -> Response:
    return _render(
        "account/portal/refresh.html",
        current,
        evidence=evidence_of(current.resident),
        verified_at=format_time(current.resident.verified_at, current_locale()),
    )


@bp.post("/refresh")
@action
def refresh_start(current: PortalSession) -> Response:
    if not request_refresh(current.resident_id):
        return problem_response("account_deleted")
    return _redirect(url_for("portal.login", next="/account"))


@bp.route("/delete", methods=["GET"])
@signed_in
def delete(current: PortalSession) -> Response:
    return _render("account/portal/delete.html", current, missing_confirmation=False)


@bp.post("/delete")
@action
def delete_confirmed(current: PortalSession) -> Response:
    if request.form.get("confirm") != "yes":
        return _render("account/portal/delete.html", current, status=400, missing_confirmation=True)
    report = delete_account(current.resident_id)
    if not report.deleted:
        return problem_response("account_deleted")
    response = _render("account/portal/deleted.html", None, report=_report_names(report.logout))
    clear_session_cookie(response)
    response.delete_cookie(SEEN_COOKIE, path="/account", secure=_secure(), httponly=True)
    return response


@bp.get("/problem/<code>")
def problem(code: str) -> Response:
    """A human error page by its code (a service may send a resident here)."""
    if code not in PROBLEMS:
        return problem_response("request_refused", status=404)
    return problem_response(code, account_url=url_for("portal.overview"))


# -- failures and headers -----------------------------------------------------------------------


@bp.errorhandler(StoreUnavailableError)
@bp.errorhandler(OperationalError)
def unavailable(error: Exception) -> Response:
    log.error("portal: storage unavailable: %s", type(error).__name__)
    if isinstance(error, SQLAlchemyError):
        db.session.rollback()
    return problem_response("service_unavailable", headers={"Retry-After": "120"})


@bp.after_request
def security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", _CSP)
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    # same-origin, not no-referrer: with no-referrer browsers send "Origin: null" on forms.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response
