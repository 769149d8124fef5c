"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): ``GET|POST /logout``.

Parameters: ``id_token_hint`` (an ID token we signed; an expired one is fine), ``client_id``,
``post_logout_redirect_uri`` (exactly one of the client's registered
``post_logout_redirect_uris``; needs ``client_id`` or ``id_token_hint`` to name the client) and
``state`` (echoed on that redirect). ``ui_locales`` and ``logout_hint`` are accepted and not
used. Anything malformed, an unknown client, a hint that is not ours or names another client,
or an unregistered redirect URI ends on an error page -- never a redirect.

- A request whose ``id_token_hint`` names the resident of the browser's provider session is
  attributed: the session ends at once (:func:`idp.oidc.sessions.end_session`, back-channel
  logout to every client in it) and the browser goes to ``post_logout_redirect_uri`` (with
  ``state``) or sees the "signed out" page.
- Otherwise, when there is a session, the resident confirms on a page (Japanese first, English
  below) that posts to ``/logout/confirm`` with a token bound to the session (CSRF).
- Without a session there is nothing to end: straight to the redirect URI or the page.

A ``POST`` without the session cookie (a cross-site form post: ``SameSite=Lax`` leaves the
cookie out) is answered ``303`` to the same request as a ``GET``, which carries the cookie.

The session cookie is removed in every answer. With Redis down the page says the logout could
not be completed (503) and the cookie is still removed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlencode

from flask import Blueprint, Response, render_template, request

from idp.extensions import get_settings
from idp.oidc import errors
from idp.oidc.clients import OAuthClient, load_client
from idp.oidc.sessions import (
    LogoutReport,
    SessionInfo,
    clear_session_cookie,
    current_session,
    end_session,
    has_session_cookie,
    hint_audience,
    verify_id_token_hint,
)
from idp.oidc.subject import pairwise_sub
from idp.storage.ephemeral import StoreUnavailableError

__all__ = ["END_SESSION_PATH", "LogoutRequest", "bp"]

log = logging.getLogger(__name__)

END_SESSION_PATH: Final = "/logout"
_CONFIRM_PATH: Final = "/logout/confirm"
_PARAMS: Final = (
    "id_token_hint",
    "client_id",
    "post_logout_redirect_uri",
    "state",
    "ui_locales",
    "logout_hint",
)
_MAX_LENGTH: Final = 8192

bp = Blueprint("logout", __name__)


class LogoutRequestError(ValueError):
    """A logout request this provider refuses (shown on the error page)."""


@dataclass(frozen=True)
class LogoutRequest:
    """A validated logout request."""

    client: OAuthClient | None
    redirect_uri: str | None
    state: str | None
    #: The ``sub`` of a verified ``id_token_hint``, if there was one.
    hint_sub: str | None = None

    def destination(self) -> str | None:
        """Where the browser goes afterwards: the redirect URI with ``state``, or None."""
        if self.redirect_uri is None:
            return None
        params = [("state", self.state)] if self.state is not None else []
        return errors.add_query(self.redirect_uri, params)

    def names_resident(self, session: SessionInfo) -> bool:
        """The hint's ``sub`` is the session resident's ``sub`` at the hinted client."""
        if self.hint_sub is None or self.client is None:
            return False
        sub = pairwise_sub(
            get_settings().pairwise_secret,
            sector=self.client.sector,
            resident_id=session.resident_id,
        )
        return hmac.compare_digest(sub, self.hint_sub)


def _single(name: str) -> str | None:
    values = request.values.getlist(name)
    if len(values) > 1:
        raise LogoutRequestError(f"'{name}' must not repeat.")
    if not values or values[0] == "":
        return None
    value = values[0]
    if len(value) > _MAX_LENGTH or not value.isprintable():
        raise LogoutRequestError(f"'{name}' is malformed.")
    return value


