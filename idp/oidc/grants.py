"""The authorization code grant and its OpenID Connect extension, composed on Authlib.

Codes are opaque, stored in Redis under their SHA-256 for ``IDP_CODE_TTL`` seconds (60 by
default) and redeemed with ``GETDEL`` (atomic: one redemption wins). Redemption leaves a
``spent-code`` marker; presenting the code again finds it, revokes every token the code
issued, refresh tokens included (``revoked-grant:<code hash>``) and answers ``invalid_grant``.

The ID token (:class:`IdToken`) carries ``iss aud exp iat auth_time nonce acr amr sub at_hash``,
``sid`` (the provider session, :mod:`idp.oidc.sessions`) and a ``kid`` header; it is signed
with the client's ``id_token_signed_response_alg`` (ES256 by default). Personal claims go into it
only when the ``claims`` parameter asked for them there (and their items were granted);
otherwise they are released at userinfo only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from authlib.oauth2.rfc6749 import grants
from authlib.oidc.core.grants import OpenIDCode
from flask import g

from idp.config import Settings
from idp.oidc.claims import japan_today
from idp.oidc.claims_request import parse_claims, release
from idp.oidc.dpop import require_binding
from idp.oidc.errors import oauth_error
from idp.oidc.keys import ActiveKey, KeyRing
from idp.oidc.subject import pairwise_sub
from idp.oidc.tokens import OFFLINE_ACCESS, grant_lifetime, revoke_grant
from idp.storage.residents import get_resident

__all__ = [
    "TOKEN_ENDPOINT_AUTH_METHODS",
    "AuthenticatedResident",
    "AuthorizationCodeRecord",
    "CodeGrant",
    "IdToken",
    "TokenSubject",
    "code_hash",
]

log = logging.getLogger(__name__)

#: Client authentication at the token endpoint (each client uses the one it registered).
TOKEN_ENDPOINT_AUTH_METHODS: tuple[str, ...] = ("private_key_jwt", "client_secret_basic", "none")


def code_hash(code: str) -> str:
    """The id under which a code (and the grant it starts) is stored."""
    return hashlib.sha256(code.encode()).hexdigest()


@dataclass(frozen=True)
class AuthenticatedResident:
    """The resident who completed login and consent (Authlib's ``grant_user``)."""

    resident_id: str
    granted_scopes: tuple[str, ...]
    auth_time: int
    amr: tuple[str, ...]
    acr: str
    request_id: str
    #: The provider session's ``sid`` as this client sees it (:func:`idp.oidc.sessions.client_sid`).
    sid: str | None = None


@dataclass(frozen=True)
class AuthorizationCodeRecord:
    """What a code is bound to (answers Authlib's ``AuthorizationCodeMixin`` questions)."""

    grant_id: str
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str
    code_challenge: str
    code_challenge_method: str
    resident_id: str
    auth_time: int
    amr: list[str]
    acr: str
    request_id: str
    issued_at: int
    #: The release plan (:mod:`idp.oidc.claims_request`) when the request had ``claims``.
    claims: dict[str, Any] | None = None
    #: RFC 9449 section 10: the DPoP key the code is bound to (``dpop_jkt``), if any.
    dpop_jkt: str | None = None
    #: The ``sid`` claim of the ID token (OpenID Connect Back-Channel Logout).
    sid: str | None = None

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str:
        return self.acr

    def get_amr(self) -> list[str]:
        return list(self.amr)


@dataclass(frozen=True)
class TokenSubject:
    """The resident as the token endpoint sees them: their id, this client's ``sub`` and the
    claims that go into the ID token besides Authlib's (``auth_time`` etc. on a refresh)."""

    resident_id: str
    sub: str
    id_token_claims: dict[str, Any] = field(default_factory=dict)


class CodeGrant(grants.AuthorizationCodeGrant):
    """Authorization code grant with Redis-backed single-use codes."""

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(TOKEN_ENDPOINT_AUTH_METHODS)

    def generate_authorization_code(self) -> str:
        return secrets.token_urlsafe(32)

    def save_authorization_code(self, code: str, request: Any) -> None:
        user = request.user
        assert isinstance(user, AuthenticatedResident)
        data = request.payload.data
        record = AuthorizationCodeRecord(
            grant_id=code_hash(code),
            client_id=request.client.get_client_id(),
            redirect_uri=data["redirect_uri"],
            scope=" ".join(user.granted_scopes),
            nonce=data["nonce"],
            code_challenge=data["code_challenge"],
            code_challenge_method=data["code_challenge_method"],
            resident_id=user.resident_id,
            auth_time=user.auth_time,
            amr=list(user.amr),
            acr=user.acr,
            request_id=user.request_id,
            issued_at=int(time.time()),
            claims=parse_claims(data["claims"]) if data.get("claims") else None,
            dpop_jkt=data.get("dpop_jkt") or None,
            sid=user.sid,
        )
        ttl = request.client.code_ttl(self.server.settings.code_ttl)
        self.server.store.put_json(f"code:{record.grant_id}", asdict(record), ttl=ttl)

    def query_authorization_code(self, code: str, client: Any) -> AuthorizationCodeRecord | None:
        if not isinstance(code, str) or not 0 < len(code) <= 128:
            return None
        settings: Settings = self.server.settings
        store = self.server.store
        grant_id = code_hash(code)
        spent = f"spent-code:{grant_id}"
        data = store.take_marking(
            f"code:{grant_id}", marker=spent, ttl=settings.access_token_ttl + settings.code_ttl
        )
        if data is None:
            if store.exists(spent):
                # The grant may hold refresh tokens (offline_access): cover their life too.
                revoke_grant(store, grant_id, ttl=grant_lifetime(settings, OFFLINE_ACCESS))
                log.warning("authorization code replayed; its tokens are revoked")
                raise oauth_error("invalid_grant", "The authorization code was already used.")
            return None
        record = AuthorizationCodeRecord(**_loads(data))
        if record.client_id != client.get_client_id():
            raise oauth_error(
                "invalid_grant", "The authorization code was issued to another client."
            )
        return record

    def validate_token_request(self) -> None:
        """Authlib's checks, then the DPoP rules (:func:`idp.oidc.dpop.require_binding`)."""
        super().validate_token_request()
        code = self.request.authorization_code
        assert isinstance(code, AuthorizationCodeRecord)
        require_binding(self.request.client, code.dpop_jkt)

    def delete_authorization_code(self, authorization_code: AuthorizationCodeRecord) -> None:
        """Nothing to do: redemption already removed the code (GETDEL)."""

    def authenticate_user(self, authorization_code: AuthorizationCodeRecord) -> TokenSubject | None:
        resident = get_resident(authorization_code.resident_id)
        if resident is None:
            return None
        settings: Settings = self.server.settings
        client = self.request.client
        sub = pairwise_sub(settings.pairwise_secret, sector=client.sector, resident_id=resident.id)
        released = release(
            authorization_code.claims,
            "id_token",
            resident,
            granted=authorization_code.scope.split(),
            municipalities=settings.municipalities,
            today=japan_today(),
        )
        if authorization_code.sid:
            released = {**released, "sid": authorization_code.sid}
        return TokenSubject(resident_id=resident.id, sub=sub, id_token_claims=released)


class IdToken(OpenIDCode):
    """ID tokens: ``iss``, a single ``aud``, our signing key and its ``kid``; personal claims
    only as the ``claims`` parameter asked."""

    def __init__(self, settings: Settings, keyring: KeyRing) -> None:
        super().__init__(require_nonce=True)
        self._settings = settings
        self._keyring = keyring

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        # The nonce protects the relying party, which checks it in the ID token; the provider
        # binds it to the code and returns it. A reloaded authorization page may repeat it.
        return False

    def get_client_algorithm(self, client: Any) -> str:
        return str(client.id_token_signed_response_alg or self._settings.default_id_token_alg)

    def get_encode_header(self, client: Any) -> dict[str, str]:
        # Authlib asks for the header, then for the key: pick the key once per request so the
        # kid always names the key that signs, even across a rotation boundary.
        active = self._keyring.signing_key(self.get_client_algorithm(client))
        g.myna_id_token_key = active
        return {"alg": active.alg, "kid": active.kid}

    def resolve_client_private_key(self, client: Any) -> Any:
        active = g.pop("myna_id_token_key", None)
        if not isinstance(active, ActiveKey):
            active = self._keyring.signing_key(self.get_client_algorithm(client))
        return active.key

    def get_client_claims(self, client: Any) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self._settings.issuer,
            "aud": client.get_client_id(),
            "iat": now,
            "exp": now + self._settings.id_token_ttl,
        }

    def generate_user_info(self, user: Any, scope: str) -> dict[str, Any]:
        assert isinstance(user, TokenSubject)
        return {**user.id_token_claims, "sub": user.sub}


def _loads(raw: bytes) -> dict[str, Any]:
    data = json.loads(raw)
    assert isinstance(data, dict)
    return data
