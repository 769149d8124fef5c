"""The userinfo endpoint: a bearer access token in, the consented claims out.

Authlib's ``UserInfoEndpoint`` and ``ResourceProtector`` do the protocol; this module finds
tokens in Redis and builds the claims from the stored resident following the token's release
plan (:mod:`idp.oidc.claims_request`): the claims asked for at userinfo (by scope or by the
``claims`` parameter) whose items were granted with the token. Unsigned JSON only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oidc.core import UserInfoEndpoint

from idp.extensions import get_settings
from idp.oidc.claims import japan_today
from idp.oidc.claims_request import release
from idp.oidc.errors import oauth_error
from idp.oidc.tokens import AccessToken, load_access_token
from idp.storage.ephemeral import EphemeralStore
from idp.storage.residents import get_resident

__all__ = ["AccessTokenValidator", "ResidentUserInfo", "build_userinfo_endpoint"]


class AccessTokenValidator(BearerTokenValidator):
    """Bearer tokens from the Redis store."""

    def __init__(self, store: Callable[[], EphemeralStore]) -> None:
        super().__init__()
        self._store = store

    def authenticate_token(self, token_string: str) -> AccessToken | None:
        token = load_access_token(self._store(), token_string)
        # None if unknown, expired, or its client was removed
        return None if token is None else token.with_client()


class ResidentUserInfo(UserInfoEndpoint):
    """Userinfo from the resident record, limited to the token's scopes."""

    def generate_user_info(self, user: Any, scope: str) -> dict[str, Any]:
        assert isinstance(user, AccessToken)
        resident = get_resident(user.resident_id)
        if resident is None:
            raise oauth_error("invalid_token", "The resident no longer exists.")
        settings = get_settings()
        released = release(
            user.claims,
            "userinfo",
            resident,
            granted=scope.split(),
            municipalities=settings.municipalities,
            today=japan_today(),
        )
        return {**released, "sub": user.sub}


def build_userinfo_endpoint(store: Callable[[], EphemeralStore]) -> ResidentUserInfo:
    """The endpoint object to register on the authorization server."""
    protector = ResourceProtector()
    protector.register_token_validator(AccessTokenValidator(store))
    return ResidentUserInfo(resource_protector=protector)
