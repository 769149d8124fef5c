"""Provider sessions: what a card login leaves behind in the browser, and ending them.

A card login (:func:`idp.oidc.authorize.finish_authorization`) opens a session: a random
secret goes into the session cookie (``__Host-myna-session`` on an https issuer, ``Secure``,
``HttpOnly``, ``SameSite=Lax``; ``myna-session`` on http loopback development) and the session
lives in Redis for ``IDP_SESSION_LIFETIME`` seconds (30 minutes by default, absolute: using the
session does not extend it; a new card login in the same browser does). Keys::

    session:<sid>            JSON: resident, created_at, auth_time, acr, amr, expires_at, UA
    session-clients:<sid>    set of client_ids that were issued a code in the session
    resident-sessions:<id>   set of the resident's sids (entries whose session is gone are
                             dropped when listed)

``sid`` is the base64url SHA-256 of the cookie secret: knowing a ``sid`` (the resident portal
shows them) does not give the cookie. Relying parties never see it either: the ``sid`` claim
of their ID tokens and logout tokens is :func:`client_sid`, an HMAC of the sid and the
client_id, so two services cannot link their pairwise subjects through a shared ``sid``.

Authentication strength (``acr``) is ordered by :data:`ACR_ORDER`, weakest first; a session
satisfies a requested ``acr_values`` only if its own ``acr`` ranks at least as high as one of
the requested (known) values -- a session from a weaker method never satisfies a stronger one.

The public API (used by the resident portal, :mod:`idp.account`): :class:`SessionInfo`,
:class:`LogoutReport`, :func:`current_session`, :func:`sessions_for`, :func:`end_session`,
:func:`end_all_sessions`, :func:`end_client_sessions`. Every function raises
``StoreUnavailableError`` when Redis is down (the app answers it with 503
``temporarily_unavailable``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from flask import Response, has_request_context, request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from idp.extensions import get_settings, get_store
from idp.oidc.backchannel import Delivery, Notice, deliver_logout
from idp.oidc.claims import ACR_CARD_PIN
from idp.oidc.server import get_keyring
from idp.storage.ephemeral import EphemeralStore

__all__ = [
    "ACR_ORDER",
    "LogoutReport",
    "SessionInfo",
    "acr_satisfies",
    "clear_session_cookie",
    "client_sid",
    "current_session",
    "end_all_sessions",
    "end_client_sessions",
    "end_session",
    "get_session",
    "has_session_cookie",
    "hint_audience",
    "open_session",
    "record_client",
    "session_amr",
    "session_cookie_name",
    "sessions_for",
    "set_session_cookie",
    "verify_id_token_hint",
]

log = logging.getLogger(__name__)

#: Authentication context classes this provider issues, weakest first. Today there is one:
#: the card's authentication key after PIN1 (possession + knowledge). A weaker method added
#: later (e.g. a smartphone certificate or a remembered device) goes *before* it, so a session
#: from that method never satisfies a request for the card.
ACR_ORDER: Final[tuple[str, ...]] = (ACR_CARD_PIN,)

_SECRET_BYTES: Final = 32
_UA_MAX: Final = 200


@dataclass(frozen=True)
class SessionInfo:
    """One provider session (times are Unix seconds)."""

    sid: str
    resident_id: str
    created_at: float
    auth_time: int
    acr: str
    expires_at: float
    clients: tuple[str, ...]
    user_agent: str | None


@dataclass(frozen=True)
class LogoutReport:
    """What ending sessions did: how many ended, which clients (client_ids) were told by
    back-channel logout and which could not be reached. Clients without a
    ``backchannel_logout_uri`` are in neither list."""

    sessions_ended: int
    notified: tuple[str, ...]
    failed: tuple[str, ...]


# -- names ----------------------------------------------------------------------------------


def session_cookie_name(issuer: str) -> str:
    """``__Host-myna-session`` on an https issuer; ``myna-session`` on http loopback."""
    return "__Host-myna-session" if issuer.startswith("https://") else "myna-session"


def _sid_of(secret: str) -> str:
    digest = hashlib.sha256(secret.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def client_sid(sid: str, client_id: str) -> str:
    """The ``sid`` one relying party sees for the session ``sid`` (its ID and logout tokens)."""
    key = get_settings().pairwise_secret
    digest = hmac.new(key, f"sid|{sid}|{client_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode("ascii")


def _session_key(sid: str) -> str:
    return f"session:{sid}"


def _clients_key(sid: str) -> str:
    return f"session-clients:{sid}"


def _resident_key(resident_id: str) -> str:
    return f"resident-sessions:{resident_id}"


# -- strength -------------------------------------------------------------------------------


def _rank(acr: str) -> int:
    return ACR_ORDER.index(acr) if acr in ACR_ORDER else -1


def acr_satisfies(session_acr: str, requested: Sequence[str]) -> bool:
    """Whether a session with ``session_acr`` satisfies ``acr_values`` = ``requested``.

    Unknown requested values are ignored (``acr_values`` is voluntary); with no known value
    any session does. Otherwise the session must rank at least as high as the weakest known
    requested value, and a session ``acr`` this provider does not know ranks below all.
    """
    known = [_rank(value) for value in requested if value in ACR_ORDER]
    if not known:
        return True
    return _rank(session_acr) >= min(known)


# -- reading --------------------------------------------------------------------------------


def _store() -> EphemeralStore:
    return get_store()


def _info(sid: str, data: Any, clients: Iterable[str]) -> SessionInfo | None:
    if not isinstance(data, dict):
        return None
    try:
        info = SessionInfo(
            sid=sid,
            resident_id=str(data["resident_id"]),
            created_at=float(data["created_at"]),
            auth_time=int(data["auth_time"]),
            acr=str(data["acr"]),
            expires_at=float(data["expires_at"]),
            clients=tuple(sorted(clients)),
            user_agent=data.get("user_agent") if isinstance(data.get("user_agent"), str) else None,
        )
    except (KeyError, TypeError, ValueError):
        log.warning("malformed session record %s", sid[:8])
        return None
    return info if info.expires_at > time.time() else None


def get_session(sid: str) -> SessionInfo | None:
    """The live session ``sid``, or None."""
    store = _store()
    data = store.get_json(_session_key(sid))
    if data is None:
        return None
    return _info(sid, data, store.set_members(_clients_key(sid)))


def session_amr(sid: str) -> tuple[str, ...]:
    """The ``amr`` values of the login that opened (or last refreshed) the session."""
    data = _store().get_json(_session_key(sid))
    amr = data.get("amr") if isinstance(data, dict) else None
    return tuple(str(v) for v in amr) if isinstance(amr, list) else ()


def _cookie_secret() -> str | None:
    if not has_request_context():
        return None
    value = request.cookies.get(session_cookie_name(get_settings().issuer))
    if value and 40 <= len(value) <= 64 and all(c.isalnum() or c in "-_" for c in value):
        return value
    return None


def has_session_cookie() -> bool:
    """This request carries a well-formed session cookie (live or not)."""
    return _cookie_secret() is not None


def current_session() -> SessionInfo | None:
    """The session of this request's cookie; None if absent, expired or ended."""
    secret = _cookie_secret()
    if secret is None:
        return None
    return get_session(_sid_of(secret))


