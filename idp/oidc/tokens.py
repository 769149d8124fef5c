"""Opaque access and refresh tokens in Redis, and the grant they belong to.

A *grant* is one authorization: its id is the hash of the code that started it. Every token
record names its grant, and ``revoked-grant:<grant id>`` revokes all of them at once (a replayed
code, a reused refresh token, a revoked refresh token, withdrawn consent). Keys (each with a TTL):

==================================== =============================================================
``at:<sha256(token)>``               an access token's record, for its life
``rt:<sha256(client id NUL token)>`` a refresh token's record, for its life (keyed by client, so
                                     another client's lookup finds nothing and consumes nothing)
``spent-rt:<same hash>``             a rotated refresh token; the value is its grant id
``revoked-grant:<grant id>``         for as long as a token of the grant could still live
==================================== =============================================================

Refresh tokens exist only for a grant that includes ``offline_access`` (consented) and rotate
on every use: the presented token is taken with ``GETDEL`` and leaves a ``spent-rt`` marker
behind (one Lua script, so two concurrent uses cannot both succeed).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from idp.config import Settings
from idp.oidc.claims import OFFLINE_ACCESS
from idp.oidc.clients import OAuthClient, load_client
from idp.storage.ephemeral import EphemeralStore

__all__ = [
    "OFFLINE_ACCESS",
    "AccessToken",
    "RefreshToken",
    "TokenIssuer",
    "delete_access_token",
    "grant_lifetime",
    "is_grant_revoked",
    "load_access_token",
    "new_access_token",
    "new_refresh_token",
    "peek_refresh_token",
    "revoke_grant",
    "save_access_token",
    "save_refresh_token",
    "take_refresh_token",
]

_TOKEN_MAX = 512


@dataclass(frozen=True)
class AccessToken:
    """What an access token stands for (answers Authlib's ``TokenMixin`` questions)."""

    client_id: str
    resident_id: str
    sub: str
    scope: str
    grant_id: str
    issued_at: int
    expires_at: int
    #: RFC 9449: the JWK thumbprint the token is bound to (``cnf.jkt``), or None for Bearer.
    jkt: str | None = None
    #: The claims released with this token (:mod:`idp.oidc.claims_request`), or None.
    claims: dict[str, Any] | None = None
    revoked: bool = False
    #: The client, once loaded (so one request loads it once).
    client: OAuthClient | None = field(default=None, compare=False, repr=False)

    @property
    def token_type(self) -> str:
        return "DPoP" if self.jkt else "Bearer"

    def check_client(self, client: Any) -> bool:
        return bool(client.get_client_id() == self.client_id)

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_at - self.issued_at

    def is_expired(self) -> bool:
        return time.time() >= self.expires_at

    def is_revoked(self) -> bool:
        return self.revoked

    def get_user(self) -> AccessToken:
        return self

    def get_client(self) -> OAuthClient | None:
        return self.client if self.client is not None else load_client(self.client_id)

    def with_client(self) -> AccessToken | None:
        """This token with its client loaded; None if the client no longer exists."""
        client = self.get_client()
        return None if client is None else replace(self, client=client)


@dataclass(frozen=True)
class RefreshToken:
    """What a refresh token stands for: the grant's facts, to issue the next tokens from."""

    client_id: str
    resident_id: str
    sub: str
    scope: str
    grant_id: str
    auth_time: int
    acr: str
    amr: list[str]
    issued_at: int
    expires_at: int
    #: The grant's absolute end: no rotation extends a refresh token past it.
    grant_expires_at: int
    #: RFC 9449: refresh tokens of public clients are bound to the DPoP key of the grant.
    jkt: str | None = None
    claims: dict[str, Any] | None = None

    def check_client(self, client: Any) -> bool:
        return bool(client.get_client_id() == self.client_id)

    def get_scope(self) -> str:
        return self.scope

    def is_expired(self) -> bool:
        return time.time() >= self.expires_at

    def is_revoked(self) -> bool:
        return False  # a revoked refresh token is not found at all


def new_access_token() -> str:
    """A fresh opaque access token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def new_refresh_token() -> str:
    """A fresh opaque refresh token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def grant_lifetime(settings: Settings, scope: str) -> int:
    """How long a token of a grant with ``scope`` can live: what a revocation must cover."""
    if OFFLINE_ACCESS in scope.split():
        return max(settings.access_token_ttl, settings.refresh_token_max_lifetime)
    return settings.access_token_ttl


# -- access tokens --------------------------------------------------------------------------


def _at_key(token: str) -> str:
    return "at:" + hashlib.sha256(token.encode()).hexdigest()


def save_access_token(store: EphemeralStore, token: str, record: AccessToken) -> None:
    """Store ``record`` under ``token`` until it expires."""
    ttl = max(record.expires_at - int(time.time()), 1)
    data = asdict(record)
    data.pop("revoked")
    data.pop("client")
    store.put_json(_at_key(token), data, ttl=ttl)


def load_access_token(store: EphemeralStore, token: str) -> AccessToken | None:
    """The record of ``token``, None if unknown or expired; ``revoked`` set if its grant is."""
    if not isinstance(token, str) or not 0 < len(token) <= _TOKEN_MAX:
        return None
    data = store.get_json(_at_key(token))
    if not isinstance(data, dict):
        return None
    record = AccessToken(**data)
    if is_grant_revoked(store, record.grant_id):
        return replace(record, revoked=True)
    return record


def delete_access_token(store: EphemeralStore, token: str) -> bool:
    """Forget ``token`` (RFC 7009 revocation); True if it existed."""
    return store.delete(_at_key(token)) > 0


# -- refresh tokens -------------------------------------------------------------------------


def _rt_name(client_id: str, token: str) -> str:
    return hashlib.sha256(f"{client_id}\x00{token}".encode()).hexdigest()


def save_refresh_token(store: EphemeralStore, token: str, record: RefreshToken) -> None:
    """Store ``record`` under ``token`` (for its client) until it expires."""
    ttl = max(record.expires_at - int(time.time()), 1)
    store.put_json("rt:" + _rt_name(record.client_id, token), asdict(record), ttl=ttl)


def peek_refresh_token(store: EphemeralStore, client_id: str, token: str) -> RefreshToken | None:
    """The live record of ``client_id``'s refresh token ``token`` (not consumed), or None."""
    if not isinstance(token, str) or not 0 < len(token) <= _TOKEN_MAX:
        return None
    data = store.get_json("rt:" + _rt_name(client_id, token))
    if not isinstance(data, dict):
        return None
    record = RefreshToken(**data)
    return None if is_grant_revoked(store, record.grant_id) else record


def take_refresh_token(
    store: EphemeralStore, client_id: str, token: str
) -> tuple[RefreshToken | None, str | None]:
    """Consume ``client_id``'s refresh token ``token`` (rotation).

    Returns ``(record, None)`` for a live token, ``(None, grant id)`` for a token that was
    already used (the caller revokes that grant), ``(None, None)`` for an unknown one.
    """
    if not isinstance(token, str) or not 0 < len(token) <= _TOKEN_MAX:
        return None, None
    name = _rt_name(client_id, token)
    raw = store.get(f"rt:{name}")
    if raw is not None:
        grant_id = str(json.loads(raw)["grant_id"])
        raw = store.take_leaving(f"rt:{name}", marker=f"spent-rt:{name}", mark=grant_id)
    if raw is None:
        spent = store.get(f"spent-rt:{name}")
        return None, spent.decode() if spent is not None else None
    return RefreshToken(**json.loads(raw)), None


# -- grants ---------------------------------------------------------------------------------


def revoke_grant(store: EphemeralStore, grant_id: str, *, ttl: int) -> None:
    """Revoke every token of ``grant_id`` (for ``ttl`` seconds: their longest life)."""
    store.put(f"revoked-grant:{grant_id}", b"1", ttl=ttl)


def is_grant_revoked(store: EphemeralStore, grant_id: str) -> bool:
    """True once :func:`revoke_grant` was called for ``grant_id`` (until it expires)."""
    return store.exists(f"revoked-grant:{grant_id}")


class TokenIssuer:
    """Authlib's token generator: opaque access tokens, and a refresh token when the grant has
    ``offline_access`` (or when one is being rotated). ``token_type`` is ``DPoP`` when
    ``dpop_jkt()`` names a proven key for this request, else ``Bearer``."""

    def __init__(self, settings: Settings, dpop_jkt: Callable[[], str | None]) -> None:
        self._settings = settings
        self._dpop_jkt = dpop_jkt

    def __call__(
        self,
        grant_type: str,
        client: Any,
        user: Any = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        scope = scope or ""
        token: dict[str, Any] = {
            "token_type": "DPoP" if self._dpop_jkt() else "Bearer",
            "access_token": new_access_token(),
            "expires_in": expires_in or self._settings.access_token_ttl,
            "scope": scope,
        }
        offline = OFFLINE_ACCESS in scope.split() or grant_type == "refresh_token"
        if include_refresh_token and offline:
            token["refresh_token"] = new_refresh_token()
        return token
