"""Opaque access tokens, kept in Redis under the SHA-256 of the token with a TTL.

Each record names the grant (the authorization code) it came from. Replaying that code sets
``revoked-grant:<grant id>``; a token whose grant is revoked is refused from then on.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from idp.oidc.clients import OAuthClient, load_client
from idp.storage.ephemeral import EphemeralStore

__all__ = [
    "AccessToken",
    "load_access_token",
    "new_access_token",
    "revoke_grant",
    "save_access_token",
]


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
    revoked: bool = False
    #: The client, once loaded (so one request loads it once).
    client: OAuthClient | None = field(default=None, compare=False, repr=False)

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


def new_access_token() -> str:
    """A fresh opaque token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def _key(token: str) -> str:
    return "at:" + hashlib.sha256(token.encode()).hexdigest()


def save_access_token(store: EphemeralStore, token: str, record: AccessToken) -> None:
    """Store ``record`` under ``token`` until it expires."""
    ttl = max(record.expires_at - int(time.time()), 1)
    data = asdict(record)
    data.pop("revoked")
    data.pop("client")
    store.put_json(_key(token), data, ttl=ttl)


def load_access_token(store: EphemeralStore, token: str) -> AccessToken | None:
    """The record of ``token``, None if unknown or expired; ``revoked`` set if its grant is."""
    if not token or len(token) > 512:
        return None
    data = store.get_json(_key(token))
    if not isinstance(data, dict):
        return None
    record = AccessToken(**data)
    if store.exists(f"revoked-grant:{record.grant_id}"):
        return AccessToken(**{**data, "revoked": True})
    return record


def revoke_grant(store: EphemeralStore, grant_id: str, *, ttl: int) -> None:
    """Revoke every token of ``grant_id`` (for ``ttl`` seconds: their longest life)."""
    store.put(f"revoked-grant:{grant_id}", b"1", ttl=ttl)