def sessions_for(resident_id: str) -> list[SessionInfo]:
    """The resident's live sessions, newest first."""
    store = _store()
    index = _resident_key(resident_id)
    found: list[SessionInfo] = []
    gone: list[str] = []
    for sid in store.set_members(index):
        info = get_session(sid)
        if info is None or info.resident_id != resident_id:
            gone.append(sid)
        else:
            found.append(info)
    store.set_remove(index, *gone)
    return sorted(found, key=lambda s: s.created_at, reverse=True)


# -- writing --------------------------------------------------------------------------------


def _user_agent() -> str | None:
    if not has_request_context():
        return None
    agent = request.headers.get("User-Agent")
    if not agent:
        return None
    return "".join(c for c in agent[:_UA_MAX] if c.isprintable())


def open_session(
    *,
    resident_id: str,
    auth_time: int,
    acr: str,
    amr: Sequence[str],
    replace: SessionInfo | None = None,
) -> tuple[SessionInfo, str | None]:
    """Record a card login. Returns the session and the new cookie secret (None when
    ``replace``, the browser's current session of the same resident, was refreshed in place:
    same ``sid`` and clients, new ``auth_time``/``acr``/``amr`` and a full lifetime again)."""
    store = _store()
    lifetime = get_settings().session_lifetime
    now = time.time()
    secret: str | None = None
    if replace is not None and replace.resident_id == resident_id:
        sid, created_at = replace.sid, replace.created_at
    else:
        secret = secrets.token_urlsafe(_SECRET_BYTES)
        sid, created_at = _sid_of(secret), now
    record = {
        "resident_id": resident_id,
        "created_at": created_at,
        "auth_time": int(auth_time),
        "acr": acr,
        "amr": list(amr),
        "expires_at": now + lifetime,
        "user_agent": _user_agent(),
    }
    store.put_json(_session_key(sid), record, ttl=lifetime)
    clients = store.set_members(_clients_key(sid)) if secret is None else set()
    if clients:
        store.set_add(_clients_key(sid), *clients, ttl=lifetime)
    store.set_add(_resident_key(resident_id), sid, ttl=lifetime)
    info = _info(sid, record, clients)
    assert info is not None
    return info, secret


