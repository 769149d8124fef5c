"""The demo RP's side of OpenID Connect Back-Channel Logout 1.0.

The provider POSTs ``logout_token=<JWT>`` to ``/backchannel-logout``. :func:`validate` checks
it the way the specification asks (section 2.6): signature with the provider's JWKS and an
algorithm it advertises, header ``typ`` = ``logout+jwt``, ``iss`` = the issuer, ``aud`` = our
client id, ``iat`` not in the future (beyond a small skew), ``exp`` not passed, a ``jti`` never
seen before, the back-channel logout event, a ``sid`` (this RP registers
``backchannel_logout_session_required``) and no ``nonce``.

This RP keeps its login in a signed cookie, which it cannot delete from the server; so a
logout is remembered in :class:`EndedSessions` (the ``sid`` values the provider ended, kept for
a day) and every request whose cookie names an ended ``sid`` is signed out. That registry is
in memory: enough for the single-process demo, a deployment with several processes keeps it
in a shared store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

__all__ = ["LOGOUT_EVENT", "EndedSessions", "LogoutTokenError", "validate"]

LOGOUT_EVENT: Final = "http://schemas.openid.net/event/backchannel-logout"
_SKEW: Final = 60
_REMEMBER: Final = 24 * 3600


class LogoutTokenError(ValueError):
    """The logout token was refused (the message says why)."""


class EndedSessions:
    """``sid`` values the provider ended, and the ``jti`` values already used (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sids: dict[str, float] = {}
        self._jtis: dict[str, float] = {}

    def _prune(self, now: float) -> None:
        for table in (self._sids, self._jtis):
            for key in [k for k, until in table.items() if until < now]:
                del table[key]

    def end(self, sid: str) -> None:
        now = time.time()
        with self._lock:
            self._prune(now)
            self._sids[sid] = now + _REMEMBER

    def ended(self, sid: Any) -> bool:
        with self._lock:
            return isinstance(sid, str) and sid in self._sids

    def first_use(self, jti: str, until: float) -> bool:
        """True the first time ``jti`` is seen (then remembered until ``until``)."""
        with self._lock:
            self._prune(time.time())
            if jti in self._jtis:
                return False
            self._jtis[jti] = max(until, time.time() + _SKEW)
            return True


def validate(
    token: Any,
    *,
    jwks: Mapping[str, Any],
    algorithms: Sequence[str],
    issuer: str,
    client_id: str,
    registry: EndedSessions,
) -> dict[str, Any]:
    """The claims of a valid logout token; ``LogoutTokenError`` otherwise."""
    if not isinstance(token, str) or not 0 < len(token) <= 8192:
        raise LogoutTokenError("logout_token is missing")
    try:
        decoded = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=list(algorithms))  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError) as exc:
        raise LogoutTokenError(f"signature: {exc}") from exc
    if decoded.header.get("typ") != "logout+jwt":
        raise LogoutTokenError("typ is not logout+jwt")
    claims = dict(decoded.claims)
    now = time.time()
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if claims.get("iss") != issuer:
        raise LogoutTokenError("iss")
    if client_id not in audiences:
        raise LogoutTokenError("aud")
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or iat > now + _SKEW:
        raise LogoutTokenError("iat")
    if not isinstance(exp, int) or exp < now - _SKEW:
        raise LogoutTokenError("exp")
    events = claims.get("events")
    if not isinstance(events, dict) or events.get(LOGOUT_EVENT) != {}:
        raise LogoutTokenError("events")
    if "nonce" in claims:
        raise LogoutTokenError("a logout token has no nonce")
    if not isinstance(claims.get("sid"), str) or not claims["sid"]:
        raise LogoutTokenError("sid is required")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise LogoutTokenError("jti")
    if not registry.first_use(jti, float(exp)):
        raise LogoutTokenError("jti replayed")
    return claims
