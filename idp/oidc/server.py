"""The authorization server: Authlib's Flask server with this provider's grants composed in.

``AuthorizationCodeGrant`` + :class:`~idp.oidc.pkce.S256CodeChallenge` +
:class:`~idp.oidc.grants.IdToken` (``OpenIDCode`` with a required nonce) +
:class:`~idp.oidc.request_checks.RequestChecks`; the rotating refresh token grant
(:class:`~idp.oidc.refresh.RefreshGrant`, also with ID tokens); client authentication
``private_key_jwt`` (:class:`~idp.oidc.client_auth.PrivateKeyJwtAuth`), ``client_secret_basic``
and ``none``; RFC 9207 ``iss`` via :class:`Issuer`; userinfo, revocation (RFC 7009) and
introspection (RFC 7662) as registered endpoints.
"""

from __future__ import annotations

import time
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import Flask, Response, current_app, has_request_context
from flask import request as flask_request

from idp.config import Settings
from idp.extensions import get_store
from idp.oidc import errors
from idp.oidc.claims import offered_scopes
from idp.oidc.client_auth import PrivateKeyJwtAuth, client_secret_basic
from idp.oidc.clients import OAuthClient, load_client
from idp.oidc.dpop import DPOP_ALGS, DPoPVerifier, current_proof
from idp.oidc.grants import AuthorizationCodeRecord, CodeGrant, IdToken, TokenSubject
from idp.oidc.introspection import TokenIntrospection
from idp.oidc.keys import KeyRing
from idp.oidc.pkce import S256CodeChallenge
from idp.oidc.refresh import RefreshGrant
from idp.oidc.request_checks import RequestChecks
from idp.oidc.revocation import TokenRevocation
from idp.oidc.tokens import (
    AccessToken,
    RefreshToken,
    TokenIssuer,
    save_access_token,
    save_refresh_token,
)
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
        self.dpop = DPoPVerifier(settings, get_store)
        self.dpop_algs: tuple[str, ...] = DPOP_ALGS

    @property
    def store(self) -> EphemeralStore:
        return get_store()

    def query_client(self, client_id: Any) -> OAuthClient | None:
        return load_client(client_id)

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        """Authlib's request for the current Flask request, or ``request`` itself when it is
        already one (a pushed or request-object request resolved by :mod:`pushed`)."""
        if isinstance(request, OAuth2Request):
            return request
        created = super().create_oauth2_request(request)
        assert isinstance(created, OAuth2Request)
        return created

    def with_dpop_nonce(self, response: Response) -> Response:
        """Add a fresh ``DPoP-Nonce`` to the response to a request that carried a proof."""
        if (
            self.settings.dpop_nonce_required
            and has_request_context()
            and "DPoP" in flask_request.headers
            and "DPoP-Nonce" not in response.headers
        ):
            response.headers["DPoP-Nonce"] = self.dpop.nonce()
        return response

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """Store the access token and, if one was issued, the refresh token, both naming the
        grant they come from (the code's, or the presented refresh token's)."""
        subject = request.user
        assert isinstance(subject, TokenSubject)
        source = request.authorization_code or request.refresh_token
        now = int(time.time())
        client = request.client
        client_id = client.get_client_id()
        proof = current_proof()
        jkt = proof.jkt if proof is not None else None
        if isinstance(source, AuthorizationCodeRecord):
            auth_time, acr, amr = source.auth_time, source.acr, list(source.amr)
            granted_scope = source.scope
            grant_expires_at = now + self.settings.refresh_token_max_lifetime
            # RFC 9449 section 5: a public client's refresh token is bound to its DPoP key
            refresh_jkt = jkt if client.is_public else None
        else:
            assert isinstance(source, RefreshToken)
            auth_time, acr, amr = source.auth_time, source.acr, list(source.amr)
            granted_scope = source.scope
            grant_expires_at = source.grant_expires_at
            refresh_jkt = source.jkt
        access = AccessToken(
            client_id=client_id,
            resident_id=subject.resident_id,
            sub=subject.sub,
            scope=str(token.get("scope", "")),
            grant_id=source.grant_id,
            issued_at=now,
            expires_at=now + int(token["expires_in"]),
            jkt=jkt,
            claims=source.claims,
        )
        save_access_token(self.store, token["access_token"], access)
        if "refresh_token" in token:
            refresh = RefreshToken(
                client_id=client_id,
                resident_id=subject.resident_id,
                sub=subject.sub,
                scope=granted_scope,
                grant_id=source.grant_id,
                auth_time=auth_time,
                acr=acr,
                amr=amr,
                issued_at=now,
                expires_at=min(now + self.settings.refresh_token_ttl, grant_expires_at),
                grant_expires_at=grant_expires_at,
                jkt=refresh_jkt,
                claims=source.claims,
            )
            save_refresh_token(self.store, token["refresh_token"], refresh)

    def create_bearer_token_generator(self, config: Any) -> TokenIssuer:
        def dpop_jkt() -> str | None:
            proof = current_proof()
            return proof.jkt if proof is not None else None

        return TokenIssuer(self.settings, dpop_jkt)

    def get_authorization_grant(self, request: Any) -> Any:
        """Authlib's lookup, but an unknown ``response_type`` is answered without quoting it
        (Authlib's own error repeats it and fails on characters an error may not carry)."""
        response_type = request.payload.response_type
        if response_type != "code":
            client = self.query_client(request.payload.client_id)
            redirect_uri = request.payload.redirect_uri
            safe = client is not None and redirect_uri and client.check_redirect_uri(redirect_uri)
            # RFC 6749 4.1.2.1: a missing parameter is invalid_request, an unknown value is
            # unsupported_response_type.
            raise errors.oauth_error(
                "unsupported_response_type" if response_type else "invalid_request",
                "The 'response_type' parameter is missing." if not response_type else None,
                redirect_uri=redirect_uri if safe else None,
            )
        return super().get_authorization_grant(request)

    def create_token_response(self, request: Any = None) -> Any:
        """A token request without ``grant_type`` (or not a form body at all) is
        invalid_request (RFC 6749 5.2); an unknown one stays unsupported_grant_type."""
        oauth_request = self.create_oauth2_request(request)
        if oauth_request.payload is None or not oauth_request.payload.grant_type:
            error = errors.oauth_error("invalid_request", "The 'grant_type' parameter is missing.")
            return self.handle_error_response(oauth_request, error)
        return super().create_token_response(oauth_request)

    def validate_requested_scope(self, scope: Any) -> None:
        """Unknown scopes are ignored (the client's allowed scopes decide, see OAuthClient)."""

    def handle_error_response(self, request: Any, error: Any) -> Response:
        return errors.error_response(error)


def build_server(app: Flask, settings: Settings) -> ProviderServer:
    """Compose the server for ``app`` and keep it in ``app.extensions``."""
    keyring = KeyRing(settings)
    server = ProviderServer(settings, keyring)
    server.init_app(app)
    server.scopes_supported = list(offered_scopes(settings.municipalities))
    id_token = IdToken(settings, keyring)
    server.register_grant(CodeGrant, [RequestChecks(), S256CodeChallenge(), id_token])
    server.register_grant(RefreshGrant, [id_token])
    server.register_client_auth_method("private_key_jwt", PrivateKeyJwtAuth(settings, get_store))
    server.register_client_auth_method("client_secret_basic", client_secret_basic)
    server.register_extension(server.issuer)
    server.register_endpoint(build_userinfo_endpoint(settings, get_store, server.dpop))
    server.register_endpoint(TokenRevocation(server))
    server.register_endpoint(TokenIntrospection(server))
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
