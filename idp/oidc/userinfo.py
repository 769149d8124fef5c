"""The userinfo endpoint: an access token in, the consented claims out.

Authlib's ``UserInfoEndpoint`` and ``ResourceProtector`` do the protocol; this module finds
tokens in Redis and builds the claims from the stored resident following the token's release
plan (:mod:`idp.oidc.claims_request`): the claims asked for at userinfo (by scope or by the
``claims`` parameter) whose items were granted with the token. Unsigned JSON only.

Two schemes (RFC 9449 section 7):

- ``Authorization: Bearer <token>`` for tokens that are not sender-constrained; a DPoP-bound
  token presented as Bearer is ``invalid_token``;
- ``Authorization: DPoP <token>`` with a ``DPoP`` proof of the token's key (``htm``, ``htu`` =
  the userinfo URL, ``ath`` = the token's hash, a server nonce): errors are 401 with a
  ``WWW-Authenticate: DPoP`` challenge (and a fresh ``DPoP-Nonce`` for ``use_dpop_nonce``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oidc.core import UserInfoEndpoint

from idp.config import Settings
from idp.extensions import get_settings
from idp.oidc.claims import japan_today
from idp.oidc.claims_request import release
from idp.oidc.dpop import DPoPVerifier
from idp.oidc.errors import oauth_error
from idp.oidc.tokens import AccessToken, load_access_token
from idp.storage.ephemeral import EphemeralStore
from idp.storage.residents import get_resident

__all__ = [
    "AccessTokenValidator",
    "DPoPTokenValidator",
    "ResidentUserInfo",
    "build_userinfo_endpoint",
]


class AccessTokenValidator(BearerTokenValidator):
    """Bearer tokens from the Redis store (never a DPoP-bound one)."""

    def __init__(self, store: Callable[[], EphemeralStore]) -> None:
        super().__init__()
        self._store = store

    def authenticate_token(self, token_string: str) -> AccessToken | None:
        token = load_access_token(self._store(), token_string)
        if token is not None and token.jkt is not None:
            raise oauth_error("invalid_token", "This access token must be used with DPoP.")
        # None if unknown, expired, or its client was removed
        return None if token is None else token.with_client()


class DPoPTokenValidator(BearerTokenValidator):
    """``Authorization: DPoP`` tokens: the proof is checked before the token is looked up."""

    TOKEN_TYPE = "dpop"  # noqa: S105 (the authorization scheme, not a secret)

    def __init__(
        self, settings: Settings, store: Callable[[], EphemeralStore], verifier: DPoPVerifier
    ) -> None:
        super().__init__()
        self._settings = settings
        self._store = store
        self._verifier = verifier

    def validate_request(self, request: Any) -> None:
        token = str(request.headers.get("Authorization", "")).split(None, 1)[-1]
        proof = self._verifier.check(
            request.headers,
            method=request.method,
            url=self._settings.endpoint("/userinfo"),
            access_token=token,
            resource=True,
        )
        assert proof is not None  # check() insists on a proof when given an access token
        request.dpop_jkt = proof.jkt

    def authenticate_token(self, token_string: str) -> AccessToken | None:
        token = load_access_token(self._store(), token_string)
        return None if token is None else token.with_client()

    def validate_token(self, token: Any, scopes: Any, request: Any) -> None:
        if not isinstance(token, AccessToken) or token.is_expired() or token.is_revoked():
            raise self._invalid("invalid_token", "The access token is invalid, expired or revoked.")
        if token.jkt is None or token.jkt != getattr(request, "dpop_jkt", None):
            raise self._invalid(
                "invalid_dpop_proof", "The DPoP proof is not made with the token's key."
            )
        if "openid" not in token.scope.split():
            raise oauth_error("insufficient_scope")

    def _invalid(self, code: str, description: str) -> Exception:
        challenge = f'DPoP error="{code}", error_description="{description}"'
        return oauth_error(code, description, status=401, headers=[("WWW-Authenticate", challenge)])


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


def build_userinfo_endpoint(
    settings: Settings, store: Callable[[], EphemeralStore], verifier: DPoPVerifier
) -> ResidentUserInfo:
    """The endpoint object to register on the authorization server."""
    protector = ResourceProtector()
    protector.register_token_validator(AccessTokenValidator(store))
    protector.register_token_validator(DPoPTokenValidator(settings, store, verifier))
    return ResidentUserInfo(resource_protector=protector)
