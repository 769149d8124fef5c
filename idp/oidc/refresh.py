"""The refresh token grant (RFC 6749 section 6) with rotation and reuse detection.

A refresh token exists only for a grant whose consented scope includes ``offline_access``
(:class:`~idp.oidc.tokens.TokenIssuer`). Each use, in this order:

1. the client authenticates with its registered method (public clients: ``client_id``);
2. the token is looked up for *this* client (another client's token is simply unknown);
   a token that was already rotated means the grant leaked: **the whole grant is revoked**
   (every access and refresh token issued from that authorization) and ``invalid_grant``;
3. a narrower ``scope`` may be asked for (a wider one is ``invalid_scope``); a token bound to
   a DPoP key (public clients) needs a proof of that key, a client that requires DPoP a proof;
4. the resident's consent to ``offline_access`` for this client must still be active
   (withdrawn consent revokes the grant);
5. the token is consumed atomically (``GETDEL``, leaving a ``spent-rt`` marker); losing that
   race to a concurrent use counts as reuse;
6. a new access token and a new refresh token (same grant, never past the grant's absolute
   end, ``IDP_REFRESH_TOKEN_MAX_LIFETIME``) and, for ``openid``, a new ID token (same ``sub``,
   ``auth_time``, ``acr``, ``amr``; no ``nonce``) are issued.
"""

from __future__ import annotations

import logging
from typing import ClassVar

from authlib.oauth2.rfc6749 import grants

from idp.oidc.claims import japan_today
from idp.oidc.claims_request import release
from idp.oidc.dpop import require_binding
from idp.oidc.errors import oauth_error
from idp.oidc.grants import TOKEN_ENDPOINT_AUTH_METHODS, TokenSubject
from idp.oidc.subject import pairwise_sub
from idp.oidc.tokens import (
    OFFLINE_ACCESS,
    RefreshToken,
    grant_lifetime,
    is_grant_revoked,
    peek_refresh_token,
    revoke_grant,
    take_refresh_token,
)
from idp.storage.consents import get_consent
from idp.storage.residents import get_resident

__all__ = ["RefreshGrant"]

log = logging.getLogger(__name__)


class RefreshGrant(grants.RefreshTokenGrant):
    """Rotating refresh tokens; reuse of a rotated one revokes the grant."""

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(TOKEN_ENDPOINT_AUTH_METHODS)
    INCLUDE_NEW_REFRESH_TOKEN = True

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise oauth_error(
                "unauthorized_client", "The client is not registered for offline_access."
            )
        value = self.request.form.get("refresh_token")
        if not value:
            raise oauth_error("invalid_request", "Missing 'refresh_token'.")
        store = self.server.store
        client_id = client.get_client_id()
        record = peek_refresh_token(store, client_id, value)
        if record is None:
            self._refuse_unknown(client_id, value)
        assert record is not None
        self._check_scope(record)
        require_binding(client, record.jkt)
        self._check_consent(record)
        taken, _ = take_refresh_token(store, client_id, value)
        if taken is None:
            self._revoke(record.grant_id, "refresh token used concurrently")
        self.request.client = client
        self.request.refresh_token = taken

    def _refuse_unknown(self, client_id: str, value: str) -> None:
        _, spent_grant = take_refresh_token(self.server.store, client_id, value)
        if spent_grant is not None:
            self._revoke(spent_grant, "refresh token reused")
        raise oauth_error("invalid_grant", "The refresh token is invalid, expired or revoked.")

    def _revoke(self, grant_id: str, reason: str) -> None:
        settings = self.server.settings
        revoke_grant(self.server.store, grant_id, ttl=grant_lifetime(settings, OFFLINE_ACCESS))
        log.warning("%s; its grant is revoked", reason)
        raise oauth_error(
            "invalid_grant", "The refresh token was already used; the grant is revoked."
        )

    def _check_scope(self, record: RefreshToken) -> None:
        requested = self.request.form.get("scope")
        if requested and not set(str(requested).split()) <= set(record.scope.split()):
            raise oauth_error(
                "invalid_scope", "The requested scope exceeds the scope originally granted."
            )

    def _check_consent(self, record: RefreshToken) -> None:
        consent = get_consent(record.resident_id, record.client_id)
        if consent is None or OFFLINE_ACCESS not in consent.scopes:
            revoke_grant(
                self.server.store,
                record.grant_id,
                ttl=grant_lifetime(self.server.settings, OFFLINE_ACCESS),
            )
            raise oauth_error("invalid_grant", "The resident withdrew consent to offline access.")

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshToken | None:
        """Not used: :meth:`validate_token_request` looks the token up itself."""
        return None

    def authenticate_user(self, refresh_token: RefreshToken) -> TokenSubject:
        if is_grant_revoked(self.server.store, refresh_token.grant_id):
            raise oauth_error("invalid_grant", "The grant was revoked.")
        resident = get_resident(refresh_token.resident_id)
        if resident is None:
            raise oauth_error("invalid_grant", "The resident no longer exists.")
        settings = self.server.settings
        client = self.request.client
        sub = pairwise_sub(settings.pairwise_secret, sector=client.sector, resident_id=resident.id)
        scope = self.request.form.get("scope") or refresh_token.scope
        released = release(
            refresh_token.claims,
            "id_token",
            resident,
            granted=str(scope).split(),
            municipalities=settings.municipalities,
            today=japan_today(),
        )
        return TokenSubject(
            resident_id=resident.id,
            sub=sub,
            id_token_claims={
                **released,
                "auth_time": refresh_token.auth_time,
                "acr": refresh_token.acr,
                "amr": list(refresh_token.amr),
            },
        )

    def revoke_old_credential(self, refresh_token: RefreshToken) -> None:
        """Nothing to do: validation already consumed the presented token."""
