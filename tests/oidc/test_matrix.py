"""The negative-test matrix: named bad requests, each answered with one exact error.

Every case in :data:`CASES` sends one kind of bad input and asserts the exact ``error``, how it
is delivered (a redirect to the registered URI with ``state`` and ``iss``, an error page, or
JSON) and the HTTP status. ``docs/negative-matrix.md`` lists the same cases as a table (a test
below keeps the two in step). Cases run on SQLite and PostgreSQL with a real Redis.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from joserfc import jwt
from joserfc.jwk import ECKey
from protocol_support import (
    ALL_ITEMS,
    authorize_pushed,
    consent,
    dpop_proof,
    new_key,
    post_authenticated,
    push,
    request_object,
    server_nonce,
    set_client,
)
from provider_support import (
    ISSUER,
    TOKEN_URL,
    AuthorizationRequest,
    CapturingLogin,
    RelyingParty,
    callback_params,
    enroll_test_resident,
    install_capturing_login,
)

DOC = Path(__file__).parents[2] / "docs" / "negative-matrix.md"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PAR_PREFIX = "urn:ietf:params:oauth:request_uri:"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."


def hs256(secret: bytes, header: dict[str, Any], claims: dict[str, Any]) -> str:
    signing = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{b64(signature)}"


class Harness:
    """What a case needs: the app, a confidential and a public client, a resident."""

    def __init__(self, app: Flask, login: CapturingLogin) -> None:
        self.app = app
        self.login = login
        self.rp = RelyingParty(app, scopes=ALL_ITEMS)
        self.public = RelyingParty(
            app,
            auth_method="none",
            scopes=ALL_ITEMS,
            name="公開",
            redirect_uri="https://p.example/cb",
        )
        with app.app_context():
            self.resident = enroll_test_resident().id

    # -- authorization ------------------------------------------------------------------

    def request(self, **overrides: str | None) -> AuthorizationRequest:
        return self.rp.authorization_request(**overrides)

    def authorize(self, **overrides: str | None) -> tuple[Any, str | None]:
        request = self.request(**overrides)
        return self.rp.authorize(request), request.params.get("state")

    def code(self, rp: RelyingParty | None = None, **overrides: str) -> tuple[str, str]:
        rp = rp or self.rp
        request, params = rp.login(self.login, self.resident, **overrides)
        return params["code"][0], request.verifier

    # -- token endpoint -----------------------------------------------------------------

    def token(
        self,
        code: str,
        verifier: str | None,
        *,
        rp: RelyingParty | None = None,
        headers: dict[str, str] | None = None,
        **extra: str,
    ) -> Any:
        rp = rp or self.rp
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri}
        if verifier is not None:
            form["code_verifier"] = verifier
        form.update(extra)
        return post_authenticated(rp, "/token", form, headers=headers)

    def with_assertion(self, assertion: str) -> Any:
        code, verifier = self.code()
        return self.rp.token_request(code, verifier, assertion=assertion)

    def offline(self) -> dict[str, Any]:
        consent(self.app, self.resident, self.rp, ["name", "offline_access"])
        code, verifier = self.code(scope="openid name offline_access")
        body = self.token(code, verifier).get_json()
        assert "refresh_token" in body, body
        return dict(body)

    def refresh(self, token: str, rp: RelyingParty | None = None, **extra: str) -> Any:
        form = {"grant_type": "refresh_token", "refresh_token": token, **extra}
        return post_authenticated(rp or self.rp, "/token", form)

    def dpop_token(self, proof_key: Any) -> dict[str, Any]:
        code, verifier = self.code()
        proof = dpop_proof(proof_key, nonce=server_nonce(self.app))
        body = self.token(code, verifier, headers={"DPoP": proof}).get_json()
        assert body.get("token_type") == "DPoP", body
        return dict(body)

    def assertion_claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.rp.client_id,
            "sub": self.rp.client_id,
            "aud": TOKEN_URL,
            "iat": now,
            "exp": now + 60,
            "jti": secrets.token_urlsafe(12),
        }
        claims.update(overrides)
        return claims


Run = Callable[[Harness], tuple[Any, str | None]]


@dataclass(frozen=True)
class Case:
    name: str
    area: str
    condition: str
    error: str
    delivery: str  # "redirect" | "page" | "json"
    status: int
    run: Run
    #: For redirects: "echo" (the sent state comes back) or "absent".
    state: str = "echo"


CASES: list[Case] = []


def case(
    name: str,
    area: str,
    condition: str,
    error: str,
    delivery: str,
    status: int | None = None,
    *,
    state: str = "echo",
) -> Callable[[Run], Run]:
    default = {"redirect": 302, "page": 400, "json": 400}[delivery]

    def register(run: Run) -> Run:
        CASES.append(Case(name, area, condition, error, delivery, status or default, run, state))
        return run

    return register


def plain(response: Any) -> tuple[Any, None]:
    return response, None


# == authorization endpoint: PKCE ========================================================


@case("pkce-missing", "PKCE", "no code_challenge", "invalid_request", "redirect")
def _(h: Harness) -> tuple[Any, str | None]:
    return h.authorize(code_challenge=None, code_challenge_method=None)


@case("pkce-plain", "PKCE", "code_challenge_method=plain", "invalid_request", "redirect")
def _(h: Harness) -> tuple[Any, str | None]:
    return h.authorize(code_challenge_method="plain")


@case(
    "pkce-method-missing",
    "PKCE",
    "code_challenge without a method (not taken as plain)",
    "invalid_request",
    "redirect",
)
def _(h: Harness) -> tuple[Any, str | None]:
    return h.authorize(code_challenge_method=None)


@case(
    "pkce-challenge-short", "PKCE", "code_challenge of 10 characters", "invalid_request", "redirect"
)
def _(h: Harness) -> tuple[Any, str | None]:
    return h.authorize(code_challenge="abcdefghij")


@case(
    "pkce-verifier-missing",
    "PKCE",
    "token request without code_verifier",
    "invalid_request",
    "json",
)
def _(h: Harness) -> tuple[Any, str | None]:
    code, _ = h.code()
    return plain(h.token(code, None))


@case("pkce-verifier-wrong", "PKCE", "code_verifier of another request", "invalid_grant", "json")
def _(h: Harness) -> tuple[Any, str | None]:
    code, _ = h.code()
    return plain(h.token(code, secrets.token_urlsafe(48)))


@case(
    "pkce-public-client-verifier-missing",
    "PKCE",
    "public client redeems without code_verifier",
    "invalid_request",
    "json",
)
def _(h: Harness) -> tuple[Any, str | None]:
    code, _ = h.code(h.public)
    return plain(h.token(code, None, rp=h.public))


# == authorization endpoint: clients and redirect URIs ===================================


@case("client-unknown", "redirect URI", "unknown client_id", "invalid_client", "page")
def _(h: Harness) -> tuple[Any, str | None]:
    return plain(h.rp.authorize(h.request(client_id="no-such-client")))


@case(
    "redirect-uri-unregistered",
    "redirect URI",
    "redirect_uri not registered",
    "invalid_request",
    "page",
)
def _(h: Harness) -> tuple[Any, str | None]:
    return plain(h.rp.authorize(h.request(redirect_uri="https://evil.example/cb")))


@case("redirect-uri-missing", "redirect URI", "no redirect_uri", "invalid_request", "page")
def _(h: Harness) -> tuple[Any, str | None]:
    return plain(h.rp.authorize(h.request(redirect_uri=None)))


@case(
    "redirect-uri-path-suffix",
    "redirect URI",
    "registered URI with an extra path segment",
    "invalid_request",
    "page",
)
def _(h: Harness) -> tuple[Any, str | None]:
    return plain(h.rp.authorize(h.request(redirect_uri=h.rp.redirect_uri + "/x")))


@case(
    "redirect-uri-query-added",
    "redirect URI",
    "registered URI with a query added",
    "invalid_request",
    "page",
)
def _(h: Harness) -> tuple[Any, str | None]:
    return plain(h.rp.authorize(h.request(redirect_uri=h.rp.redirect_uri + "?next=/")))


@case(
    "redirect-uri-case-changed",
    "redirect URI",
    "registered URI with the host in upper case",
    "invalid_request",
    "page",
)
def _(h: Harness) -> tuple[Any, str | None]:
    return plain(h.rp.authorize(h.request(redirect_uri=h.rp.redirect_uri.upper())))


@case(
    "redirect-uri-token-mismatch",
    "redirect URI",
    "token request with another redirect_uri than the authorization request",
    "invalid_grant",
    "json",
)
def _(h: Harness) -> tuple[Any, str | None]:
    code, verifier = h.code()
    return plain(h.token(code, verifier, redirect_uri=h.rp.redirect_uri + "/other"))


# == authorization endpoint: state, nonce, scope, response type ==========================


@case("state-missing", "state/nonce", "no state", "invalid_request", "redirect", state="absent")
def _(h: Harness) -> tuple[Any, str | None]:
    return h.authorize(state=None)


@case(
    "state-too-long",
    "state/nonce",
    "state of 256 characters (not echoed)",
    "invalid_request",
    "redirect",
    state="absent",
)
def _(h: Harness) -> tuple[Any, str | None]:
    return h.authorize(state="s" * 256)


@case(
    "state-not-ascii",
    "state/nonce",
    "state with non-ASCII characters (not echoed)",
    "invalid_request",
    "redirect",
    state="absent",
)
def _(h: Harness) -> tuple[Any, str | None]:
    return h.authorize(state="状態")


@case("nonce-missing", "state/nonce", "no nonce", "invalid_request", "redirect")
def _(h: Harness) -> tuple[Any, str | None]:
    return h.authorize(nonce=None)


@case("nonce-too-long", "state/nonce", "nonce of 256 characters", "invalid_request", "redirect")
def _(h: Harness) -> tuple[Any, str | None]:
    return h.authorize(nonce="n" * 256)


@case("scope-without-openid", "scope", "scope without openid", "invalid_scope", "redirect")
def _(h: Harness) -> tuple[Any, str | None]:
    return h.authorize(scope="name")


@case(
    "scope-not-registered",
    "scope",
    "a scope the client is not registered for",
    "invalid_scope",
    "redirect",
)
def _(h: Harness) -> tuple[Any, str | None]:
    other = RelyingParty(h.app, scopes=("name",), name="限定", redirect_uri="https://l.example/cb")
    request = other.authorization_request(scope="openid birthdate")
    return other.authorize(request), request.state


@case(
    "response-type-token",
    "response type",
    "response_type=token",
    "unsupported_response_type",
    "redirect",
)
def _(h: Harness) -> tuple[Any, str | None]:
    return h.authorize(response_type="token")


@case(
    "response-type-hybrid",
    "response type",
    "response_type=code id_token",
    "unsupported_response_type",
    "redirect",
)
def _(h: Harness) -> tuple[Any, str | None]:
    return h.authorize(response_type="code id_token")


@case(
    "response-mode-fragment",
    "response type",
    "response_mode=fragment",
    "invalid_request",
    "redirect",
)
def _(h: Harness) -> tuple[Any, str | None]:
    return h.authorize(response_mode="fragment")


@case(
    "response-mode-form-post",
    "response type",
    "response_mode=form_post",
    "invalid_request",
    "redirect",
)
def _(h: Harness) -> tuple[Any, str | None]:
    return h.authorize(response_mode="form_post")


@case(
    "parameter-repeated-nonce",
    "malformed input",
    "nonce sent twice",
    "invalid_request",
    "redirect",
)
def _(h: Harness) -> tuple[Any, str | None]:
    request = h.request()
    query = urlencode([*request.params.items(), ("nonce", "again")])
    return h.rp.http.get("/authorize?" + query), request.state


@case(
    "parameter-repeated-scope",
    "malformed input",
    "scope sent twice (refused before the redirect URI is trusted)",
    "invalid_request",
    "page",
)
def _(h: Harness) -> tuple[Any, str | None]:
    request = h.request()
    query = urlencode([*request.params.items(), ("scope", "openid")])
    return plain(h.rp.http.get("/authorize?" + query))


@case(
    "registration-parameter",
    "malformed input",
    "registration parameter",
    "registration_not_supported",
    "redirect",
)
def _(h: Harness) -> tuple[Any, str | None]:
    return h.authorize(registration="{}")


@case("claims-malformed", "malformed input", "claims not JSON", "invalid_request", "redirect")
def _(h: Harness) -> tuple[Any, str | None]:
    return h.authorize(claims="{not json")


@case(
    "claims-verified-without-framework",
    "malformed input",
    "verified_claims request without verification.trust_framework",
    "invalid_request",
    "redirect",
)
def _(h: Harness) -> tuple[Any, str | None]:
    bad = {"userinfo": {"verified_claims": {"verification": {}, "claims": {"name": None}}}}
    return h.authorize(claims=json.dumps(bad))


@case(
    "ui-locales-malformed",
    "malformed input",
    "ui_locales not BCP 47",
    "invalid_request",
    "redirect",
)
def _(h: Harness) -> tuple[Any, str | None]:
    return h.authorize(ui_locales="ja_JP!")


@case(
    "login-hint-oversized",
    "oversized input",
    "login_hint of 256 characters",
    "invalid_request",
    "redirect",
)
def _(h: Harness) -> tuple[Any, str | None]:
    return h.authorize(login_hint="h" * 256)


@case(
    "acr-values-oversized",
    "oversized input",
    "acr_values of 513 characters",
    "invalid_request",
    "redirect",
)
def _(h: Harness) -> tuple[Any, str | None]:
    return h.authorize(acr_values="a" * 513)


@case(
    "claims-oversized",
    "oversized input",
    "claims parameter over 4096 characters",
    "invalid_request",
    "redirect",
)
def _(h: Harness) -> tuple[Any, str | None]:
    return h.authorize(claims=json.dumps({"userinfo": {"name": None}, "pad": "x" * 5000}))


@case(
    "body-oversized",
    "oversized input",
    "token request body over IDP_MAX_CONTENT_LENGTH",
    "invalid_request",
    "json",
    413,
)
def _(h: Harness) -> tuple[Any, str | None]:
    return plain(
        h.rp.http.post("/token", data={"grant_type": "authorization_code", "x": "y" * 70000})
    )


# == prompt / max_age ====================================================================


@case(
    "prompt-none",
    "prompt/max_age",
    "prompt=none (no provider session)",
    "login_required",
    "redirect",
)
def _(h: Harness) -> tuple[Any, str | None]:
    return h.authorize(prompt="none")


@case("prompt-none-combined", "prompt/max_age", "prompt=none login", "invalid_request", "redirect")
def _(h: Harness) -> tuple[Any, str | None]:
    return h.authorize(prompt="none login")


@case("prompt-unknown", "prompt/max_age", "prompt=bogus", "invalid_request", "redirect")
def _(h: Harness) -> tuple[Any, str | None]:
    return h.authorize(prompt="bogus")


@case("max-age-negative", "prompt/max_age", "max_age=-1", "invalid_request", "redirect")
def _(h: Harness) -> tuple[Any, str | None]:
    return h.authorize(max_age="-1")


@case("max-age-not-number", "prompt/max_age", "max_age=soon", "invalid_request", "redirect")
def _(h: Harness) -> tuple[Any, str | None]:
    return h.authorize(max_age="soon")


@case(
    "max-age-exceeded",
    "prompt/max_age",
    "login finished with an auth_time older than max_age",
    "login_required",
    "redirect",
)
def _(h: Harness) -> tuple[Any, str | None]:
    request = h.request(max_age="60")
    assert h.rp.authorize(request).status_code == 200
    old = int(time.time()) - 600
    return h.rp.finish(h.login.last, h.resident, auth_time=old), request.state


@case(
    "claims-sub-mismatch",
    "prompt/max_age",
    "claims asks for another resident's sub",
    "login_required",
    "redirect",
)
def _(h: Harness) -> tuple[Any, str | None]:
    claims = {"id_token": {"sub": {"value": "someone-else"}}}
    request = h.request(claims=json.dumps(claims))
    assert h.rp.authorize(request).status_code == 200
    return h.rp.finish(h.login.last, h.resident), request.state


# == codes and refresh tokens ============================================================


@case("code-replay", "code/refresh replay", "code redeemed twice", "invalid_grant", "json")
def _(h: Harness) -> tuple[Any, str | None]:
    code, verifier = h.code()
    assert h.token(code, verifier).status_code == 200
    return plain(h.token(code, verifier))


@case("code-unknown", "code/refresh replay", "a code never issued", "invalid_grant", "json")
def _(h: Harness) -> tuple[Any, str | None]:
    return plain(h.token(secrets.token_urlsafe(32), secrets.token_urlsafe(48)))


@case(
    "code-other-client",
    "code/refresh replay",
    "a code issued to another client",
    "invalid_grant",
    "json",
)
def _(h: Harness) -> tuple[Any, str | None]:
    other = RelyingParty(h.app, name="別", redirect_uri=h.rp.redirect_uri)
    code, verifier = h.code()
    return plain(other.token_request(code, verifier))


@case(
    "refresh-reuse",
    "code/refresh replay",
    "a rotated refresh token used again",
    "invalid_grant",
    "json",
)
def _(h: Harness) -> tuple[Any, str | None]:
    body = h.offline()
    assert h.refresh(body["refresh_token"]).status_code == 200
    return plain(h.refresh(body["refresh_token"]))


@case(
    "refresh-after-reuse",
    "code/refresh replay",
    "the current refresh token after its grant was revoked by a reuse",
    "invalid_grant",
    "json",
)
def _(h: Harness) -> tuple[Any, str | None]:
    body = h.offline()
    current = h.refresh(body["refresh_token"]).get_json()["refresh_token"]
    h.refresh(body["refresh_token"])
    return plain(h.refresh(current))


@case(
    "refresh-other-client",
    "code/refresh replay",
    "another client's refresh token",
    "invalid_grant",
    "json",
)
def _(h: Harness) -> tuple[Any, str | None]:
    body = h.offline()
    other = RelyingParty(h.app, scopes=ALL_ITEMS, name="別", redirect_uri="https://o.example/cb")
    return plain(h.refresh(body["refresh_token"], rp=other))


@case(
    "refresh-scope-wider",
    "code/refresh replay",
    "refresh asking for a wider scope",
    "invalid_scope",
    "json",
)
def _(h: Harness) -> tuple[Any, str | None]:
    body = h.offline()
    return plain(h.refresh(body["refresh_token"], scope="openid name address"))


@case(
    "refresh-not-registered",
    "code/refresh replay",
    "refresh grant by a client not registered for offline_access",
    "unauthorized_client",
    "json",
)
def _(h: Harness) -> tuple[Any, str | None]:
    other = RelyingParty(h.app, name="別", redirect_uri="https://o.example/cb")
    return plain(h.refresh("x", rp=other))


@case(
    "grant-type-unsupported",
    "code/refresh replay",
    "grant_type=password",
    "unsupported_grant_type",
    "json",
)
def _(h: Harness) -> tuple[Any, str | None]:
    return plain(post_authenticated(h.rp, "/token", {"grant_type": "password"}))


# == client authentication ===============================================================


@case(
    "client-auth-missing",
    "client auth",
    "token request without client authentication",
    "invalid_client",
    "json",
    401,
)
def _(h: Harness) -> tuple[Any, str | None]:
    code, verifier = h.code()
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    return plain(h.rp.http.post("/token", data={**form, "redirect_uri": h.rp.redirect_uri}))


@case(
    "client-auth-wrong-method",
    "client auth",
    "a private_key_jwt client authenticates with client_secret_basic",
    "invalid_client",
    "json",
    401,
)
def _(h: Harness) -> tuple[Any, str | None]:
    code, verifier = h.code()
    basic = base64.b64encode(f"{h.rp.client_id}:guess".encode()).decode()
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": h.rp.redirect_uri,
    }
    return plain(h.rp.http.post("/token", data=form, headers={"Authorization": f"Basic {basic}"}))


@case(
    "client-auth-public-as-confidential",
    "client auth",
    "a confidential client sends only client_id (auth method none)",
    "invalid_client",
    "json",
    401,
)
def _(h: Harness) -> tuple[Any, str | None]:
    code, verifier = h.code()
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": h.rp.redirect_uri,
        "client_id": h.rp.client_id,
    }
    return plain(h.rp.http.post("/token", data=form))


@case(
    "client-secret-wrong",
    "client auth",
    "client_secret_basic with a wrong secret",
    "invalid_client",
    "json",
    401,
)
def _(h: Harness) -> tuple[Any, str | None]:
    rp = RelyingParty(
        h.app, auth_method="client_secret_basic", name="秘密", redirect_uri="https://s.example/cb"
    )
    code, verifier = h.code(rp)
    rp.client_secret = "wrong"
    return plain(rp.token_request(code, verifier))


@case(
    "client-auth-two-methods",
    "client auth",
    "HTTP Basic credentials and a client assertion in one request",
    "invalid_request",
    "json",
)
def _(h: Harness) -> tuple[Any, str | None]:
    code, verifier = h.code()
    basic = base64.b64encode(f"{h.rp.client_id}:x".encode()).decode()
    return plain(h.token(code, verifier, headers={"Authorization": f"Basic {basic}"}))


@case(
    "client-auth-basic-not-utf8",
    "malformed input",
    "HTTP Basic credentials that are not base64 of UTF-8",
    "invalid_client",
    "json",
    401,
)
def _(h: Harness) -> tuple[Any, str | None]:
    form = {"grant_type": "authorization_code", "code": "x"}
    return plain(h.rp.http.post("/token", data=form, headers={"Authorization": "Basic gA=="}))


@case(
    "client-auth-basic-empty",
    "malformed input",
    "Authorization: Basic with nothing after it",
    "invalid_client",
    "json",
    401,
)
def _(h: Harness) -> tuple[Any, str | None]:
    return plain(
        h.rp.http.post("/introspect", data={"token": "x"}, headers={"Authorization": "Basic "})
    )


@case(
    "assertion-alg-none",
    "alg confusion",
    "client assertion with alg none",
    "invalid_client",
    "json",
    401,
)
def _(h: Harness) -> tuple[Any, str | None]:
    return plain(h.with_assertion(unsigned({"alg": "none"}, h.assertion_claims())))


@case(
    "assertion-hmac-with-public-key",
    "alg confusion",
    "client assertion HS256-signed with the client's public key as the secret",
    "invalid_client",
    "json",
    401,
)
def _(h: Harness) -> tuple[Any, str | None]:
    public = json.dumps(h.rp.key.as_dict(private=False)).encode()
    token = hs256(public, {"alg": "HS256", "kid": h.rp.key.kid}, h.assertion_claims())
    return plain(h.with_assertion(token))


@case(
    "assertion-other-key",
    "client auth",
    "client assertion signed by an unregistered key",
    "invalid_client",
    "json",
    401,
)
def _(h: Harness) -> tuple[Any, str | None]:
    key = ECKey.generate_key("P-256", parameters={"kid": h.rp.key.kid}, private=True)
    return plain(
        h.with_assertion(jwt.encode({"alg": "ES256", "kid": key.kid}, h.assertion_claims(), key))
    )


@case(
    "assertion-jti-replay",
    "jti replay",
    "client assertion jti used twice",
    "invalid_client",
    "json",
    401,
)
def _(h: Harness) -> tuple[Any, str | None]:
    assertion = h.rp.assertion(jti="once-only")
    assert h.with_assertion(assertion).status_code == 200
    return plain(h.with_assertion(assertion))


@case(
    "assertion-jti-missing",
    "jti replay",
    "client assertion without jti",
    "invalid_client",
    "json",
    401,
)
def _(h: Harness) -> tuple[Any, str | None]:
    return plain(h.with_assertion(h.rp.assertion(jti=None)))


@case(
    "assertion-aud-other-issuer",
    "issuer mix-up",
    "client assertion for another provider's token endpoint",
    "invalid_client",
    "json",
    401,
)
def _(h: Harness) -> tuple[Any, str | None]:
    return plain(h.with_assertion(h.rp.assertion(aud="https://other-idp.example/token")))


@case(
    "assertion-expired",
    "client auth",
    "client assertion past its exp",
    "invalid_client",
    "json",
    401,
)
def _(h: Harness) -> tuple[Any, str | None]:
    now = int(time.time())
    return plain(h.with_assertion(h.rp.assertion(iat=now - 600, exp=now - 300)))


@case(
    "assertion-exp-far-ahead",
    "client auth",
    "client assertion valid for an hour (over IDP_ASSERTION_MAX_LIFETIME)",
    "invalid_client",
    "json",
    401,
)
def _(h: Harness) -> tuple[Any, str | None]:
    return plain(h.with_assertion(h.rp.assertion(exp=int(time.time()) + 3600)))


@case(
    "assertion-iss-not-sub",
    "client auth",
    "client assertion with iss other than sub",
    "invalid_client",
    "json",
    401,
)
def _(h: Harness) -> tuple[Any, str | None]:
    return plain(h.with_assertion(h.rp.assertion(iss="someone-else")))


# == PAR =================================================================================


def _pushed(h: Harness) -> str:
    response = push(h.rp, h.request().params)
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["request_uri"])


@case("par-request-uri-replay", "PAR", "a request_uri used twice", "invalid_request_uri", "page")
def _(h: Harness) -> tuple[Any, str | None]:
    uri = _pushed(h)
    assert authorize_pushed(h.rp, uri).status_code == 200
    return plain(authorize_pushed(h.rp, uri))


@case("par-request-uri-unknown", "PAR", "a request_uri never issued", "invalid_request_uri", "page")
def _(h: Harness) -> tuple[Any, str | None]:
    return plain(authorize_pushed(h.rp, PAR_PREFIX + secrets.token_urlsafe(32)))


@case(
    "par-request-uri-other-client",
    "PAR",
    "another client's request_uri",
    "invalid_request_uri",
    "page",
)
def _(h: Harness) -> tuple[Any, str | None]:
    return plain(authorize_pushed(h.public, _pushed(h)))


@case(
    "par-required",
    "PAR",
    "a client that requires PAR sends a plain request",
    "invalid_request",
    "redirect",
)
def _(h: Harness) -> tuple[Any, str | None]:
    set_client(h.app, h.rp, require_pushed_authorization_requests=True)
    return h.authorize()


@case(
    "par-unauthenticated",
    "PAR",
    "/par without client authentication",
    "invalid_client",
    "json",
    401,
)
def _(h: Harness) -> tuple[Any, str | None]:
    return plain(push(h.rp, h.request().params, authenticate=False))


@case(
    "par-request-uri-pushed", "PAR", "/par body containing request_uri", "invalid_request", "json"
)
def _(h: Harness) -> tuple[Any, str | None]:
    return plain(push(h.rp, {**h.request().params, "request_uri": PAR_PREFIX + "x"}))


@case(
    "par-invalid-request",
    "PAR",
    "/par with an unregistered redirect_uri (JSON, no redirect)",
    "invalid_request",
    "json",
)
def _(h: Harness) -> tuple[Any, str | None]:
    return plain(push(h.rp, h.request(redirect_uri="https://evil.example/cb").params))


@case(
    "request-uri-foreign",
    "PAR",
    "a request_uri that is not from /par",
    "request_uri_not_supported",
    "redirect",
)
def _(h: Harness) -> tuple[Any, str | None]:
    return h.authorize(request_uri="https://rp.example/request.jwt")


# == JAR =================================================================================


def _jar(h: Harness, token: str) -> tuple[Any, str | None]:
    query = {
        "client_id": h.rp.client_id,
        "request": token,
        "redirect_uri": h.rp.redirect_uri,
        "state": "q",
    }
    return h.rp.http.get("/authorize", query_string=query), "q"


def _jar_claims(h: Harness) -> dict[str, Any]:
    return {
        **h.request().params,
        "iss": h.rp.client_id,
        "aud": ISSUER,
        "exp": int(time.time()) + 60,
    }


@case("jar-alg-none", "JAR", "request object with alg none", "invalid_request_object", "redirect")
def _(h: Harness) -> tuple[Any, str | None]:
    return _jar(h, unsigned({"alg": "none"}, _jar_claims(h)))


@case(
    "jar-hmac-with-public-key",
    "alg confusion",
    "request object HS256-signed with the client's public key",
    "invalid_request_object",
    "redirect",
)
def _(h: Harness) -> tuple[Any, str | None]:
    public = json.dumps(h.rp.key.as_dict(private=False)).encode()
    return _jar(h, hs256(public, {"alg": "HS256", "kid": h.rp.key.kid}, _jar_claims(h)))


@case(
    "jar-other-key",
    "JAR",
    "request object signed by an unregistered key",
    "invalid_request_object",
    "redirect",
)
def _(h: Harness) -> tuple[Any, str | None]:
    key = ECKey.generate_key("P-256", parameters={"kid": h.rp.key.kid}, private=True)
    return _jar(h, jwt.encode({"alg": "ES256", "kid": key.kid}, _jar_claims(h), key))


@case(
    "jar-aud-other-issuer",
    "issuer mix-up",
    "request object for another provider (aud)",
    "invalid_request_object",
    "redirect",
)
def _(h: Harness) -> tuple[Any, str | None]:
    return _jar(h, request_object(h.rp, h.request().params, aud="https://other-idp.example"))


@case("jar-expired", "JAR", "request object past its exp", "invalid_request_object", "redirect")
def _(h: Harness) -> tuple[Any, str | None]:
    return _jar(h, request_object(h.rp, h.request().params, exp=int(time.time()) - 300))


@case(
    "jar-client-id-mismatch",
    "JAR",
    "request object client_id of another client",
    "invalid_request_object",
    "redirect",
)
def _(h: Harness) -> tuple[Any, str | None]:
    return _jar(h, request_object(h.rp, h.request().params, client_id=h.public.client_id))


@case(
    "jar-required",
    "JAR",
    "a client that requires signed request objects sends a plain request",
    "invalid_request",
    "redirect",
)
def _(h: Harness) -> tuple[Any, str | None]:
    set_client(h.app, h.rp, require_signed_request_object=True)
    return h.authorize()


# == DPoP ================================================================================


def _dpop_at_token(h: Harness, proof: str) -> tuple[Any, str | None]:
    code, verifier = h.code()
    return plain(h.token(code, verifier, headers={"DPoP": proof}))


@case("dpop-alg-none", "DPoP", "DPoP proof with alg none", "invalid_dpop_proof", "json")
def _(h: Harness) -> tuple[Any, str | None]:
    key = new_key()
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": key.as_dict(private=False)}
    claims = {
        "jti": "j",
        "htm": "POST",
        "htu": TOKEN_URL,
        "iat": int(time.time()),
        "nonce": server_nonce(h.app),
    }
    return _dpop_at_token(h, unsigned(header, claims))


@case("dpop-hmac", "alg confusion", "DPoP proof signed with HS256", "invalid_dpop_proof", "json")
def _(h: Harness) -> tuple[Any, str | None]:
    header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}}
    claims = {"jti": "j", "htm": "POST", "htu": TOKEN_URL, "iat": int(time.time())}
    return _dpop_at_token(h, hs256(b"secret", header, claims))


@case(
    "dpop-htu-other-issuer",
    "issuer mix-up",
    "DPoP proof for another provider's token endpoint",
    "invalid_dpop_proof",
    "json",
)
def _(h: Harness) -> tuple[Any, str | None]:
    return _dpop_at_token(
        h, dpop_proof(new_key(), htu="https://other-idp.example/token", nonce=server_nonce(h.app))
    )


@case(
    "dpop-htm-wrong",
    "DPoP",
    "DPoP proof with htm GET at the token endpoint",
    "invalid_dpop_proof",
    "json",
)
def _(h: Harness) -> tuple[Any, str | None]:
    return _dpop_at_token(h, dpop_proof(new_key(), htm="GET", nonce=server_nonce(h.app)))


@case("dpop-iat-stale", "DPoP", "DPoP proof ten minutes old", "invalid_dpop_proof", "json")
def _(h: Harness) -> tuple[Any, str | None]:
    proof = dpop_proof(new_key(), iat=int(time.time()) - 600, nonce=server_nonce(h.app))
    return _dpop_at_token(h, proof)


@case("dpop-typ-wrong", "DPoP", "DPoP proof with typ JWT", "invalid_dpop_proof", "json")
def _(h: Harness) -> tuple[Any, str | None]:
    return _dpop_at_token(
        h, dpop_proof(new_key(), header={"typ": "JWT"}, nonce=server_nonce(h.app))
    )


@case("dpop-jti-replay", "jti replay", "DPoP proof used twice", "invalid_dpop_proof", "json")
def _(h: Harness) -> tuple[Any, str | None]:
    proof = dpop_proof(new_key(), nonce=server_nonce(h.app))
    assert _dpop_at_token(h, proof)[0].status_code == 200
    return _dpop_at_token(h, proof)


@case("dpop-nonce-missing", "DPoP", "DPoP proof without the server nonce", "use_dpop_nonce", "json")
def _(h: Harness) -> tuple[Any, str | None]:
    return _dpop_at_token(h, dpop_proof(new_key()))


@case(
    "dpop-required", "DPoP", "a client that requires DPoP sends no proof", "invalid_request", "json"
)
def _(h: Harness) -> tuple[Any, str | None]:
    set_client(h.app, h.rp, dpop_bound_access_tokens=True)
    code, verifier = h.code()
    return plain(h.token(code, verifier))


@case(
    "dpop-bound-code-other-key",
    "DPoP",
    "code bound by dpop_jkt redeemed with another key",
    "invalid_grant",
    "json",
)
def _(h: Harness) -> tuple[Any, str | None]:
    code, verifier = h.code(dpop_jkt=new_key("a").thumbprint())
    proof = dpop_proof(new_key("b"), nonce=server_nonce(h.app))
    return plain(h.token(code, verifier, headers={"DPoP": proof}))


@case(
    "dpop-token-as-bearer",
    "DPoP",
    "DPoP-bound access token sent as Bearer to userinfo",
    "invalid_token",
    "json",
    401,
)
def _(h: Harness) -> tuple[Any, str | None]:
    token = h.dpop_token(new_key())["access_token"]
    return plain(h.rp.userinfo(token))


@case(
    "dpop-userinfo-other-key",
    "DPoP",
    "userinfo proof made with another key than cnf.jkt",
    "invalid_dpop_proof",
    "json",
    401,
)
def _(h: Harness) -> tuple[Any, str | None]:
    token = h.dpop_token(new_key("a"))["access_token"]
    proof = dpop_proof(
        new_key("b"),
        htm="GET",
        htu=ISSUER + "/userinfo",
        nonce=server_nonce(h.app),
        access_token=token,
    )
    return plain(
        h.rp.http.get("/userinfo", headers={"Authorization": f"DPoP {token}", "DPoP": proof})
    )


@case(
    "dpop-userinfo-no-ath", "DPoP", "userinfo proof without ath", "invalid_dpop_proof", "json", 401
)
def _(h: Harness) -> tuple[Any, str | None]:
    key = new_key()
    token = h.dpop_token(key)["access_token"]
    proof = dpop_proof(key, htm="GET", htu=ISSUER + "/userinfo", nonce=server_nonce(h.app))
    return plain(
        h.rp.http.get("/userinfo", headers={"Authorization": f"DPoP {token}", "DPoP": proof})
    )


# == resources: userinfo, revocation, introspection ======================================


@case("userinfo-no-token", "tokens", "userinfo without Authorization", "invalid_token", "json", 401)
def _(h: Harness) -> tuple[Any, str | None]:
    return plain(h.rp.http.get("/userinfo"))


@case(
    "userinfo-token-in-query",
    "tokens",
    "access token in the query string",
    "invalid_token",
    "json",
    401,
)
def _(h: Harness) -> tuple[Any, str | None]:
    code, verifier = h.code()
    token = h.token(code, verifier).get_json()["access_token"]
    return plain(h.rp.http.get("/userinfo?access_token=" + token))


@case(
    "userinfo-revoked-token",
    "tokens",
    "access token revoked at /revoke",
    "invalid_token",
    "json",
    401,
)
def _(h: Harness) -> tuple[Any, str | None]:
    code, verifier = h.code()
    token = h.token(code, verifier).get_json()["access_token"]
    assert post_authenticated(h.rp, "/revoke", {"token": token}).status_code == 200
    return plain(h.rp.userinfo(token))


@case(
    "userinfo-token-after-code-replay",
    "code/refresh replay",
    "access token of a replayed code",
    "invalid_token",
    "json",
    401,
)
def _(h: Harness) -> tuple[Any, str | None]:
    code, verifier = h.code()
    token = h.token(code, verifier).get_json()["access_token"]
    h.token(code, verifier)
    return plain(h.rp.userinfo(token))


@case(
    "revoke-other-clients-token",
    "tokens",
    "revoking another client's access token",
    "invalid_request",
    "json",
)
def _(h: Harness) -> tuple[Any, str | None]:
    code, verifier = h.code()
    token = h.token(code, verifier).get_json()["access_token"]
    return plain(post_authenticated(h.public, "/revoke", {"token": token}))


@case("revoke-without-token", "tokens", "/revoke without token", "invalid_request", "json")
def _(h: Harness) -> tuple[Any, str | None]:
    return plain(post_authenticated(h.rp, "/revoke", {}))


@case(
    "introspect-public-client",
    "client auth",
    "a public client calls /introspect",
    "invalid_client",
    "json",
    401,
)
def _(h: Harness) -> tuple[Any, str | None]:
    return plain(post_authenticated(h.public, "/introspect", {"token": "x"}))


# -- the test -----------------------------------------------------------------------------


@pytest.fixture
def harness(app: Flask) -> Harness:
    return Harness(app, install_capturing_login(app))


def outcome(response: Any) -> tuple[str, str, dict[str, list[str]]]:
    """(delivery, error, redirect parameters) of a response."""
    if response.status_code in (302, 303):
        params = callback_params(response.headers["Location"])
        return "redirect", params.get("error", [""])[0], params
    if response.mimetype == "text/html":
        match = re.search(r'id="error-code">([^<]*)<', response.get_data(as_text=True))
        return "page", match.group(1) if match else "", {}
    body = response.get_json(silent=True) or {}
    return "json", str(body.get("error", "")), {}


@pytest.mark.parametrize("matrix_case", CASES, ids=[c.name for c in CASES])
def test_negative_case(harness: Harness, matrix_case: Case) -> None:
    response, sent_state = matrix_case.run(harness)
    delivery, error, params = outcome(response)
    assert (delivery, error) == (matrix_case.delivery, matrix_case.error), response.get_data(
        as_text=True
    )[:400]
    assert response.status_code == matrix_case.status
    if delivery == "redirect":
        assert params["iss"] == [ISSUER]
        if matrix_case.state == "echo":
            assert params.get("state") == [sent_state]
        else:
            assert "state" not in params
    if delivery == "json":
        assert response.headers["Cache-Control"] == "no-store"
    if delivery == "page":
        assert "Location" not in response.headers


def test_the_matrix_is_big_enough_and_names_are_unique() -> None:
    names = [c.name for c in CASES]
    assert len(names) >= 60
    assert len(set(names)) == len(names)


def test_the_documented_table_matches_the_cases() -> None:
    own_table = DOC.read_text().split("\n## Differential run", 1)[0]
    rows = re.findall(r"^\| `([a-z0-9-]+)` \|", own_table, flags=re.MULTILINE)
    assert rows == [c.name for c in CASES]


def render_table() -> str:
    """The table of docs/negative-matrix.md (``python -c`` it to regenerate)."""
    delivered = {
        "redirect": "redirect (`error`, `state`, `iss`)",
        "page": "error page",
        "json": "JSON",
    }
    lines = [
        "| case | area | condition | `error` | delivered as | status |",
        "|---|---|---|---|---|---|",
    ]
    for c in CASES:
        where = delivered[c.delivery]
        if c.delivery == "redirect" and c.state == "absent":
            where = "redirect (`error`, `iss`; no `state`)"
        lines.append(
            f"| `{c.name}` | {c.area} | {c.condition} | `{c.error}` | {where} | {c.status} |"
        )
    return "\n".join(lines) + "\n"
