"""The token endpoint: codes, PKCE, client authentication and the ID token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from flask import Flask
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey
from provider_support import (
    ISSUER,
    TOKEN_URL,
    CapturingLogin,
    RelyingParty,
    enroll_test_resident,
    install_capturing_login,
)

from idp.oidc.claims import ACR_CARD_PIN


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_jwt(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."


def hs256_jwt(secret: bytes, claims: dict[str, Any], kid: str) -> str:
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def assertion_claims(rp: RelyingParty, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": rp.client_id,
        "sub": rp.client_id,
        "aud": TOKEN_URL,
        "iat": now,
        "exp": now + 60,
        "jti": f"jti-{now}-{id(overrides)}",
    }
    claims.update(overrides)
    return claims


def error_of(response: Any) -> str:
    body = response.get_json()
    if isinstance(body, dict) and body.get("error") == "invalid_client":
        assert response.status_code == 401
    assert isinstance(body, dict), response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    return str(body["error"])


def jwks(rp: RelyingParty) -> KeySet:
    return KeySet.import_key_set(rp.http.get("/jwks.json").get_json())


# -- success ------------------------------------------------------------------------------


def test_code_exchange_issues_a_verifiable_id_token(
    rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    before = int(time.time())
    request, params = rp.login(login, resident_id)
    response = rp.token_request(params["code"][0], request.verifier)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "openid name address birthdate gender"
    assert "refresh_token" not in body

    token = jwt.decode(body["id_token"], jwks(rp), algorithms=["ES256"])
    assert token.header["alg"] == "ES256"
    assert token.header["kid"] in {key.kid for key in jwks(rp)}
    claims = token.claims
    assert claims["iss"] == ISSUER
    assert claims["aud"] == rp.client_id
    assert claims["nonce"] == request.params["nonce"]
    assert claims["acr"] == ACR_CARD_PIN
    assert claims["amr"] == ["hwk", "sc", "pin", "mfa"]
    assert before <= claims["auth_time"] <= claims["iat"] < claims["exp"]
    assert claims["exp"] - claims["iat"] == 600
    assert claims["sub"] and claims["sub"] != resident_id
    assert claims["at_hash"]
    for personal in ("name", "address", "birthdate", "gender", "family_name", "given_name"):
        assert personal not in claims


@pytest.mark.parametrize("alg", ["RS256", "PS256"])
def test_client_chooses_rsa_id_token_algorithm(
    app: Flask, login: CapturingLogin, resident_id: str, alg: str
) -> None:
    rp = RelyingParty(app, alg=alg)
    request, params = rp.login(login, resident_id)
    body = rp.token_request(params["code"][0], request.verifier).get_json()
    token = jwt.decode(body["id_token"], jwks(rp), algorithms=[alg])
    assert token.header["alg"] == alg
    assert token.claims["aud"] == rp.client_id


def test_client_secret_basic_client(app: Flask, login: CapturingLogin, resident_id: str) -> None:
    rp = RelyingParty(app, auth_method="client_secret_basic")
    request, params = rp.login(login, resident_id)
    response = rp.token_request(params["code"][0], request.verifier)
    assert response.status_code == 200, response.get_json()


def test_client_secret_basic_wrong_secret_is_invalid_client(
    app: Flask, login: CapturingLogin, resident_id: str
) -> None:
    rp = RelyingParty(app, auth_method="client_secret_basic")
    request, params = rp.login(login, resident_id)
    rp.client_secret = "wrong-" + str(rp.client_secret)
    response = rp.token_request(params["code"][0], request.verifier)
    assert response.status_code == 401
    assert error_of(response) == "invalid_client"


def test_public_client_with_pkce(app: Flask, login: CapturingLogin, resident_id: str) -> None:
    rp = RelyingParty(app, auth_method="none")
    request, params = rp.login(login, resident_id)
    response = rp.token_request(params["code"][0], request.verifier)
    assert response.status_code == 200, response.get_json()


# -- PKCE ---------------------------------------------------------------------------------


def test_wrong_verifier_is_invalid_grant(
    rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    _request, params = rp.login(login, resident_id)
    response = rp.token_request(params["code"][0], "x" * 43)
    assert response.status_code == 400
    assert error_of(response) == "invalid_grant"


def test_missing_verifier_is_invalid_request_for_confidential_clients(
    rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    _request, params = rp.login(login, resident_id)
    response = rp.token_request(params["code"][0], None)
    assert error_of(response) == "invalid_request"


def test_missing_verifier_is_invalid_request_for_public_clients(
    app: Flask, login: CapturingLogin, resident_id: str
) -> None:
    rp = RelyingParty(app, auth_method="none")
    _request, params = rp.login(login, resident_id)
    response = rp.token_request(params["code"][0], None)
    assert error_of(response) == "invalid_request"


# -- codes --------------------------------------------------------------------------------


def test_replayed_code_is_invalid_grant_and_revokes_its_tokens(
    rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    request, params = rp.login(login, resident_id)
    first = rp.token_request(params["code"][0], request.verifier)
    access_token = first.get_json()["access_token"]
    assert rp.userinfo(access_token).status_code == 200

    replay = rp.token_request(params["code"][0], request.verifier)
    assert replay.status_code == 400
    assert error_of(replay) == "invalid_grant"

    after = rp.userinfo(access_token)
    assert after.status_code == 401
    assert error_of(after) == "invalid_token"


def test_expired_code_is_invalid_grant(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(CODE_TTL=1)
    login = install_capturing_login(app)
    rp = RelyingParty(app)
    with app.app_context():
        resident = enroll_test_resident().id
    request, params = rp.login(login, resident)
    time.sleep(1.3)
    response = rp.token_request(params["code"][0], request.verifier)
    assert error_of(response) == "invalid_grant"


def test_code_for_another_client_is_invalid_grant(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    other = RelyingParty(app, redirect_uri=rp.redirect_uri, name="別のサービス")
    request, params = rp.login(login, resident_id)
    response = other.token_request(params["code"][0], request.verifier)
    assert error_of(response) == "invalid_grant"


def test_unknown_code_is_invalid_grant(rp: RelyingParty) -> None:
    response = rp.token_request("no-such-code", "x" * 43)
    assert error_of(response) == "invalid_grant"


def test_redirect_uri_must_match_the_authorization_request(
    app: Flask, login: CapturingLogin, resident_id: str
) -> None:
    rp = RelyingParty(app)
    request, params = rp.login(login, resident_id)
    response = rp.token_request(
        params["code"][0], request.verifier, extra={"redirect_uri": rp.redirect_uri + "/other"}
    )
    assert error_of(response) == "invalid_grant"


def test_other_grant_types_are_unsupported(rp: RelyingParty) -> None:
    response = rp.http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": rp.assertion(),
        },
    )
    assert error_of(response) == "unsupported_grant_type"


# -- private_key_jwt ----------------------------------------------------------------------


def test_reused_assertion_jti_is_invalid_client(
    rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    assertion = rp.assertion(jti="only-once")
    request, params = rp.login(login, resident_id)
    assert (
        rp.token_request(params["code"][0], request.verifier, assertion=assertion).status_code
        == 200
    )
    request, params = rp.login(login, resident_id)
    response = rp.token_request(params["code"][0], request.verifier, assertion=assertion)
    assert error_of(response) == "invalid_client"


def test_assertion_without_jti_is_invalid_client(
    rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    request, params = rp.login(login, resident_id)
    response = rp.token_request(
        params["code"][0], request.verifier, assertion=rp.assertion(jti=None)
    )
    assert error_of(response) == "invalid_client"


def test_assertion_for_the_issuer_audience_is_accepted(
    rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    request, params = rp.login(login, resident_id)
    response = rp.token_request(
        params["code"][0], request.verifier, assertion=rp.assertion(aud=ISSUER)
    )
    assert response.status_code == 200


def test_wrong_assertion_audience_is_invalid_client(
    rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    request, params = rp.login(login, resident_id)
    response = rp.token_request(
        params["code"][0],
        request.verifier,
        assertion=rp.assertion(aud="https://other-idp.example/token"),
    )
    assert error_of(response) == "invalid_client"


def test_alg_none_assertion_is_invalid_client(
    rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    request, params = rp.login(login, resident_id)
    forged = unsigned_jwt({"alg": "none", "typ": "JWT"}, assertion_claims(rp))
    response = rp.token_request(params["code"][0], request.verifier, assertion=forged)
    assert error_of(response) == "invalid_client"


def test_hmac_with_the_public_key_assertion_is_invalid_client(
    rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    request, params = rp.login(login, resident_id)
    public_pem = rp.key.get_op_key("verify").public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forged = hs256_jwt(public_pem, assertion_claims(rp), str(rp.key.kid))
    response = rp.token_request(params["code"][0], request.verifier, assertion=forged)
    assert error_of(response) == "invalid_client"


def test_assertion_signed_by_another_key_is_invalid_client(
    rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    request, params = rp.login(login, resident_id)
    stranger = ECKey.generate_key("P-256", parameters={"kid": rp.key.kid}, private=True)
    forged = jwt.encode({"alg": "ES256", "kid": rp.key.kid}, assertion_claims(rp), stranger)
    response = rp.token_request(params["code"][0], request.verifier, assertion=forged)
    assert error_of(response) == "invalid_client"


def test_long_lived_assertion_is_invalid_client(
    rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    request, params = rp.login(login, resident_id)
    response = rp.token_request(
        params["code"][0], request.verifier, assertion=rp.assertion(exp=int(time.time()) + 3600)
    )
    assert error_of(response) == "invalid_client"


def test_expired_assertion_is_invalid_client(
    rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    request, params = rp.login(login, resident_id)
    response = rp.token_request(
        params["code"][0], request.verifier, assertion=rp.assertion(exp=int(time.time()) - 300)
    )
    assert error_of(response) == "invalid_client"


def test_private_key_jwt_client_without_assertion_is_invalid_client(
    rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    request, params = rp.login(login, resident_id)
    response = rp.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": params["code"][0],
            "redirect_uri": rp.redirect_uri,
            "code_verifier": request.verifier,
            "client_id": rp.client_id,
        },
    )
    assert error_of(response) == "invalid_client"


@pytest.mark.parametrize(
    ("alg", "make_key"),
    [
        ("RS256", lambda: RSAKey.generate_key(2048, parameters={"kid": "k"}, private=True)),
        ("PS256", lambda: RSAKey.generate_key(2048, parameters={"kid": "k"}, private=True)),
        ("ES384", lambda: ECKey.generate_key("P-384", parameters={"kid": "k"}, private=True)),
        ("Ed25519", lambda: OKPKey.generate_key("Ed25519", parameters={"kid": "k"}, private=True)),
    ],
)
def test_every_advertised_assertion_algorithm_works(
    app: Flask, login: CapturingLogin, resident_id: str, alg: str, make_key: Any
) -> None:
    key = make_key()
    rp = RelyingParty(app, client_key=key)
    request, params = rp.login(login, resident_id)
    assertion = jwt.encode({"alg": alg, "kid": "k"}, assertion_claims(rp), key, algorithms=[alg])
    response = rp.token_request(params["code"][0], request.verifier, assertion=assertion)
    assert response.status_code == 200, response.get_json()
    advertised = rp.http.get("/.well-known/openid-configuration").get_json()
    assert alg in advertised["token_endpoint_auth_signing_alg_values_supported"]
