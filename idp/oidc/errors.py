"""OAuth / OpenID Connect errors: the only place they are built, from one table.

Every error the provider sends is a row of :data:`ERRORS` (code -> HTTP status, default
description, the sentence shown to a resident). Code elsewhere calls :func:`oauth_error` and
never instantiates Authlib error classes itself. Responses:

- :func:`authorization_error_response` -- the authorization endpoint: a redirect to a
  *registered* redirect URI carrying ``error``, ``state`` (if valid) and ``iss`` (RFC 9207), or,
  when there is no safe redirect URI (unknown client, unregistered URI), an error page.
- :func:`json_error` -- token, userinfo and other JSON endpoints.

Foreign failures are mapped once, by :func:`init_app`'s handlers: ``StoreUnavailableError``
and database outages -> 503 ``temporarily_unavailable``; oversized bodies -> 413
``invalid_request``; an unreadable signing key (wrong ``IDP_KEY_ENCRYPTION_KEY``, an operator
error, not bad input) -> a JSON or page ``server_error``, logged as critical.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, TypeGuard
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from authlib.oauth2.base import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidClientError
from authlib.oauth2.rfc6750.errors import InvalidTokenError
from flask import Flask, Response, json, render_template, request
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import RequestEntityTooLarge

from idp.oidc.keys import KeyStorageError
from idp.storage.ephemeral import StoreUnavailableError

__all__ = [
    "ERRORS",
    "ErrorSpec",
    "OAuth2Error",
    "authorization_error_response",
    "error_page",
    "init_app",
    "is_valid_state",
    "json_error",
    "oauth_error",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErrorSpec:
    """One OAuth error code: its HTTP status, default description and resident-facing text."""

    status: int
    description: str
    message_ja: str
    message_en: str


_BAD_REQUEST_JA = "リクエストに誤りがあります。利用中のサービスに戻ってやり直してください。"
_BAD_REQUEST_EN = "The request is not valid. Go back to the service and try again."

#: Every error code the provider uses. Descriptions are ASCII (RFC 6749 section 5.2).
ERRORS: dict[str, ErrorSpec] = {
    "invalid_request": ErrorSpec(
        400,
        "The request is missing a parameter or is malformed.",
        _BAD_REQUEST_JA,
        _BAD_REQUEST_EN,
    ),
    "invalid_client": ErrorSpec(
        401,
        "Client authentication failed or the client is unknown.",
        "このサービスはこの認証基盤に登録されていません。",
        "This service is not registered with this identity provider.",
    ),
    "invalid_grant": ErrorSpec(
        400,
        "The authorization code or refresh token is invalid, expired, already used, revoked "
        "or issued to another client.",
        _BAD_REQUEST_JA,
        _BAD_REQUEST_EN,
    ),
    "unauthorized_client": ErrorSpec(
        400,
        "The client is not allowed to use this grant or response type.",
        _BAD_REQUEST_JA,
        _BAD_REQUEST_EN,
    ),
    "unsupported_grant_type": ErrorSpec(
        400,
        "Only grant_type=authorization_code and refresh_token are supported.",
        _BAD_REQUEST_JA,
        _BAD_REQUEST_EN,
    ),
    "unsupported_response_type": ErrorSpec(
        400, "Only response_type=code is supported.", _BAD_REQUEST_JA, _BAD_REQUEST_EN
    ),
    "invalid_scope": ErrorSpec(
        400,
        "The requested scope is invalid or not allowed for this client.",
        _BAD_REQUEST_JA,
        _BAD_REQUEST_EN,
    ),
    "access_denied": ErrorSpec(
        403,
        "The resident or the provider denied the request.",
        "ログインは中止されました。",
        "The sign-in was cancelled.",
    ),
    "login_required": ErrorSpec(
        400,
        "The resident must sign in with the card (prompt=none is not possible).",
        _BAD_REQUEST_JA,
        _BAD_REQUEST_EN,
    ),
    "consent_required": ErrorSpec(
        400, "The resident must consent.", _BAD_REQUEST_JA, _BAD_REQUEST_EN
    ),
    "interaction_required": ErrorSpec(
        400, "The resident must interact with the provider.", _BAD_REQUEST_JA, _BAD_REQUEST_EN
    ),
    "account_selection_required": ErrorSpec(
        400, "The resident must select an account.", _BAD_REQUEST_JA, _BAD_REQUEST_EN
    ),
    "request_not_supported": ErrorSpec(
        400, "Request objects (request=) are not supported.", _BAD_REQUEST_JA, _BAD_REQUEST_EN
    ),
    "request_uri_not_supported": ErrorSpec(
        400, "request_uri is not supported.", _BAD_REQUEST_JA, _BAD_REQUEST_EN
    ),
    "registration_not_supported": ErrorSpec(
        400, "The registration parameter is not supported.", _BAD_REQUEST_JA, _BAD_REQUEST_EN
    ),
    "invalid_request_object": ErrorSpec(
        400,
        "The request object is invalid, unsigned or not signed by the client.",
        _BAD_REQUEST_JA,
        _BAD_REQUEST_EN,
    ),
    "invalid_request_uri": ErrorSpec(
        400,
        "The request_uri is unknown, expired, already used or for another client.",
        _BAD_REQUEST_JA,
        _BAD_REQUEST_EN,
    ),
    "invalid_dpop_proof": ErrorSpec(
        400, "The DPoP proof is missing, invalid or replayed.", _BAD_REQUEST_JA, _BAD_REQUEST_EN
    ),
    "use_dpop_nonce": ErrorSpec(
        400,
        "The DPoP proof must carry the nonce in the DPoP-Nonce header.",
        _BAD_REQUEST_JA,
        _BAD_REQUEST_EN,
    ),
    "invalid_token": ErrorSpec(
        401,
        "The access token is invalid, expired or revoked.",
        _BAD_REQUEST_JA,
        _BAD_REQUEST_EN,
    ),
    "insufficient_scope": ErrorSpec(
        403, "The access token does not allow this request.", _BAD_REQUEST_JA, _BAD_REQUEST_EN
    ),
    # The signature result endpoint (idp.oidc.sign_api); never shown to a resident.
    "not_found": ErrorSpec(
        404, "No such signature transaction for this client.", _BAD_REQUEST_JA, _BAD_REQUEST_EN
    ),
    "not_ready": ErrorSpec(
        409, "The resident has not signed yet.", _BAD_REQUEST_JA, _BAD_REQUEST_EN
    ),
    "already_fetched": ErrorSpec(
        410, "The result was already fetched; it is given once.", _BAD_REQUEST_JA, _BAD_REQUEST_EN
    ),
    "expired": ErrorSpec(
        410, "The signature transaction has expired.", _BAD_REQUEST_JA, _BAD_REQUEST_EN
    ),
    "temporarily_unavailable": ErrorSpec(
        503,
        "The service is temporarily unavailable; retry later.",
        "ただいま混み合っているか、一時的に利用できません。しばらくしてからやり直してください。",
        "The service is temporarily unavailable. Please try again later.",
    ),
    "server_error": ErrorSpec(
        500,
        "The provider could not complete the request.",
        "エラーが発生しました。しばらくしてからやり直してください。",
        "Something went wrong. Please try again later.",
    ),
}

#: Authlib classes that add protocol headers (WWW-Authenticate) for some codes.
_CLASSES: dict[str, type[OAuth2Error]] = {
    "invalid_client": InvalidClientError,
    "invalid_token": InvalidTokenError,
}

_STATE_MAX = 255


class _ExtraHeaders:
    """Mixin: protocol headers an error carries besides Authlib's (DPoP challenges, nonces)."""

    extra_headers: list[tuple[str, str]]

    def get_headers(self) -> list[tuple[str, str]]:
        headers = super().get_headers()  # type: ignore[misc]
        replaced = {name.lower() for name, _ in self.extra_headers}
        return [h for h in headers if h[0].lower() not in replaced] + self.extra_headers


