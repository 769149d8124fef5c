"""Token introspection (RFC 7662) at ``POST /introspect``, on Authlib's
``IntrospectionEndpoint``.

Callers authenticate as confidential clients (``private_key_jwt`` or ``client_secret_basic``;
never ``none``). A client may introspect its own access and refresh tokens; a client registered
as a *resource server* may also introspect any client's access token. Anything else --
unknown, expired, revoked, or not the caller's to see -- is ``{"active": false}`` and nothing
more, so introspection reveals nothing about tokens the caller may not see.

An active answer carries ``scope``, ``client_id``, ``sub`` (the pairwise subject of the
token's client), ``iss``, ``iat``, ``exp``, ``token_type`` (``Bearer`` or ``DPoP``) and, for a
DPoP-bound token, ``cnf.jkt`` (RFC 9449 section 6.2).
"""

from __future__ import annotations

from typing import Any, ClassVar

from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from idp.oidc.errors import oauth_error
from idp.oidc.revocation import FoundToken, find_token
from idp.oidc.tokens import AccessToken

__all__ = ["TokenIntrospection"]


class TokenIntrospection(IntrospectionEndpoint):
    """RFC 7662 for this provider's Redis-held tokens."""

    CLIENT_AUTH_METHODS: ClassVar[list[str]] = ["private_key_jwt", "client_secret_basic"]

    def authenticate_token(self, request: Any, client: Any) -> FoundToken | None:
        value = request.form.get("token")
        if not value:
            raise oauth_error("invalid_request", "Missing 'token'.")
        found = find_token(
            self.server, value, request.form.get("token_type_hint"), client.get_client_id()
        )
        if found is None or not self.check_permission(found, client, request):
            return None
        return found

    def check_permission(self, token: FoundToken, client: Any, request: Any) -> bool:
        record = token[1]
        if record.check_client(client):
            return True
        return isinstance(record, AccessToken) and bool(client.row.resource_server)

    def create_introspection_payload(self, token: FoundToken | None) -> dict[str, Any]:
        if token is None:
            return {"active": False}
        record = token[1]
        if record.is_expired() or record.is_revoked():
            return {"active": False}
        return self.introspect_token(token)

    def introspect_token(self, token: FoundToken) -> dict[str, Any]:
        record = token[1]
        payload: dict[str, Any] = {
            "active": True,
            "scope": record.scope,
            "client_id": record.client_id,
            "sub": record.sub,
            "iss": self.server.settings.issuer,
            "iat": record.issued_at,
            "exp": record.expires_at,
        }
        if isinstance(record, AccessToken):
            payload["token_type"] = record.token_type
            if record.jkt:
                payload["cnf"] = {"jkt": record.jkt}
        return payload
