"""Token revocation (RFC 7009) at ``POST /revoke``, on Authlib's ``RevocationEndpoint``.

The client authenticates with its registered method (public clients send ``client_id``).
``token_type_hint`` only orders the search; an unknown hint is ignored (RFC 7009 section
2.1). Answers:

- an access token of this client: it is forgotten at once;
- a refresh token of this client: **its whole grant is revoked** (every access and refresh
  token issued from that authorization), as RFC 7009 section 2.1 recommends;
- an access token of another client: ``invalid_request`` (nothing is revoked);
- an unknown, expired or already revoked token: ``200`` all the same (section 2.2).
"""

from __future__ import annotations

from typing import Any, ClassVar

from authlib.oauth2.rfc7009 import RevocationEndpoint

from idp.oidc.errors import oauth_error
from idp.oidc.grants import TOKEN_ENDPOINT_AUTH_METHODS
from idp.oidc.tokens import (
    AccessToken,
    RefreshToken,
    delete_access_token,
    grant_lifetime,
    load_access_token,
    peek_refresh_token,
    revoke_grant,
)

__all__ = ["FoundToken", "TokenRevocation", "find_token"]

FoundToken = tuple[str, AccessToken | RefreshToken]


def find_token(server: Any, value: Any, hint: Any, client_id: str) -> FoundToken | None:
    """``(value, record)`` of an access token (any client's) or of ``client_id``'s refresh
    token, searched in the order ``hint`` suggests; None if there is none."""
    if not isinstance(value, str) or not value:
        return None
    store = server.store

    def access() -> AccessToken | None:
        return load_access_token(store, value)

    def refresh() -> RefreshToken | None:
        return peek_refresh_token(store, client_id, value)

    order = (refresh, access) if hint == "refresh_token" else (access, refresh)
    for lookup in order:
        record = lookup()
        if record is not None:
            return value, record
    return None


class TokenRevocation(RevocationEndpoint):
    """RFC 7009 for this provider's Redis-held tokens."""

    CLIENT_AUTH_METHODS: ClassVar[list[str]] = list(TOKEN_ENDPOINT_AUTH_METHODS)

    def authenticate_token(self, request: Any, client: Any) -> FoundToken | None:
        value = request.form.get("token")
        if not value:
            raise oauth_error("invalid_request", "Missing 'token'.")
        found = find_token(
            self.server, value, request.form.get("token_type_hint"), client.get_client_id()
        )
        if found is not None and not found[1].check_client(client):
            raise oauth_error("invalid_request", "The token was not issued to this client.")
        return found

    def revoke_token(self, token: FoundToken, request: Any) -> None:
        value, record = token
        store = self.server.store
        if isinstance(record, RefreshToken):
            revoke_grant(
                store, record.grant_id, ttl=grant_lifetime(self.server.settings, record.scope)
            )
        else:
            delete_access_token(store, value)
