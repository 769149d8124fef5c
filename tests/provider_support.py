"""Test support for the OpenID provider: build an app on real services, drive an RP.

Importable from any test (``tests/`` is on ``sys.path``)::

    from provider_support import make_app, RelyingParty, enroll_test_resident

- :func:`make_app` -- ``create_app`` on a given database URL and Redis URL, schema migrated
  (Alembic) and emptied, keys namespaced per app in Redis.
- :class:`RelyingParty` -- a registered client (``private_key_jwt`` with an EC key,
  ``client_secret_basic`` or ``none``) that builds authorization requests with PKCE S256,
  client assertions, token and userinfo requests.
- :class:`CapturingLogin` -- a login starter that records the :class:`AuthorizationContext`
  instead of showing a card login, so a test can call ``finish_authorization`` itself.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from flask import Flask, Response, json
from flask.testing import FlaskClient
from flask_migrate import upgrade
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from sqlalchemy import text

from idp.app import create_app
from idp.extensions import MIGRATIONS_DIR, get_store
from idp.oidc.authorize import AuthorizationContext, finish_authorization, register_login_starter
from idp.oidc.claims import ACR_CARD_PIN, AMR_CARD_PIN
from idp.oidc.clients import new_client
from idp.storage.base import db
from idp.storage.clients import add_client
from idp.storage.models import Base
from idp.storage.residents import Basic4Record, CertificateFacts, Resident, enroll_resident

ISSUER = "http://localhost"
TOKEN_URL = ISSUER + "/token"
_MIGRATED: set[str] = set()


def make_app(database_url: str, redis_url: str, **overrides: Any) -> Flask:
    """An app on these services with an empty, migrated schema and its own Redis namespace."""
    config: dict[str, Any] = {
        "TESTING": True,
        "ISSUER": ISSUER,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": f"test:{uuid.uuid4().hex}:",
        "KEY_CACHE_SECONDS": 0,
    }
    config.update(overrides)
    app = create_app(config)
    with app.app_context():
        if database_url not in _MIGRATED:
            _drop_everything()
            upgrade(directory=str(MIGRATIONS_DIR))
            _MIGRATED.add(database_url)
        else:
            _empty_tables()
    return app


def _drop_everything() -> None:
    Base.metadata.drop_all(db.engine)
    with db.engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))


def _empty_tables() -> None:
    with db.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def enroll_test_resident(
    name: str = "山田　太郎",
    *,
    address: str = "石川県加賀市大聖寺南町ニ４１番地",
    birthdate: date = date(1985, 4, 1),
    gender: str = "male",
) -> Resident:
    """A resident with made-up certificate facts (inside an app context)."""
    now = datetime.now(UTC)

    def facts(kind: str) -> CertificateFacts:
        return CertificateFacts(
            sha256_hex=secrets.token_hex(32),
            issuer=f"C=JP, O=JPKI-TEST, OU={kind}",
            serial_hex=secrets.token_hex(8),
            not_after=now + timedelta(days=365),
            policy_oid="1.2.392.200149.8.5.1.1.20",
        )

    return enroll_resident(
        basic4=Basic4Record(
            name=name,
            address=address,
            birthdate=birthdate,
            gender=gender,
            sex_code={"male": "1", "female": "2"}.get(gender, "3"),
        ),
        auth_certificate=facts("auth"),
        sign_certificate=facts("sign"),
        verified_at=now,
    )


@dataclass
class CapturingLogin:
    """A login starter that remembers the context and answers 200 with its request id."""

    contexts: list[AuthorizationContext] = field(default_factory=list)

    def __call__(self, ctx: AuthorizationContext) -> Response:
        self.contexts.append(ctx)
        return Response(json.dumps({"request_id": ctx.request_id}), mimetype="application/json")

    @property
    def last(self) -> AuthorizationContext:
        return self.contexts[-1]


def install_capturing_login(app: Flask) -> CapturingLogin:
    login = CapturingLogin()
    register_login_starter(app, login)
    return login


@dataclass
class AuthorizationRequest:
    params: dict[str, str]
    verifier: str

    @property
    def state(self) -> str:
        return self.params["state"]


class RelyingParty:
    """A registered client driving the provider through Flask's test client."""

    def __init__(
        self,
        app: Flask,
        *,
        auth_method: str = "private_key_jwt",
        scopes: tuple[str, ...] = ("name", "address", "birthdate", "gender"),
        redirect_uri: str = "https://rp.example.jp/callback",
        alg: str = "ES256",
        name: str = "加賀市 電子申請",
        client_id: str | None = None,
        client_key: Any = None,
    ) -> None:
        self.app = app
        self.http: FlaskClient = app.test_client()
        self.redirect_uri = redirect_uri
        self.auth_method = auth_method
        self.key = client_key or ECKey.generate_key(
            "P-256", parameters={"kid": "rp-key-1"}, private=True
        )
        jwks = (
            KeySet([self.key]).as_dict(private=False) if auth_method == "private_key_jwt" else None
        )
        with app.app_context():
            created = new_client(
                name=name,
                name_en="Kaga City e-Application",
                redirect_uris=[redirect_uri],
                auth_method=auth_method,
                jwks=dict(jwks) if jwks else None,
                id_token_alg=alg,
                scopes=scopes,
                client_id=client_id,
            )
            add_client(created.client)
            self.client_id = created.client.client_id
            self.client_secret = created.client_secret

    # -- authorization ------------------------------------------------------------------

    def authorization_request(self, **overrides: str | None) -> AuthorizationRequest:
        verifier, challenge = pkce_pair()
        params: dict[str, str | None] = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid name address birthdate gender",
            "state": secrets.token_urlsafe(16),
            "nonce": secrets.token_urlsafe(16),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        return AuthorizationRequest(
            params={k: v for k, v in params.items() if v is not None}, verifier=verifier
        )

    def authorize(self, request: AuthorizationRequest) -> Any:
        return self.http.get("/authorize?" + urlencode(request.params))

    def finish(
        self,
        ctx: AuthorizationContext,
        resident_id: str,
        *,
        granted: tuple[str, ...] | None = None,
        auth_time: int | None = None,
    ) -> Any:
        with self.app.test_request_context():
            return finish_authorization(
                ctx,
                resident_id=resident_id,
                granted_scopes=granted if granted is not None else ctx.scopes,
                auth_time=auth_time if auth_time is not None else int(time.time()),
                amr=AMR_CARD_PIN,
                acr=ACR_CARD_PIN,
            )

    def login(
        self, login: CapturingLogin, resident_id: str, **overrides: str | None
    ) -> tuple[AuthorizationRequest, dict[str, list[str]]]:
        """Authorize + finish; the request and the callback's query parameters."""
        request = self.authorization_request(**overrides)
        response = self.authorize(request)
        assert response.status_code == 200, response.get_data(as_text=True)
        callback = self.finish(login.last, resident_id)
        assert callback.status_code == 302
        return request, callback_params(callback.headers["Location"])

    # -- token endpoint -----------------------------------------------------------------

    def assertion(self, **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": TOKEN_URL,
            "iat": now,
            "exp": now + 60,
            "jti": secrets.token_urlsafe(16),
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode({"alg": "ES256", "kid": self.key.kid}, body, self.key)

    def token_request(
        self,
        code: str,
        verifier: str | None,
        *,
        assertion: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> Any:
        form: dict[str, str] = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
        }
        if verifier is not None:
            form["code_verifier"] = verifier
        headers: dict[str, str] = {}
        if self.auth_method == "private_key_jwt":
            form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            form["client_assertion"] = assertion or self.assertion()
        elif self.auth_method == "client_secret_basic":
            pair = f"{self.client_id}:{self.client_secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        else:
            form["client_id"] = self.client_id
        form.update(extra or {})
        return self.http.post("/token", data=form, headers=headers)

    def userinfo(self, access_token: str) -> Any:
        return self.http.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"})

    def store(self) -> Any:
        with self.app.app_context():
            return get_store()


def callback_params(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query, keep_blank_values=True)