def parse_logout_request() -> LogoutRequest:
    """Validate this request's logout parameters; ``LogoutRequestError`` saying why not."""
    values = {name: _single(name) for name in _PARAMS}
    hint_sub: str | None = None
    hinted_client: str | None = None
    if values["id_token_hint"] is not None:
        claims = verify_id_token_hint(values["id_token_hint"])
        if claims is None:
            raise LogoutRequestError("'id_token_hint' is not an ID token issued here.")
        hinted_client = hint_audience(claims)
        if hinted_client is None:
            raise LogoutRequestError("'id_token_hint' has no single audience.")
        hint_sub = str(claims["sub"])
    client_id = values["client_id"]
    if client_id is not None and hinted_client is not None and client_id != hinted_client:
        raise LogoutRequestError("'client_id' is not the audience of 'id_token_hint'.")
    client_id = client_id or hinted_client
    client = None
    if client_id is not None:
        client = load_client(client_id)
        if client is None:
            raise LogoutRequestError("Unknown client.")
    redirect_uri = values["post_logout_redirect_uri"]
    if redirect_uri is not None:
        if client is None:
            raise LogoutRequestError(
                "'post_logout_redirect_uri' needs 'client_id' or 'id_token_hint'."
            )
        if not client.check_post_logout_redirect_uri(redirect_uri):
            raise LogoutRequestError("'post_logout_redirect_uri' is not registered.")
    state = values["state"]
    if state is not None and not errors.is_valid_state(state):
        raise LogoutRequestError("'state' is malformed.")
    return LogoutRequest(client, redirect_uri, state, hint_sub)


def _csrf(session: SessionInfo) -> str:
    key = get_settings().secret_key.encode()
    return hmac.new(key, f"logout|{session.sid}".encode(), hashlib.sha256).hexdigest()


def _page(template: str, status: int = 200, *, clear: bool = True, **context: object) -> Response:
    body = render_template(template, **context)
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    if clear:
        clear_session_cookie(response)
    return response


def _finished(logout: LogoutRequest, report: LogoutReport | None) -> Response:
    destination = logout.destination()
    if destination is not None:
        response = errors.redirect_response(destination)
        clear_session_cookie(response)
        return response
    failed = _client_names(report.failed) if report is not None else []
    return _page("oidc/logout_done.html", outcome="done", failed=failed)


def _client_names(client_ids: tuple[str, ...]) -> list[tuple[str, str]]:
    names = []
    for client_id in client_ids:
        client = load_client(client_id)
        if client is not None:
            names.append((client.name, client.name_en or client.name))
    return names


def _unavailable() -> Response:
    log.error("store unavailable during logout")
    return _page("oidc/logout_done.html", 503, outcome="unavailable", failed=[])


def _refused(error: LogoutRequestError) -> Response:
    return errors.error_page("invalid_request", str(error), status=400)


@bp.route(END_SESSION_PATH, methods=["GET", "POST"])
def end_session_endpoint() -> Response:
    """The ``end_session_endpoint``."""
    try:
        logout = parse_logout_request()
    except LogoutRequestError as error:
        return _refused(error)
    if request.method == "POST" and not has_session_cookie():
        # A relying party's form posts from its own site: SameSite=Lax keeps the session
        # cookie out of that POST, not out of a top-level GET. Continue as a GET.
        query = [(name, request.values[name]) for name in _PARAMS if request.values.get(name)]
        location = get_settings().endpoint(END_SESSION_PATH) + "?" + urlencode(query)
        response = Response("", status=303)
        response.headers["Location"] = location
        response.headers["Cache-Control"] = "no-store"
        return response
    try:
        session = current_session()
        if session is None:
            return _finished(logout, None)
        if logout.names_resident(session):
            return _finished(logout, end_session(session.sid))
    except StoreUnavailableError:
        return _unavailable()
    client = logout.client
    # The confirmation keeps the session: only its answer ends it.
    return _page(
        "oidc/logout.html",
        clear=False,
        action=get_settings().endpoint(_CONFIRM_PATH),
        csrf=_csrf(session),
        client_id=client.get_client_id() if client is not None else None,
        client_name=client.name if client is not None else None,
        client_name_en=(client.name_en or client.name) if client is not None else None,
        redirect_uri=logout.redirect_uri,
        state=logout.state,
    )


@bp.post(_CONFIRM_PATH)
def confirm_logout() -> Response:
    """The resident's answer on the confirmation page (``decision`` = ``logout`` or ``stay``)."""
    try:
        logout = parse_logout_request()
        if logout.hint_sub is not None:
            raise LogoutRequestError("'id_token_hint' is not part of the confirmation.")
    except LogoutRequestError as error:
        return _refused(error)
    decision = request.form.get("decision")
    if decision not in ("logout", "stay"):
        return _refused(LogoutRequestError("'decision' is missing."))
    try:
        session = current_session()
        if session is None:
            return _finished(logout, None)
        token = request.form.get("csrf", "")
        if not hmac.compare_digest(token.encode(), _csrf(session).encode()):
            return _refused(LogoutRequestError("The confirmation form is stale; start again."))
        if decision == "stay":
            return _page(
                "oidc/logout_done.html",
                clear=False,
                outcome="stayed",
                failed=[],
                back=logout.destination(),
            )
        return _finished(logout, end_session(session.sid))
    except StoreUnavailableError:
        return _unavailable()
