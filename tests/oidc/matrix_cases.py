"""The differential negative-test matrix as data: one row per bad request, run against both
providers (``tests/oidc/test_differential.py``).

Each :class:`Row` names the case, says what is sent, builds the request against any
:class:`~differential_support.Target`, and records the exact answer of this provider (``ours``)
and of node-oidc-provider (``peer``) as ``"<kind> <error> <status>"`` (kind: ``redirect`` to the
client with ``error``, ``page`` shown to the user, ``json`` error body, ``accepted``). Names
shared with ``tests/oidc/test_matrix.py`` mean the same case there. ``docs/negative-matrix.md``
carries the table (:func:`render_table`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from differential_support import Answer, Target, b64
from joserfc.jwk import ECKey, RSAKey

PAR_PREFIX = "urn:ietf:params:oauth:request_uri:"
Build = Callable[[Target], Answer]


@dataclass(frozen=True)
class Row:
    name: str
    area: str
    sent: str
    build: Build
    ours: str
    peer: str
    note: str = ""


ROWS: list[Row] = []


def row(
    name: str, area: str, sent: str, ours: str, peer: str, note: str = ""
) -> Callable[[Build], Build]:
    def register(build: Build) -> Build:
        ROWS.append(Row(name, area, sent, build, ours, peer, note))
        return build

    return register


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."


def hs256(secret: bytes, header: dict[str, Any], claims: dict[str, Any]) -> str:
    signing = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{b64(signature)}"


def assertion_claims(t: Target, role: str = "jwt", **overrides: Any) -> dict[str, Any]:
    client_id = t.client(role).client_id
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": t.url("token"),
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(12),
    }
    claims.update(overrides)
    return claims


def with_assertion(t: Target, assertion: str, role: str = "jwt") -> Answer:
    code, verifier = t.code(role)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": t.client(role).redirect_uri,
        "code_verifier": verifier,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    return t.post("token", form, role=None)


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def pushed(t: Target, role: str = "jwt", **overrides: str | None) -> str:
    params, _ = t.auth_request(role, **overrides)
    answer = t.post("par", params, role=role)
    assert answer.status == 201, answer.text[:300]
    return str(answer.json()["request_uri"])


def authorize_pushed(t: Target, request_uri: str, role: str = "jwt") -> Answer:
    return t.get(
        "authorization", {"client_id": t.client(role).client_id, "request_uri": request_uri}
    )


def jar(t: Target, token: str, role: str = "jwt") -> Answer:
    spec = t.client(role)
    return t.get(
        "authorization",
        {
            "client_id": spec.client_id,
            "request": token,
            "redirect_uri": spec.redirect_uri,
            "state": "q",
        },
    )


def jar_params(t: Target, role: str = "jwt") -> dict[str, str]:
    params, _ = t.auth_request(role, state="q")
    return params


def dpop_at_token(t: Target, proof: str) -> Answer:
    code, verifier = t.code()
    return t.redeem(code, verifier, headers={"dpop": proof})


def dpop_tokens(t: Target, key: ECKey, role: str = "jwt") -> dict[str, Any]:
    code, verifier = t.code(role)
    body = t.redeem(code, verifier, role, headers={"dpop": t.dpop_proof(key)}).json()
    assert body.get("token_type") == "DPoP", body
    return dict(body)


def tokens(t: Target, role: str = "jwt") -> dict[str, Any]:
    code, verifier = t.code(role)
    body = t.redeem(code, verifier, role).json()
    assert "access_token" in body, body
    return dict(body)


def userinfo(t: Target, authorization: str | None, headers: dict[str, str] | None = None) -> Answer:
    all_headers = dict(headers or {})
    if authorization:
        all_headers["authorization"] = authorization
    return t.send("GET", t.url("userinfo"), headers=all_headers)


# == PKCE ======================================================================================


@row(
    "pkce-missing",
    "PKCE",
    "no code_challenge",
    "redirect invalid_request 302",
    "redirect invalid_request 303",
)
def _(t: Target) -> Answer:
    return t.authorize(code_challenge=None, code_challenge_method=None)


@row(
    "pkce-plain",
    "PKCE",
    "code_challenge_method=plain",
    "redirect invalid_request 302",
    "redirect invalid_request 303",
)
def _(t: Target) -> Answer:
    return t.authorize(code_challenge_method="plain")


@row(
    "pkce-method-missing",
    "PKCE",
    "code_challenge without a method",
    "redirect invalid_request 302",
    "redirect invalid_request 303",
)
def _(t: Target) -> Answer:
    return t.authorize(code_challenge_method=None)


@row(
    "pkce-challenge-short",
    "PKCE",
    "code_challenge of 10 characters",
    "redirect invalid_request 302",
    "redirect invalid_request 303",
)
def _(t: Target) -> Answer:
    return t.authorize(code_challenge="abcdefghij")


@row(
    "pkce-verifier-missing",
    "PKCE",
    "token request without code_verifier",
    "json invalid_request 400",
    "json invalid_grant 400",
)
def _(t: Target) -> Answer:
    code, _ = t.code()
    return t.redeem(code, None)


@row(
    "pkce-verifier-wrong",
    "PKCE",
    "code_verifier of another request",
    "json invalid_grant 400",
    "json invalid_grant 400",
)
def _(t: Target) -> Answer:
    code, _ = t.code()
    return t.redeem(code, secrets.token_urlsafe(48))


@row(
    "pkce-public-client-verifier-missing",
    "PKCE",
    "public client redeems without code_verifier",
    "json invalid_request 400",
    "json invalid_grant 400",
)
def _(t: Target) -> Answer:
    code, _ = t.code("public")
    return t.redeem(code, None, "public")


# == clients and redirect URIs =================================================================


@row(
    "client-unknown",
    "redirect URI",
    "unknown client_id",
    "page invalid_client 400",
    "page invalid_client 400",
)
def _(t: Target) -> Answer:
    return t.authorize(client_id="no-such-client")


@row(
    "redirect-uri-unregistered",
    "redirect URI",
    "redirect_uri not registered",
    "page invalid_request 400",
    "page invalid_redirect_uri 400",
)
def _(t: Target) -> Answer:
    return t.authorize(redirect_uri="https://evil.example/cb")


@row(
    "redirect-uri-missing",
    "redirect URI",
    "no redirect_uri",
    "page invalid_request 400",
    "accepted - 303",
    "the peer lets a client with one registered URI omit it; we always require it",
)
def _(t: Target) -> Answer:
    return t.authorize(redirect_uri=None)


@row(
    "redirect-uri-path-suffix",
    "redirect URI",
    "registered URI with an extra path segment",
    "page invalid_request 400",
    "page invalid_redirect_uri 400",
)
def _(t: Target) -> Answer:
    return t.authorize(redirect_uri=t.client("jwt").redirect_uri + "/x")


@row(
    "redirect-uri-query-added",
    "redirect URI",
    "registered URI with a query added",
    "page invalid_request 400",
    "page invalid_redirect_uri 400",
)
def _(t: Target) -> Answer:
    return t.authorize(redirect_uri=t.client("jwt").redirect_uri + "?next=/")


@row(
    "redirect-uri-case-changed",
    "redirect URI",
    "registered URI in upper case",
    "page invalid_request 400",
    "page invalid_redirect_uri 400",
)
def _(t: Target) -> Answer:
    return t.authorize(redirect_uri=t.client("jwt").redirect_uri.upper())


@row(
    "redirect-uri-other-clients",
    "redirect URI",
    "another client's registered redirect_uri",
    "page invalid_request 400",
    "page invalid_redirect_uri 400",
)
def _(t: Target) -> Answer:
    return t.authorize(redirect_uri=t.client("public").redirect_uri)


@row(
    "redirect-uri-token-mismatch",
    "redirect URI",
    "token request with another redirect_uri than the authorization request",
    "json invalid_grant 400",
    "json invalid_grant 400",
)
def _(t: Target) -> Answer:
    code, verifier = t.code()
    return t.redeem(code, verifier, redirect_uri=t.client("jwt").redirect_uri + "/other")


# == state, nonce, scope, response type ========================================================


@row(
    "state-missing",
    "state/nonce",
    "no state",
    "redirect invalid_request 302",
    "accepted - 303",
    "we require state (CSRF); optional for the peer",
)
def _(t: Target) -> Answer:
    return t.authorize(state=None)


@row(
    "nonce-missing",
    "state/nonce",
    "no nonce",
    "redirect invalid_request 302",
    "accepted - 303",
    "we require nonce; optional for the peer in the code flow",
)
def _(t: Target) -> Answer:
    return t.authorize(nonce=None)


@row(
    "scope-without-openid",
    "scope",
    "scope without openid",
    "redirect invalid_scope 302",
    "redirect invalid_request 303",
    "we answer invalid_scope, the peer invalid_request",
)
def _(t: Target) -> Answer:
    return t.authorize(scope="name")


@row(
    "response-type-token",
    "response type",
    "response_type=token",
    "redirect unsupported_response_type 302",
    "redirect unsupported_response_type 303",
)
def _(t: Target) -> Answer:
    return t.authorize(response_type="token")


@row(
    "response-type-hybrid",
    "response type",
    "response_type=code id_token",
    "redirect unsupported_response_type 302",
    "redirect invalid_request 303",
)
def _(t: Target) -> Answer:
    return t.authorize(response_type="code id_token")


@row(
    "response-type-missing",
    "response type",
    "no response_type",
    "redirect invalid_request 302",
    "redirect invalid_request 303",
)
def _(t: Target) -> Answer:
    return t.authorize(response_type=None)


@row(
    "response-mode-unknown",
    "response type",
    "response_mode=bogus",
    "redirect invalid_request 302",
    "redirect unsupported_response_mode 303",
)
def _(t: Target) -> Answer:
    return t.authorize(response_mode="bogus")


@row(
    "parameter-repeated",
    "malformed input",
    "nonce sent twice",
    "redirect invalid_request 302",
    "redirect invalid_request 303",
)
def _(t: Target) -> Answer:
    params, _ = t.auth_request()
    return t.get("authorization", [*params.items(), ("nonce", "again")])


@row(
    "registration-parameter",
    "malformed input",
    "registration={}",
    "redirect registration_not_supported 302",
    "redirect registration_not_supported 303",
)
def _(t: Target) -> Answer:
    return t.authorize(registration="{}")


@row(
    "claims-malformed",
    "malformed input",
    "claims not JSON",
    "redirect invalid_request 302",
    "redirect invalid_request 303",
)
def _(t: Target) -> Answer:
    return t.authorize(claims="{not json")


@row(
    "claims-not-object",
    "malformed input",
    "claims a JSON array",
    "redirect invalid_request 302",
    "redirect invalid_request 303",
)
def _(t: Target) -> Answer:
    return t.authorize(claims="[1, 2]")


@row(
    "request-uri-foreign",
    "JAR",
    "request_uri pointing at the client's server",
    "redirect request_uri_not_supported 302",
    "redirect request_uri_not_supported 303",
)
def _(t: Target) -> Answer:
    return t.authorize(request_uri="https://rp.example.jp/request.jwt")


# == prompt / max_age ==========================================================================


@row(
    "prompt-none-no-session",
    "prompt/max_age",
    "prompt=none without a session",
    "redirect login_required 302",
    "redirect login_required 303",
)
def _(t: Target) -> Answer:
    return t.authorize(prompt="none")


@row(
    "prompt-none-combined",
    "prompt/max_age",
    "prompt=none login",
    "redirect invalid_request 302",
    "redirect invalid_request 303",
)
def _(t: Target) -> Answer:
    return t.authorize(prompt="none login")


@row(
    "prompt-unknown",
    "prompt/max_age",
    "prompt=bogus",
    "redirect invalid_request 302",
    "redirect invalid_request 303",
)
def _(t: Target) -> Answer:
    return t.authorize(prompt="bogus")


@row(
    "max-age-negative",
    "prompt/max_age",
    "max_age=-1",
    "redirect invalid_request 302",
    "redirect invalid_request 303",
)
def _(t: Target) -> Answer:
    return t.authorize(max_age="-1")


@row(
    "max-age-not-number",
    "prompt/max_age",
    "max_age=soon",
    "redirect invalid_request 302",
    "redirect invalid_request 303",
)
def _(t: Target) -> Answer:
    return t.authorize(max_age="soon")


@row(
    "max-age-fraction",
    "prompt/max_age",
    "max_age=1.5",
    "redirect invalid_request 302",
    "redirect invalid_request 303",
)
def _(t: Target) -> Answer:
    return t.authorize(max_age="1.5")


@row(
    "prompt-repeated",
    "prompt/max_age",
    "prompt sent twice",
    "redirect invalid_request 302",
    "redirect invalid_request 303",
)
def _(t: Target) -> Answer:
    params, _ = t.auth_request(prompt="login")
    return t.get("authorization", [*params.items(), ("prompt", "consent")])


@row(
    "prompt-none-consent",
    "prompt/max_age",
    "prompt=none consent",
    "redirect invalid_request 302",
    "redirect invalid_request 303",
)
def _(t: Target) -> Answer:
    return t.authorize(prompt="none consent")


@row(
    "prompt-none-max-age-zero",
    "prompt/max_age",
    "prompt=none max_age=0 with a fresh session",
    "redirect login_required 302",
    "redirect login_required 303",
)
def _(t: Target) -> Answer:
    browser = t.browser_login()
    return t.authorize_in(browser, prompt="none", max_age="0")


@row(
    "prompt-none-consent-missing",
    "prompt/max_age",
    "prompt=none with a session, for a client the resident never consented to",
    "redirect consent_required 302",
    "redirect consent_required 303",
)
def _(t: Target) -> Answer:
    browser = t.browser_login()
    return t.authorize_in(browser, "secret", prompt="none")


@row(
    "prompt-none-id-token-hint-garbage",
    "prompt/max_age",
    "prompt=none with a session and id_token_hint=garbage",
    "redirect login_required 302",
    "redirect invalid_request 303",
    "OIDC Core allows either; we answer as for a session that does not match",
)
def _(t: Target) -> Answer:
    browser = t.browser_login()
    return t.authorize_in(browser, prompt="none", id_token_hint="garbage")


@row(
    "prompt-none-id-token-hint-other-client",
    "issuer mix-up",
    "prompt=none with the ID token another client got as id_token_hint",
    "redirect login_required 302",
    "redirect invalid_request 303",
    "the hint names another client (aud); we refuse it like a non-matching session",
)
def _(t: Target) -> Answer:
    browser = t.browser_login(("jwt", "public"))
    hint = browser.id_tokens["jwt"]
    return t.authorize_in(browser, "public", prompt="none", id_token_hint=hint)


# == code and refresh replay ===================================================================


@row(
    "code-replay",
    "code/refresh replay",
    "code redeemed twice",
    "json invalid_grant 400",
    "json invalid_grant 400",
)
def _(t: Target) -> Answer:
    code, verifier = t.code()
    assert t.redeem(code, verifier).status == 200
    return t.redeem(code, verifier)


@row(
    "code-replay-revokes-token",
    "code/refresh replay",
    "access token of a code redeemed twice, at userinfo",
    "json invalid_token 401",
    "json invalid_token 401",
)
def _(t: Target) -> Answer:
    code, verifier = t.code()
    first = t.redeem(code, verifier).json()
    t.redeem(code, verifier)
    return userinfo(t, "Bearer " + first["access_token"])


@row(
    "code-unknown",
    "code/refresh replay",
    "a code never issued",
    "json invalid_grant 400",
    "json invalid_grant 400",
)
def _(t: Target) -> Answer:
    return t.redeem(secrets.token_urlsafe(32), secrets.token_urlsafe(48))


@row(
    "code-other-client",
    "code/refresh replay",
    "a code redeemed by another client",
    "json invalid_grant 400",
    "json invalid_grant 400",
)
def _(t: Target) -> Answer:
    code, verifier = t.code("jwt")
    return t.redeem(code, verifier, "secret", redirect_uri=t.client("jwt").redirect_uri)


@row(
    "refresh-replay",
    "code/refresh replay",
    "a rotated refresh token used again",
    "json invalid_grant 400",
    "json invalid_grant 400",
)
def _(t: Target) -> Answer:
    body = t.offline()
    assert t.refresh(body["refresh_token"]).status == 200
    return t.refresh(body["refresh_token"])


@row(
    "refresh-reuse-revokes-grant",
    "code/refresh replay",
    "the newest refresh token after an old one was replayed",
    "json invalid_grant 400",
    "json invalid_grant 400",
)
def _(t: Target) -> Answer:
    body = t.offline()
    current = t.refresh(body["refresh_token"]).json()["refresh_token"]
    t.refresh(body["refresh_token"])
    return t.refresh(current)


@row(
    "refresh-other-client",
    "code/refresh replay",
    "a refresh token used by another client",
    "json invalid_grant 400",
    "json invalid_grant 400",
)
def _(t: Target) -> Answer:
    body = t.offline()
    return t.refresh(body["refresh_token"], "secret")


@row(
    "refresh-scope-widened",
    "code/refresh replay",
    "refresh asking for more scope than granted",
    "json invalid_scope 400",
    "json invalid_scope 400",
)
def _(t: Target) -> Answer:
    body = t.offline()
    return t.refresh(body["refresh_token"], scope="openid name address")


@row(
    "refresh-unknown",
    "code/refresh replay",
    "a refresh token never issued",
    "json invalid_grant 400",
    "json invalid_grant 400",
)
def _(t: Target) -> Answer:
    return t.refresh(secrets.token_urlsafe(32))


@row(
    "grant-type-unsupported",
    "tokens",
    "grant_type=password",
    "json unsupported_grant_type 400",
    "json unsupported_grant_type 400",
)
def _(t: Target) -> Answer:
    return t.post("token", {"grant_type": "password", "username": "a", "password": "b"})


@row(
    "grant-type-missing",
    "tokens",
    "no grant_type",
    "json invalid_request 400",
    "json invalid_request 400",
)
def _(t: Target) -> Answer:
    return t.post("token", {"code": "x"})


# == client authentication =====================================================================


@row(
    "client-auth-missing",
    "client auth",
    "private_key_jwt client sends no authentication",
    "json invalid_client 401",
    "json invalid_client 401",
)
def _(t: Target) -> Answer:
    code, verifier = t.code()
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": t.client("jwt").redirect_uri,
        "client_id": t.client("jwt").client_id,
    }
    return t.post("token", form, role=None)


@row(
    "client-auth-method-mismatch",
    "client auth",
    "private_key_jwt client uses client_secret_basic",
    "json invalid_client 401",
    "json invalid_client 401",
)
def _(t: Target) -> Answer:
    code, verifier = t.code()
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": t.client("jwt").redirect_uri,
    }
    return t.post("token", form, role=None, headers=basic(t.client("jwt").client_id, "guess"))


@row(
    "client-secret-wrong",
    "client auth",
    "client_secret_basic with a wrong secret",
    "json invalid_client 401",
    "json invalid_client 401",
)
def _(t: Target) -> Answer:
    code, verifier = t.code("secret")
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": t.client("secret").redirect_uri,
    }
    return t.post("token", form, role=None, headers=basic(t.client("secret").client_id, "wrong"))


@row(
    "client-auth-two-methods",
    "client auth",
    "client_secret_basic and a client assertion together",
    "json invalid_request 400",
    "json invalid_request 400",
    "we accepted this until the differential run found it (fixed in client_auth.py)",
)
def _(t: Target) -> Answer:
    code, verifier = t.code()
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": t.client("jwt").redirect_uri,
    }
    return t.post("token", form, role="jwt", headers=basic(t.client("jwt").client_id, "x"))


@row(
    "client-auth-basic-not-utf8",
    "malformed input",
    "HTTP Basic credentials that are not UTF-8",
    "json invalid_client 401",
    "json invalid_request 400",
    "before the fix this was an unhandled ValueError here (found by fuzzing)",
)
def _(t: Target) -> Answer:
    form = {"grant_type": "authorization_code", "code": "x", "redirect_uri": "https://x"}
    return t.post("token", form, role=None, headers={"authorization": "Basic gA=="})


@row(
    "client-auth-basic-empty",
    "malformed input",
    "Authorization: Basic with nothing after it",
    "json invalid_client 401",
    "json invalid_request 400",
    "before the fix this was an unhandled ValueError here (found by fuzzing)",
)
def _(t: Target) -> Answer:
    form = {"grant_type": "authorization_code", "code": "x", "redirect_uri": "https://x"}
    return t.post("token", form, role=None, headers={"authorization": "Basic "})


@row(
    "client-assertion-alg-none",
    "alg confusion",
    "client assertion with alg none",
    "json invalid_client 401",
    "json invalid_client 401",
)
def _(t: Target) -> Answer:
    return with_assertion(t, unsigned({"alg": "none"}, assertion_claims(t)))


@row(
    "client-assertion-hmac-with-public-key",
    "alg confusion",
    "client assertion HS256-signed with the client's public JWK",
    "json invalid_client 401",
    "json invalid_client 401",
)
def _(t: Target) -> Answer:
    key = t.keys["jwt"]
    secret = json.dumps(key.as_dict(private=False)).encode()
    return with_assertion(t, hs256(secret, {"alg": "HS256", "kid": key.kid}, assertion_claims(t)))


@row(
    "client-assertion-rs256-for-ec-key",
    "alg confusion",
    "client assertion RS256-signed (an RSA key under the EC key's kid)",
    "json invalid_client 401",
    "json invalid_client 401",
)
def _(t: Target) -> Answer:
    rsa = RSAKey.generate_key(2048, private=True)
    return with_assertion(t, t.assertion("jwt", key=rsa, alg="RS256"))


@row(
    "client-assertion-other-key",
    "client auth",
    "client assertion signed by an unregistered EC key",
    "json invalid_client 401",
    "json invalid_client 401",
)
def _(t: Target) -> Answer:
    return with_assertion(t, t.assertion("jwt", key=ECKey.generate_key("P-256", private=True)))


@row(
    "client-assertion-jti-replay",
    "jti replay",
    "one client assertion used twice",
    "json invalid_client 401",
    "json invalid_client 401",
)
def _(t: Target) -> Answer:
    assertion = t.assertion("jwt")
    assert with_assertion(t, assertion).status == 200
    return with_assertion(t, assertion)


@row(
    "client-assertion-no-jti",
    "jti replay",
    "client assertion without jti",
    "json invalid_client 401",
    "json invalid_client 401",
)
def _(t: Target) -> Answer:
    return with_assertion(t, t.assertion("jwt", jti=None))


@row(
    "client-assertion-aud-other-issuer",
    "issuer mix-up",
    "client assertion for another provider (aud)",
    "json invalid_client 401",
    "json invalid_client 401",
)
def _(t: Target) -> Answer:
    return with_assertion(t, t.assertion("jwt", aud="https://other-idp.example/token"))


@row(
    "client-assertion-expired",
    "client auth",
    "client assertion past its exp",
    "json invalid_client 401",
    "json invalid_client 401",
)
def _(t: Target) -> Answer:
    now = int(time.time())
    return with_assertion(t, t.assertion("jwt", iat=now - 600, exp=now - 300))


@row(
    "client-assertion-no-exp",
    "client auth",
    "client assertion without exp",
    "json invalid_client 401",
    "json invalid_client 401",
)
def _(t: Target) -> Answer:
    return with_assertion(t, t.assertion("jwt", exp=None))


@row(
    "client-assertion-wrong-iss",
    "client auth",
    "client assertion iss/sub of another client",
    "json invalid_client 401",
    "json invalid_client 401",
)
def _(t: Target) -> Answer:
    other = t.client("par").client_id
    return with_assertion(t, t.assertion("jwt", iss=other, sub=other))


@row(
    "client-assertion-malformed",
    "malformed input",
    "client_assertion not a JWT",
    "json invalid_client 401",
    "json invalid_request 400",
)
def _(t: Target) -> Answer:
    return with_assertion(t, "not.a.jwt")


# == PAR =======================================================================================


@row(
    "par-request-uri-replay",
    "PAR",
    "a request_uri used twice",
    "page invalid_request_uri 400",
    "accepted - 303",
    "the peer consumes a request_uri when the authorization completes, we at first use",
)
def _(t: Target) -> Answer:
    uri = pushed(t)
    first = authorize_pushed(t, uri)
    assert first.status in (200, 302, 303), first.text[:300]
    return authorize_pushed(t, uri)


@row(
    "par-request-uri-unknown",
    "PAR",
    "a request_uri never issued",
    "page invalid_request_uri 400",
    "redirect invalid_request_uri 303",
    "we show an error page: an unknown request_uri gives no redirect URI to trust",
)
def _(t: Target) -> Answer:
    return authorize_pushed(t, PAR_PREFIX + secrets.token_urlsafe(32))


@row(
    "par-request-uri-other-client",
    "PAR",
    "a request_uri used with another client_id",
    "page invalid_request_uri 400",
    "redirect invalid_request_object 303",
    "the same: the pushed request belongs to another client",
)
def _(t: Target) -> Answer:
    return authorize_pushed(t, pushed(t), "public")


@row(
    "par-required",
    "PAR",
    "a PAR-required client sends a plain request",
    "redirect invalid_request 302",
    "redirect invalid_request 303",
)
def _(t: Target) -> Answer:
    return t.authorize("par")


@row(
    "par-unauthenticated",
    "PAR",
    "/par without client authentication",
    "json invalid_client 401",
    "json invalid_client 401",
)
def _(t: Target) -> Answer:
    params, _ = t.auth_request()
    return t.post("par", params, role=None)


@row(
    "par-with-request-uri",
    "PAR",
    "/par with a request_uri inside",
    "json invalid_request 400",
    "json request_uri_not_supported 400",
)
def _(t: Target) -> Answer:
    params, _ = t.auth_request(request_uri=PAR_PREFIX + "x")
    return t.post("par", params)


@row(
    "par-bad-redirect-uri",
    "PAR",
    "/par with an unregistered redirect_uri",
    "json invalid_request 400",
    "json invalid_request 400",
)
def _(t: Target) -> Answer:
    params, _ = t.auth_request(redirect_uri="https://evil.example/cb")
    return t.post("par", params)


@row(
    "par-missing-pkce",
    "PAR",
    "/par without code_challenge",
    "json invalid_request 400",
    "json invalid_request 400",
)
def _(t: Target) -> Answer:
    params, _ = t.auth_request(code_challenge=None, code_challenge_method=None)
    return t.post("par", params)


# == JAR =======================================================================================


@row(
    "jar-alg-none",
    "JAR",
    "request object with alg none",
    "redirect invalid_request_object 302",
    "redirect invalid_request_object 303",
)
def _(t: Target) -> Answer:
    claims = t.client("jwt").client_id
    body = {**jar_params(t), "iss": claims, "aud": t.issuer, "exp": int(time.time()) + 300}
    return jar(t, unsigned({"alg": "none"}, body))


@row(
    "jar-hmac-with-public-key",
    "alg confusion",
    "request object HS256-signed with the client's public JWK",
    "redirect invalid_request_object 302",
    "redirect invalid_request_object 303",
)
def _(t: Target) -> Answer:
    key = t.keys["jwt"]
    body = {
        **jar_params(t),
        "iss": t.client("jwt").client_id,
        "aud": t.issuer,
        "exp": int(time.time()) + 300,
    }
    secret = json.dumps(key.as_dict(private=False)).encode()
    return jar(t, hs256(secret, {"alg": "HS256", "kid": key.kid}, body))


@row(
    "jar-other-key",
    "JAR",
    "request object signed by an unregistered key",
    "redirect invalid_request_object 302",
    "redirect invalid_request_object 303",
)
def _(t: Target) -> Answer:
    key = ECKey.generate_key("P-256", private=True)
    return jar(t, t.request_object("jwt", jar_params(t), key=key))


@row(
    "jar-aud-other-issuer",
    "issuer mix-up",
    "request object for another provider (aud)",
    "redirect invalid_request_object 302",
    "redirect invalid_request_object 303",
)
def _(t: Target) -> Answer:
    return jar(t, t.request_object("jwt", jar_params(t), aud="https://other-idp.example"))


@row(
    "jar-expired",
    "JAR",
    "request object past its exp",
    "redirect invalid_request_object 302",
    "redirect invalid_request_object 303",
)
def _(t: Target) -> Answer:
    now = int(time.time())
    return jar(
        t, t.request_object("jwt", jar_params(t), iat=now - 900, nbf=now - 900, exp=now - 600)
    )


@row(
    "jar-client-id-mismatch",
    "JAR",
    "request object whose client_id is another client's",
    "redirect invalid_request_object 302",
    "redirect invalid_request_object 303",
)
def _(t: Target) -> Answer:
    return jar(t, t.request_object("jwt", jar_params(t), client_id=t.client("par").client_id))


@row(
    "jar-required",
    "JAR",
    "a client that requires signed request objects sends a plain request",
    "redirect invalid_request 302",
    "redirect invalid_request 303",
)
def _(t: Target) -> Answer:
    return t.authorize("jar")


@row(
    "jar-not-a-jwt",
    "malformed input",
    "request=garbage",
    "redirect invalid_request_object 302",
    "redirect invalid_request_object 303",
)
def _(t: Target) -> Answer:
    return jar(t, "garbage")


# == DPoP ======================================================================================


@row(
    "dpop-alg-none",
    "alg confusion",
    "DPoP proof with alg none",
    "json invalid_dpop_proof 400",
    "json invalid_dpop_proof 400",
)
def _(t: Target) -> Answer:
    key = ECKey.generate_key("P-256", private=True)
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": key.as_dict(private=False)}
    claims = {
        "jti": secrets.token_urlsafe(8),
        "htm": "POST",
        "htu": t.url("token"),
        "iat": int(time.time()),
    }
    return dpop_at_token(t, unsigned(header, claims))


@row(
    "dpop-hmac",
    "alg confusion",
    "DPoP proof signed with HS256 (oct jwk)",
    "json invalid_dpop_proof 400",
    "json invalid_dpop_proof 400",
)
def _(t: Target) -> Answer:
    header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}}
    claims = {
        "jti": secrets.token_urlsafe(8),
        "htm": "POST",
        "htu": t.url("token"),
        "iat": int(time.time()),
    }
    return dpop_at_token(t, hs256(b"secret", header, claims))


@row(
    "dpop-private-key-in-header",
    "DPoP",
    "DPoP proof whose jwk carries the private key",
    "json invalid_dpop_proof 400",
    "json invalid_dpop_proof 400",
)
def _(t: Target) -> Answer:
    key = ECKey.generate_key("P-256", private=True)
    return dpop_at_token(t, t.dpop_proof(key, header={"jwk": key.as_dict(private=True)}))


@row(
    "dpop-htu-other-issuer",
    "issuer mix-up",
    "DPoP proof for another provider's token endpoint",
    "json invalid_dpop_proof 400",
    "json invalid_dpop_proof 400",
)
def _(t: Target) -> Answer:
    key = ECKey.generate_key("P-256", private=True)
    return dpop_at_token(t, t.dpop_proof(key, htu="https://other-idp.example/token"))


@row(
    "dpop-htm-wrong",
    "DPoP",
    "DPoP proof with htm GET at the token endpoint",
    "json invalid_dpop_proof 400",
    "json invalid_dpop_proof 400",
)
def _(t: Target) -> Answer:
    key = ECKey.generate_key("P-256", private=True)
    return dpop_at_token(t, t.dpop_proof(key, htm="GET"))


@row(
    "dpop-iat-stale",
    "DPoP",
    "DPoP proof ten minutes old",
    "json invalid_dpop_proof 400",
    "json invalid_dpop_proof 400",
)
def _(t: Target) -> Answer:
    key = ECKey.generate_key("P-256", private=True)
    return dpop_at_token(t, t.dpop_proof(key, iat=int(time.time()) - 600))


@row(
    "dpop-typ-wrong",
    "DPoP",
    "DPoP proof with typ JWT",
    "json invalid_dpop_proof 400",
    "json invalid_dpop_proof 400",
)
def _(t: Target) -> Answer:
    key = ECKey.generate_key("P-256", private=True)
    return dpop_at_token(t, t.dpop_proof(key, header={"typ": "JWT"}))


@row(
    "dpop-jti-replay",
    "jti replay",
    "one DPoP proof used twice",
    "json invalid_dpop_proof 400",
    "json invalid_grant 400",
)
def _(t: Target) -> Answer:
    key = ECKey.generate_key("P-256", private=True)
    proof = t.dpop_proof(key)
    assert dpop_at_token(t, proof).status == 200
    return dpop_at_token(t, proof)


@row(
    "dpop-not-a-jwt",
    "malformed input",
    "DPoP header not a JWT",
    "json invalid_dpop_proof 400",
    "json invalid_dpop_proof 400",
)
def _(t: Target) -> Answer:
    return dpop_at_token(t, "garbage")


@row(
    "dpop-required",
    "DPoP",
    "a client that requires DPoP redeems without a proof",
    "json invalid_request 400",
    "json invalid_grant 400",
)
def _(t: Target) -> Answer:
    code, verifier = t.code("dpop")
    return t.redeem(code, verifier, "dpop")


@row(
    "dpop-token-as-bearer",
    "DPoP",
    "DPoP-bound access token sent as Bearer to userinfo",
    "json invalid_token 401",
    "json invalid_token 401",
)
def _(t: Target) -> Answer:
    body = dpop_tokens(t, ECKey.generate_key("P-256", private=True))
    return userinfo(t, "Bearer " + body["access_token"])


@row(
    "dpop-userinfo-other-key",
    "DPoP",
    "userinfo proof made with another key than cnf.jkt",
    "json invalid_dpop_proof 401",
    "json invalid_token 401",
)
def _(t: Target) -> Answer:
    body = dpop_tokens(t, ECKey.generate_key("P-256", private=True))
    other = ECKey.generate_key("P-256", private=True)
    token = body["access_token"]
    proof = t.dpop_proof(other, htm="GET", htu=t.url("userinfo"), access_token=token)
    return userinfo(t, "DPoP " + token, {"dpop": proof})


@row(
    "dpop-userinfo-no-proof",
    "DPoP",
    "DPoP-bound token at userinfo without a proof",
    "json invalid_dpop_proof 401",
    "json invalid_request 400",
    "both refuse; we name the missing proof, the peer the request",
)
def _(t: Target) -> Answer:
    body = dpop_tokens(t, ECKey.generate_key("P-256", private=True))
    return userinfo(t, "DPoP " + body["access_token"])


@row(
    "dpop-userinfo-no-ath",
    "DPoP",
    "userinfo proof without ath",
    "json invalid_dpop_proof 401",
    "json invalid_dpop_proof 401",
)
def _(t: Target) -> Answer:
    key = ECKey.generate_key("P-256", private=True)
    body = dpop_tokens(t, key)
    proof = t.dpop_proof(key, htm="GET", htu=t.url("userinfo"))
    return userinfo(t, "DPoP " + body["access_token"], {"dpop": proof})


# == tokens at userinfo, revocation, introspection =============================================


@row(
    "userinfo-no-token",
    "tokens",
    "userinfo without Authorization",
    "json invalid_token 401",
    "json invalid_token 401",
)
def _(t: Target) -> Answer:
    return userinfo(t, None)


@row(
    "userinfo-unknown-token",
    "tokens",
    "userinfo with a token never issued",
    "json invalid_token 401",
    "json invalid_token 401",
)
def _(t: Target) -> Answer:
    return userinfo(t, "Bearer " + secrets.token_urlsafe(32))


@row(
    "userinfo-token-in-query",
    "tokens",
    "access token in the query string",
    "json invalid_token 401",
    "json invalid_request 400",
    "we never read tokens from the query (RFC 6750 section 2.3 is optional)",
)
def _(t: Target) -> Answer:
    body = tokens(t)
    return t.send("GET", t.url("userinfo"), query=[("access_token", body["access_token"])])


@row(
    "userinfo-revoked-token",
    "tokens",
    "access token revoked at the revocation endpoint",
    "json invalid_token 401",
    "json invalid_token 401",
)
def _(t: Target) -> Answer:
    body = tokens(t)
    assert t.post("revocation", {"token": body["access_token"]}).status == 200
    return userinfo(t, "Bearer " + body["access_token"])


@row(
    "revoke-unauthenticated",
    "client auth",
    "revocation without client authentication",
    "json invalid_client 401",
    "json invalid_request 400",
    "RFC 7009 and 7662 call for invalid_client (401); the peer answers invalid_request",
)
def _(t: Target) -> Answer:
    return t.post("revocation", {"token": "x"}, role=None)


@row(
    "revoke-without-token",
    "tokens",
    "revocation without token",
    "json invalid_request 400",
    "json invalid_request 400",
)
def _(t: Target) -> Answer:
    return t.post("revocation", {})


@row(
    "introspect-unauthenticated",
    "client auth",
    "introspection without client authentication",
    "json invalid_client 401",
    "json invalid_request 400",
    "as revoke-unauthenticated",
)
def _(t: Target) -> Answer:
    return t.post("introspection", {"token": "x"}, role=None)


@row(
    "introspect-without-token",
    "tokens",
    "introspection without token",
    "json invalid_request 400",
    "json invalid_request 400",
)
def _(t: Target) -> Answer:
    return t.post("introspection", {})


# == oversized and malformed input =============================================================


@row(
    "token-body-json",
    "malformed input",
    "token request as a JSON body",
    "json invalid_request 400",
    "json invalid_request 400",
    "a JSON body carries no form grant_type",
)
def _(t: Target) -> Answer:
    body = json.dumps({"grant_type": "authorization_code", "code": "x"}).encode()
    return t.send("POST", t.url("token"), body=body, headers={"content-type": "application/json"})


@row(
    "token-body-oversized",
    "malformed input",
    "token request body of 70 kB",
    "json invalid_request 413",
    "json invalid_request 400",
    "we refuse bodies over 64 kB with 413",
)
def _(t: Target) -> Answer:
    return t.post("token", {"grant_type": "authorization_code", "code": "y" * 70000}, role=None)


@row(
    "authorize-huge-state",
    "malformed input",
    "state of 4 kB",
    "redirect invalid_request 302",
    "accepted - 303",
    "we cap state at 255 characters",
)
def _(t: Target) -> Answer:
    return t.authorize(state="s" * 4096)


@row(
    "authorize-huge-claims",
    "malformed input",
    "claims parameter of 6 kB",
    "redirect invalid_request 302",
    "accepted - 303",
    "we cap the claims parameter at 4 kB",
)
def _(t: Target) -> Answer:
    return t.authorize(claims=json.dumps({"userinfo": {"name": None}, "pad": "x" * 6000}))


# -- the documented table ----------------------------------------------------------------------


def comparison(r: Row) -> str:
    ours, peer = r.ours.split(), r.peer.split()
    if peer[0] == "accepted":
        return "stricter"
    if ours[1] != peer[1]:
        return "other error"
    if ours[0] != peer[0]:
        return "delivered differently"
    return "same"


def render_table() -> str:
    """The differential table of docs/negative-matrix.md."""
    lines = [
        "| case | area | what is sent | our answer | node-oidc-provider | compared | note |",
        "|---|---|---|---|---|---|---|",
    ]

    def cell(text: str) -> str:
        kind, error, status = text.split()
        return f"{kind} `{error}` {status}" if error != "-" else f"{kind} {status}"

    for r in ROWS:
        lines.append(
            f"| `{r.name}` | {r.area} | {r.sent} | {cell(r.ours)} | {cell(r.peer)} "
            f"| {comparison(r)} | {r.note} |"
        )
    return "\n".join(lines) + "\n"
