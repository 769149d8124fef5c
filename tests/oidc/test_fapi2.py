"""The per-client ``fapi2`` profile: PAR + PKCE + private_key_jwt + DPoP, FAPI 2.0 algorithms,
short codes."""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

import pytest
from flask import Flask
from joserfc import jwt
from joserfc.jwk import RSAKey
from protocol_support import (
    authorize_pushed,
    code_of,
    dpop_proof,
    error_of,
    new_key,
    post_authenticated,
    push,
    server_nonce,
    set_client,
)
from provider_support import ISSUER, TOKEN_URL, CapturingLogin, RelyingParty, callback_params

from idp.oidc.clients import ClientRegistrationError, new_client

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def fapi_rp(app: Flask) -> RelyingParty:
    rp = RelyingParty(app, alg="PS256")
    set_client(app, rp, profile="fapi2")
    return rp


def token_form(rp: RelyingParty, code: str, verifier: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": rp.redirect_uri,
        "code_verifier": verifier,
    }


def fapi_code(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str, key: Any
) -> tuple[str, str]:
    request = rp.authorization_request()
    proof = dpop_proof(key, htu=ISSUER + "/par", nonce=server_nonce(app))
    pushed = push(rp, request.params, headers={"DPoP": proof})
    assert pushed.status_code == 201, pushed.get_json()
    assert authorize_pushed(rp, pushed.get_json()["request_uri"]).status_code == 200
    return code_of(rp.finish(login.last, resident_id)), request.verifier


def test_the_whole_fapi2_flow(
    app: Flask, fapi_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    rp = fapi_rp
    key = new_key()
    code, verifier = fapi_code(app, rp, login, resident_id, key)
    ttl = rp.store().ttl("code:" + hashlib.sha256(code.encode()).hexdigest())
    assert ttl is not None and ttl <= 30
    proof = dpop_proof(key, nonce=server_nonce(app))
    response = post_authenticated(
        rp, "/token", token_form(rp, code, verifier), headers={"DPoP": proof}
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["token_type"] == "DPoP"


def test_fapi2_clients_must_push(fapi_rp: RelyingParty, login: CapturingLogin) -> None:
    request = fapi_rp.authorization_request()
    params = callback_params(fapi_rp.authorize(request).headers["Location"])
    assert params["error"] == ["invalid_request"]
    assert params["state"] == [request.state]


def test_fapi2_clients_must_use_dpop(
    app: Flask, fapi_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    request = fapi_rp.authorization_request()
    pushed = push(fapi_rp, request.params)
    assert pushed.status_code == 201
    authorize_pushed(fapi_rp, pushed.get_json()["request_uri"])
    code = code_of(fapi_rp.finish(login.last, resident_id))
    response = post_authenticated(fapi_rp, "/token", token_form(fapi_rp, code, request.verifier))
    assert error_of(response, 400) == "invalid_request"


def test_fapi2_dpop_proofs_use_fapi_algorithms(
    app: Flask, fapi_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    key = RSAKey.generate_key(2048, private=True)
    code, verifier = fapi_code(app, fapi_rp, login, resident_id, new_key())
    proof = dpop_proof(key, alg="RS256", nonce=server_nonce(app))
    response = post_authenticated(
        fapi_rp, "/token", token_form(fapi_rp, code, verifier), headers={"DPoP": proof}
    )
    assert error_of(response, 400) == "invalid_dpop_proof"


def rsa_assertion(rp: RelyingParty, key: RSAKey, alg: str) -> str:
    now = int(time.time())
    claims = {
        "iss": rp.client_id,
        "sub": rp.client_id,
        "aud": TOKEN_URL,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(12),
    }
    return jwt.encode({"alg": alg, "kid": key.kid}, claims, key, algorithms=[alg])


@pytest.mark.parametrize(("alg", "accepted"), [("RS256", False), ("PS256", True)])
def test_fapi2_client_assertions_use_fapi_algorithms(app: Flask, alg: str, accepted: bool) -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"}, private=True)
    rp = RelyingParty(app, client_key=key, alg="PS256", name="FAPI RSA")
    set_client(app, rp, profile="fapi2")
    form = {
        "token": "whatever",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": rsa_assertion(rp, key, alg),
    }
    response = rp.http.post("/revoke", data=form)
    if accepted:
        assert response.status_code == 200
    else:
        assert error_of(response, 401) == "invalid_client"


def test_fapi2_request_objects_use_fapi_algorithms(app: Flask) -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "rsa-2"}, private=True)
    rp = RelyingParty(app, client_key=key, alg="PS256", name="FAPI RSA 2")
    set_client(app, rp, profile="fapi2")
    now = int(time.time())
    body = {
        **rp.authorization_request().params,
        "iss": rp.client_id,
        "aud": ISSUER,
        "exp": now + 60,
    }
    token = jwt.encode({"alg": "RS256", "kid": "rsa-2"}, body, key, algorithms=["RS256"])
    form = {
        "request": token,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": rsa_assertion(rp, key, "PS256"),
    }
    assert error_of(rp.http.post("/par", data=form), 400) == "invalid_request_object"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"auth_method": "client_secret_basic"}, "private_key_jwt"),
        ({"auth_method": "none"}, "private_key_jwt"),
        ({"auth_method": "private_key_jwt", "id_token_alg": "RS256"}, "ES256 or PS256"),
        ({"auth_method": "private_key_jwt", "profile": "fapi1"}, "profile"),
    ],
)
def test_registration_of_fapi2_clients(app: Flask, kwargs: dict[str, Any], message: str) -> None:
    jwks = {"keys": [new_key().as_dict(private=False)]}
    settings: dict[str, Any] = {"profile": "fapi2", **kwargs}
    if settings["auth_method"] == "private_key_jwt":
        settings["jwks"] = jwks
    with app.app_context(), pytest.raises(ClientRegistrationError, match=message):
        new_client(name="x", redirect_uris=["https://x.example/cb"], **settings)
