"""The authorization server: Authlib's Flask server with this provider's grants composed in.

``AuthorizationCodeGrant`` + :class:`~idp.oidc.pkce.S256CodeChallenge` +
:class:`~idp.oidc.grants.IdToken` (``OpenIDCode`` with a required nonce) +
:class:`~idp.oidc.request_checks.RequestChecks`; client authentication ``private_key_jwt``
(:class:`~idp.oidc.client_auth.PrivateKeyJwtAuth`), ``client_secret_basic`` and ``none``;
RFC 9207 ``iss`` via :class:`Issuer`; userinfo as a registered endpoint.
"""

from __future__ import annotations

import time
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import Flask, Response, current_app

from idp.config import Settings
from idp.extensions import get_store
from idp.oidc import errors
from idp.oidc.claims import SUPPORTED_SCOPES
from idp.oidc.client_auth import PrivateKeyJwtAuth
from idp.oidc.clients import OAuthClient, load_client
from idp.oidc.grants import AuthorizationCodeRecord, CodeGrant, IdToken, TokenSubject
from idp.oidc.keys import KeyRing
from idp.oidc.pkce import S256CodeChallenge
from idp.oidc.request_checks import RequestChecks
from idp.oidc.tokens import AccessToken, new_access_token, save_access_token
from idp.oidc.userinfo import build_userinfo_endpoint
from idp.storage.ephemeral import EphemeralStore

__all__ = ["Issuer", "ProviderServer", "build_server", "get_keyring", "get_server"]

_SERVER = "myna.oidc_server"
_KEYRING = "myna.keyring"


class Issuer(IssuerParameter):
    """RFC 9207: Authlib's ``IssuerParameter`` returns None unless told the issuer."""

    def __init__(self, issuer: str) -> None:
        self._issuer = issuer

    def get_issuer(self) -> str:
        return self._issuer


class ProviderServer(AuthorizationServer):
    """Authlib's Flask authorization server bound to this provider's settings and stores."""

    def __init__(self, settings: Settings, keyring: KeyRing) -> None:
        super().__init__()
        self.settings = settings
        self.keyring = keyring
        self.issuer = Issuer(settings.issuer)

    @property
    def store(self) -> EphemeralStore:
        return get_store()

    def query_client(self, client_id: Any) -> OAuthClient | None:
        return load_client(client_id)

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        subject = request.user
        code = request.authorization_code
        assert isinstance(subject, TokenSubject)
        assert isinstance(code, AuthorizationCodeRecord)
        now = int(time.time())
        record = AccessToken(
            client_id=request.client.get_client_id(),
            resident_id=subject.resident_id,
            sub=subject.sub,
            scope=str(token.get("scope", "")),
            grant_id=code.grant_id,
            issued_at=now,
            expires_at=now + int(token["expires_in"]),
        )
        save_access_token(self.store, token["access_token"], record)

    def create_bearer_token_generator(self, config: Any) -> BearerTokenGenerator:
        ttl = self.settings.access_token_ttl

        def access_token(**_: Any) -> str:
            return new_access_token()

        def expires_in(client: Any, grant_type: str) -> int:
            return ttl

        return BearerTokenGenerator(access_token, None, expires_in)

    def get_authorization_grant(self, request: Any) -> Any:
        """Authlib's lookup, but an unknown ``response_type`` is answered without quoting it
        (Authlib's own error repeats it and fails on characters an error may not carry)."""
        if request.payload.response_type != "code":
            client = self.query_client(request.payload.client_id)
            redirect_uri = request.payload.redirect_uri
            safe = client is not None and redirect_uri and client.check_redirect_uri(redirect_uri)
            raise errors.oauth_error(
                "unsupported_response_type", redirect_uri=redirect_uri if safe else None
            )
        return super().get_authorization_grant(request)

    def validate_requested_scope(self, scope: Any) -> None:
        """Unknown scopes are ignored (the client's allowed scopes decide, see OAuthClient)."""

    def handle_error_response(self, request: Any, error: Any) -> Response:
        return errors.error_response(error)


def build_server(app: Flask, settings: Settings) -> ProviderServer:
    """Compose the server for ``app`` and keep it in ``app.extensions``."""
    keyring = KeyRing(settings)
    server = ProviderServer(settings, keyring)
    server.init_app(app)
    server.scopes_supported = list(SUPPORTED_SCOPES)
    server.register_grant(
        CodeGrant, [RequestChecks(), S256CodeChallenge(), IdToken(settings, keyring)]
    )
    server.register_client_auth_method("private_key_jwt", PrivateKeyJwtAuth(settings, get_store))
    server.register_extension(server.issuer)
    server.register_endpoint(build_userinfo_endpoint(get_store))
    app.extensions[_SERVER] = server
    app.extensions[_KEYRING] = keyring
    return server


def get_server(app: Flask | None = None) -> ProviderServer:
    """The authorization server of ``app`` (default: the current app)."""
    server = (app or current_app).extensions[_SERVER]
    assert isinstance(server, ProviderServer)
    return server


def get_keyring(app: Flask | None = None) -> KeyRing:
    """The signing key ring of ``app`` (default: the current app)."""
    keyring = (app or current_app).extensions[_KEYRING]
    assert isinstance(keyring, KeyRing)
    return keyring
