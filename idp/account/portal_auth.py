"""How the account portal knows who is there: a card login like any service, then the session.

- The portal is a first-party client, :data:`PORTAL_CLIENT_ID`, registered on the first visit
  (:func:`ensure_portal_client`; creating the app connects to nothing): redirect URI
  ``<issuer>/account/callback``, public (``none``), PKCE, scope ``openid`` only (no consent
  page: it releases nothing).
- ``/account/login`` sends the browser to ``/authorize`` with ``prompt=login`` and
  ``max_age``; the ``state`` travels in a signed, HttpOnly cookie (:data:`LOGIN_COOKIE`, 15
  minutes) and is compared in constant time at ``/account/callback``, which then relies on the
  provider's own session (:func:`idp.oidc.sessions.current_session`) and checks that its card
  login is not older than this login attempt. The code itself is never exchanged: the portal
  runs inside the provider and needs no token.
- :func:`portal_session` accepts a session only if its ``acr`` is the card+PIN one, its card
  login is at most :func:`portal_max_age` seconds old (default 600, setting
  ``IDP_PORTAL_MAX_AGE``), it was made by the same browser (User-Agent) and the resident exists.
- Forms: :func:`csrf_token` is an HMAC of the session id under the app's secret key, checked
  with :func:`hmac.compare_digest`; :func:`cross_site` refuses a POST whose ``Origin`` or
  ``Sec-Fetch-Site`` names another site.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlencode

from flask import request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError

from idp.extensions import get_settings
from idp.oidc.claims import ACR_CARD_PIN
from idp.oidc.clients import new_client
from idp.oidc.sessions import SessionInfo, current_session
from idp.storage.base import db
from idp.storage.clients import add_client, get_client
from idp.storage.residents import Resident, get_resident

__all__ = [
    "LOGIN_COOKIE",
    "PORTAL_CLIENT_ID",
    "SEEN_COOKIE",
    "PendingLogin",
    "PortalSession",
    "authorize_url",
    "check_csrf",
    "cross_site",
    "csrf_token",
    "ensure_portal_client",
    "portal_max_age",
    "portal_session",
    "read_pending_login",
    "safe_next",
]

log = logging.getLogger(__name__)

PORTAL_CLIENT_ID: Final = "myna-account"
LOGIN_COOKIE: Final = "myna_portal_login"
#: Set after a portal sign-in, so a later visit without a session says "sign in again".
SEEN_COOKIE: Final = "myna_portal_seen"
LOGIN_COOKIE_MAX_AGE: Final = 900
_SALT: Final = "myna-portal-login"


def portal_max_age() -> int:
    """Seconds a card login stays good for the portal (``IDP_PORTAL_MAX_AGE``, default 600; a
    session never outlives ``IDP_SESSION_LIFETIME`` anyway)."""
    settings = get_settings()
    return min(settings.portal_max_age, settings.session_lifetime)


def callback_uri() -> str:
    return get_settings().endpoint("/account/callback")


def ensure_portal_client() -> None:
    """Register the portal's client if it is missing (safe when two requests race)."""
    existing = get_client(PORTAL_CLIENT_ID)
    if existing is not None:
        if callback_uri() not in existing.redirect_uris:
            existing.redirect_uris = [*existing.redirect_uris, callback_uri()]
            db.session.commit()
        return
    created = new_client(
        name="マイナンバーカード アカウント",
        name_en="Your myna-idp account",
        redirect_uris=[callback_uri()],
        auth_method="none",
        scopes=(),
        client_id=PORTAL_CLIENT_ID,
    )
    try:
        add_client(created.client)
    except IntegrityError:
        db.session.rollback()  # another request registered it first
    log.info("registered the account portal's client %s", PORTAL_CLIENT_ID)


@dataclass(frozen=True)
class PendingLogin:
    """A portal login on its way through ``/authorize`` (kept in the signed cookie)."""

    state: str
    next: str
    started: int


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().secret_key, salt=_SALT)


def safe_next(value: str | None) -> str:
    """``value`` if it is a portal path, else ``/account``."""
    if (
        value
        and value.startswith("/account")
        and not value.startswith("/account/callback")
        and "//" not in value
        and "\\" not in value
        and value.isascii()
        and value.isprintable()
    ):
        return value
    return "/account"


def authorize_url(next_path: str, locale: str) -> tuple[str, str]:
    """The ``/authorize`` URL of a new portal login and the cookie value that binds its state."""
    state = secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    params = {
        "response_type": "code",
        "client_id": PORTAL_CLIENT_ID,
        "redirect_uri": callback_uri(),
        "scope": "openid",
        "state": state,
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
        "prompt": "login",
        "max_age": str(portal_max_age()),
        "ui_locales": locale,
    }
    cookie = _serializer().dumps(
        {"state": state, "next": safe_next(next_path), "started": int(time.time())}
    )
    return "/authorize?" + urlencode(params), cookie


def read_pending_login(cookie: str | None) -> PendingLogin | None:
    """The pending login in ``cookie`` if its signature holds and it is not too old."""
    if not cookie:
        return None
    try:
        data = _serializer().loads(cookie, max_age=LOGIN_COOKIE_MAX_AGE)
    except BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    state, next_path, started = data.get("state"), data.get("next"), data.get("started")
    if not isinstance(state, str) or not isinstance(next_path, str) or not isinstance(started, int):
        return None
    return PendingLogin(state, safe_next(next_path), started)


def same_state(pending: PendingLogin, state: str | None) -> bool:
    return state is not None and hmac.compare_digest(pending.state.encode(), state.encode())


def epoch(value: Any) -> float:
    """Seconds since the epoch of a session time (a number or an aware datetime)."""
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


@dataclass(frozen=True)
class PortalSession:
    """A session good enough for the portal, and its resident."""

    session: SessionInfo
    resident: Resident

    @property
    def resident_id(self) -> str:
        return self.resident.id


def portal_session(*, not_before: float | None = None) -> PortalSession | None:
    """The current session if the portal may act on it (see the module docstring), else None."""
    session = current_session()
    if session is None or session.acr != ACR_CARD_PIN:
        return None
    auth_time = epoch(session.auth_time)
    now = time.time()
    if now - auth_time > portal_max_age() + get_settings().clock_leeway:
        return None
    if not_before is not None and auth_time + get_settings().clock_leeway < not_before:
        return None
    agent = request.headers.get("User-Agent", "")
    if session.user_agent and not hmac.compare_digest(session.user_agent.encode(), agent.encode()):
        log.warning("portal: session %s used by another browser; refused", session.sid[:8])
        return None
    resident = get_resident(session.resident_id)
    if resident is None:
        return None
    return PortalSession(session, resident)


def csrf_token(session: SessionInfo) -> str:
    """The form token of ``session`` (bound to its id; nothing stored)."""
    key = get_settings().secret_key.encode()
    mac = hmac.new(key, b"myna-portal-csrf|" + session.sid.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def check_csrf(session: SessionInfo, token: str | None) -> bool:
    """Whether ``token`` is the form token of ``session`` (constant time)."""
    return bool(token) and hmac.compare_digest(csrf_token(session).encode(), str(token).encode())


def cross_site() -> bool:
    """Whether this request says it comes from another site (``Sec-Fetch-Site``, ``Origin``)."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:  # what the browser itself says (every current browser sends it)
        return site not in ("same-origin", "none")
    origin = request.headers.get("Origin")
    return origin is not None and origin != get_settings().origin