class _OAuth2ErrorWithHeaders(_ExtraHeaders, OAuth2Error):
    pass


class _InvalidTokenWithHeaders(_ExtraHeaders, InvalidTokenError):
    pass


_WITH_HEADERS: dict[type[OAuth2Error], type[OAuth2Error]] = {
    OAuth2Error: _OAuth2ErrorWithHeaders,
    InvalidTokenError: _InvalidTokenWithHeaders,
}


def oauth_error(
    code: str,
    description: str | None = None,
    *,
    state: str | None = None,
    redirect_uri: str | None = None,
    status: int | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> OAuth2Error:
    """Build the error for ``code`` (a key of :data:`ERRORS`); raise it or respond with it.

    ``headers`` are added to (or replace) the protocol headers of the response, e.g. a
    ``WWW-Authenticate: DPoP`` challenge and a ``DPoP-Nonce``.
    """
    spec = ERRORS[code]
    cls = _CLASSES.get(code, OAuth2Error)
    if headers:
        cls = _WITH_HEADERS[cls]
    error = cls(description=description or spec.description, status_code=status or spec.status)
    if headers:
        error.extra_headers = list(headers)  # type: ignore[attr-defined]
    error.error = code
    error.state = state
    error.redirect_uri = redirect_uri
    error.redirect_fragment = False
    return error


def is_valid_state(state: Any) -> TypeGuard[str]:
    """``state`` is 1-255 printable ASCII characters (safe to echo back)."""
    return (
        isinstance(state, str)
        and 0 < len(state) <= _STATE_MAX
        and all(0x20 <= ord(char) <= 0x7E for char in state)
    )


def add_query(uri: str, params: list[tuple[str, str]]) -> str:
    """``uri`` with ``params`` appended to its query (existing parameters kept)."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + params
    return urlunsplit(parts._replace(query=urlencode(query)))


def authorization_error_response(error: OAuth2Error, *, issuer: str) -> Response:
    """The authorization endpoint's answer to ``error``: redirect (with ``iss``) or a page."""
    code = str(error.error)
    if code not in ERRORS:  # an Authlib-raised code we do not list: treat as a bad request
        log.warning("unlisted OAuth error code %r", code)
        code = "invalid_request"
    description = error.get_error_description() or ERRORS[code].description
    if error.redirect_uri:
        params = [("error", code), ("error_description", description)]
        if is_valid_state(error.state):
            params.append(("state", error.state))
        params.append(("iss", issuer))
        return redirect_response(add_query(str(error.redirect_uri), params))
    return error_page(code, _page_description(description), status=400)


def _page_description(description: str) -> str:
    """Authlib's text for an unregistered redirect URI quotes it; the page does not."""
    if description.startswith("Redirect URI "):
        return "The redirect_uri is not registered for this client."
    return description


def redirect_response(location: str) -> Response:
    """A 302 to ``location`` that no cache keeps."""
    response = Response("", status=302)
    response.headers["Location"] = location
    response.headers["Cache-Control"] = "no-store"
    return response


def error_page(code: str, description: str | None = None, *, status: int | None = None) -> Response:
    """A page for the resident (Japanese first, English below); never a redirect."""
    spec = ERRORS[code]
    body = render_template(
        "oidc/error.html",
        code=code,
        description=description or spec.description,
        message_ja=spec.message_ja,
        message_en=spec.message_en,
    )
    response = Response(body, status=status or spec.status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def json_error(code: str, description: str | None = None, *, status: int | None = None) -> Response:
    """A JSON error body ``{"error", "error_description"}`` with the code's status."""
    return error_response(oauth_error(code, description, status=status))


#: Authlib codes that are not OAuth error codes, and what the client gets instead.
_RENAMED = {
    "missing_authorization": ("invalid_token", "Missing bearer access token."),
    "unsupported_token_type": ("invalid_token", "Only Bearer access tokens are accepted."),
}


def error_response(error: OAuth2Error) -> Response:
    """The JSON response for an error object (headers such as WWW-Authenticate included)."""
    renamed = _RENAMED.get(str(error.error))
    if renamed is not None:
        error = oauth_error(*renamed)
    if error.error == "invalid_client" and error.status_code != 401:
        # One status for every failed client authentication, whoever raised it (Authlib uses
        # 400 or 401 depending on the method tried last).
        error = oauth_error("invalid_client", error.get_error_description())
    if str(error.error) not in ERRORS:  # an Authlib-raised code we do not list
        log.warning("unlisted OAuth error code %r", error.error)
        error = oauth_error("invalid_request")
    status, body, headers = error()
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    for name, value in headers:
        if name.lower() != "content-type":
            response.headers[name] = value
    response.headers["Cache-Control"] = "no-store"
    return response


def _wants_html() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


def _respond(code: str, description: str | None, status: int | None = None) -> Response:
    if _wants_html():
        return error_page(code, description, status=status)
    return json_error(code, description, status=status)


def init_app(app: Flask) -> None:
    """Register the handlers that map foreign failures to OAuth errors, once for the app."""

    @app.errorhandler(StoreUnavailableError)
    def store_unavailable(exc: StoreUnavailableError) -> Response:
        log.error("ephemeral store unavailable: %s", exc)
        return _respond("temporarily_unavailable", None)

    @app.errorhandler(OperationalError)
    def database_unavailable(exc: OperationalError) -> Response:
        log.error("database unavailable: %s", type(exc.orig).__name__)
        return _respond("temporarily_unavailable", None)

    @app.errorhandler(PoolTimeoutError)
    def database_busy(exc: PoolTimeoutError) -> Response:
        # Every connection of the worker's pool stayed in use past the pool's timeout.
        log.error("database connection pool exhausted")
        return _respond("temporarily_unavailable", None)

    @app.errorhandler(KeyStorageError)
    def keys_unreadable(exc: KeyStorageError) -> Response:
        log.critical("signing key unreadable: %s", exc)
        return _respond("server_error", None)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge) -> Response:
        return _respond("invalid_request", "The request body is too large.", status=413)