def record_client(session: SessionInfo, client_id: str) -> None:
    """Remember that ``client_id`` was issued a code in ``session``."""
    left = max(1, int(session.expires_at - time.time()) + 1)
    _store().set_add(_clients_key(session.sid), client_id, ttl=left)


def set_session_cookie(response: Response, secret: str) -> None:
    """Put the session cookie on ``response`` (a session cookie for the browser: no Expires;
    the session's end is kept server-side)."""
    issuer = get_settings().issuer
    response.set_cookie(
        session_cookie_name(issuer),
        secret,
        path="/",
        secure=issuer.startswith("https://"),
        httponly=True,
        samesite="Lax",
    )


def clear_session_cookie(response: Response) -> None:
    """Remove the session cookie from the browser."""
    issuer = get_settings().issuer
    response.delete_cookie(
        session_cookie_name(issuer),
        path="/",
        secure=issuer.startswith("https://"),
        httponly=True,
        samesite="Lax",
    )


# -- ending ---------------------------------------------------------------------------------


def _report(ended: int, deliveries: Sequence[Delivery]) -> LogoutReport:
    notified = dict.fromkeys(d.client_id for d in deliveries if d.ok)
    failed = dict.fromkeys(d.client_id for d in deliveries if not d.ok)
    return LogoutReport(ended, tuple(notified), tuple(failed))


def _remove(info: SessionInfo) -> bool:
    store = _store()
    removed = store.delete(_session_key(info.sid), _clients_key(info.sid)) > 0
    store.set_remove(_resident_key(info.resident_id), info.sid)
    return removed


def _notice(info: SessionInfo, client_id: str) -> Notice:
    return Notice(client_id, info.resident_id, client_sid(info.sid, client_id))


def _end(infos: Sequence[SessionInfo]) -> LogoutReport:
    """Delete the sessions first (a failed delivery never keeps one alive), then tell every
    client that was issued a code in them, all at once."""
    ended = [info for info in infos if _remove(info)]
    notices = [_notice(info, client) for info in ended for client in info.clients]
    return _report(len(ended), deliver_logout(notices))


def end_session(sid: str) -> LogoutReport:
    """End the session ``sid``: delete it and send a logout token to each of its clients."""
    info = get_session(sid)
    if info is None:
        return LogoutReport(0, (), ())
    return _end([info])


def end_all_sessions(resident_id: str) -> LogoutReport:
    """End every session of the resident (back-channel logout to every client in them)."""
    return _end(sessions_for(resident_id))


def end_client_sessions(resident_id: str, client_id: str) -> LogoutReport:
    """After a consent revoke: tell ``client_id`` that every session of the resident in which it
    was issued a code has ended for it, and drop it from them (the sessions go on, so
    ``sessions_ended`` is 0)."""
    store = _store()
    notices = []
    for info in sessions_for(resident_id):
        if client_id in info.clients:
            store.set_remove(_clients_key(info.sid), client_id)
            notices.append(_notice(info, client_id))
    return _report(0, deliver_logout(notices))


# -- id_token_hint ----------------------------------------------------------------------------


def verify_id_token_hint(token: Any) -> dict[str, Any] | None:
    """The claims of an ID token this provider signed (an expired one too), or None when it is
    not one: malformed, not signed by a published key of ours, or another issuer."""
    if not isinstance(token, str) or not 0 < len(token) <= 8192:
        return None
    try:
        keys = KeySet.import_key_set(get_keyring().jwks())  # type: ignore[arg-type]
        decoded = jwt.decode(token, keys, algorithms=["ES256", "RS256", "PS256"])
    except (JoseError, ValueError, TypeError):
        return None
    claims = dict(decoded.claims)
    if claims.get("iss") != get_settings().issuer or not isinstance(claims.get("sub"), str):
        return None
    return claims


def hint_audience(claims: dict[str, Any]) -> str | None:
    """The one client an ID token was issued to (``aud`` is a string or a one-item list)."""
    aud = claims.get("aud")
    if isinstance(aud, list) and len(aud) == 1:
        aud = aud[0]
    return aud if isinstance(aud, str) else None
