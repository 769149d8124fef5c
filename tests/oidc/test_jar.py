"""Signed request objects (JAR, RFC 9101): verified against the client's keys; unsigned and
alg none refused; required per client."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from flask import Flask
from joserfc import jwt
from joserfc.jwk import ECKey
from protocol_support import (
    authorize_pushed,
    code_of,
    error_of,
    push,
    request_object,
    set_client,
)
from provider_support import ISSUER, CapturingLogin, RelyingParty, callback_params

from idp.oidc.clients import ClientRegistrationError, new_client


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def authorize_with_object(rp: RelyingParty, token: str, **query: str) -> Any:
    return rp.http.get(
        "/authorize",
        query_string={"client_id": rp.client_id, "request": token, "state": "query-state", **query},
    )


def refused(response: Any) -> tuple[str, str]:
    """(error, state) of a redirected authorization error."""
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    params = callback_params(response.headers["Location"])
    return params["error"][0], params.get("state", [""])[0]


def test_a_signed_request_object_carries_the_request(
    rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    inner = rp.authorization_request(scope="openid birthdate")
    token = request_object(rp, {**inner.params, "max_age": 600})
    # the query's own parameters (other than client_id) are ignored
    response = authorize_with_object(rp, token, scope="openid name address", nonce="other")
    assert response.status_code == 200, response.get_data(as_text=True)
    ctx = login.last
    assert ctx.scopes == ("openid", "birthdate")
    assert ctx.nonce == inner.params["nonce"]
    assert ctx.max_age == 600
    code = code_of(rp.finish(ctx, resident_id))
    assert rp.token_request(code, inner.verifier).status_code == 200


def test_a_claims_object_inside_the_request_object(rp: RelyingParty, login: CapturingLogin) -> None:
    inner = rp.authorization_request(scope="openid")
    token = request_object(rp, {**inner.params, "claims": {"id_token": {"gender": None}}})
    assert authorize_with_object(rp, token).status_code == 200
    assert login.last.scopes == ("openid", "gender")


def unsigned(claims: dict[str, Any]) -> str:
    header = b64(json.dumps({"alg": "none"}).encode())
    return f"{header}.{b64(json.dumps(claims).encode())}."


def hs256(secret: bytes, claims: dict[str, Any]) -> str:
    header = b64(json.dumps({"alg": "HS256"}).encode())
    payload = b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def claims_for(rp: RelyingParty) -> dict[str, Any]:
    now = int(time.time())
    return {
        **rp.authorization_request().params,
        "iss": rp.client_id,
        "aud": ISSUER,
        "exp": now + 300,
    }


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda rp: unsigned(claims_for(rp)), id="alg-none"),
        pytest.param(lambda rp: hs256(b"secret", claims_for(rp)), id="hs256"),
        pytest.param(
            lambda rp: jwt.encode(
                {"alg": "ES256", "kid": rp.key.kid},
                claims_for(rp),
                ECKey.generate_key("P-256", parameters={"kid": rp.key.kid}, private=True),
            ),
            id="someone-elses-key",
        ),
        pytest.param(lambda rp: request_object(rp, {}, client_id="other"), id="client-id-claim"),
        pytest.param(lambda rp: request_object(rp, {}, iss="other"), id="iss"),
        pytest.param(lambda rp: request_object(rp, {}, aud="https://evil.example"), id="aud"),
        pytest.param(lambda rp: request_object(rp, {}, aud=None), id="aud-missing"),
        pytest.param(lambda rp: request_object(rp, {}, exp=None), id="exp-missing"),
        pytest.param(lambda rp: request_object(rp, {}, exp=int(time.time()) - 120), id="expired"),
        pytest.param(
            lambda rp: request_object(rp, {}, exp=int(time.time()) + 7200), id="exp-far-ahead"
        ),
        pytest.param(lambda rp: request_object(rp, {}, nbf=int(time.time()) + 600), id="nbf"),
        pytest.param(
            lambda rp: request_object(rp, {"request_uri": "urn:x"}), id="nested-request-uri"
        ),
        pytest.param(lambda rp: request_object(rp, {"scope": ["openid"]}), id="non-string"),
        pytest.param(lambda rp: "a.b.c.d.e", id="jwe"),
        pytest.param(lambda rp: "x" * 20000, id="oversized"),
    ],
)
def test_bad_request_objects_are_invalid_request_object(
    rp: RelyingParty, login: CapturingLogin, make: Any
) -> None:
    error, state = refused(authorize_with_object(rp, make(rp), redirect_uri=rp.redirect_uri))
    assert error == "invalid_request_object"
    assert state == "query-state"


def test_typ_must_be_the_request_object_type(rp: RelyingParty, login: CapturingLogin) -> None:
    body = claims_for(rp)
    body["client_id"] = rp.client_id
    token = jwt.encode({"alg": "ES256", "kid": rp.key.kid, "typ": "dpop+jwt"}, body, rp.key)
    error, _ = refused(authorize_with_object(rp, token, redirect_uri=rp.redirect_uri))
    assert error == "invalid_request_object"


def test_without_a_registered_redirect_uri_the_error_is_a_page(
    rp: RelyingParty, login: CapturingLogin
) -> None:
    response = authorize_with_object(rp, unsigned(claims_for(rp)))
    assert response.status_code == 400
    assert "invalid_request_object" in response.get_data(as_text=True)


def test_clients_without_keys_cannot_sign(app: Flask, login: CapturingLogin) -> None:
    rp = RelyingParty(app, auth_method="client_secret_basic")
    token = request_object(rp, rp.authorization_request().params)
    error, _ = refused(authorize_with_object(rp, token, redirect_uri=rp.redirect_uri))
    assert error == "invalid_request_object"


def test_a_client_that_requires_signed_request_objects(
    app: Flask, rp: RelyingParty, login: CapturingLogin
) -> None:
    set_client(app, rp, require_signed_request_object=True)
    request = rp.authorization_request()
    error, state = refused(rp.authorize(request))
    assert (error, state) == ("invalid_request", request.state)
    # pushed, but not signed
    assert error_of(push(rp, rp.authorization_request().params), 400) == "invalid_request"
    # signed, by value and pushed
    assert authorize_with_object(rp, request_object(rp, request.params)).status_code == 200
    pushed = push(rp, {"request": request_object(rp, rp.authorization_request().params)})
    assert pushed.status_code == 201
    assert authorize_pushed(rp, pushed.get_json()["request_uri"]).status_code == 200


def test_pushed_request_objects_are_checked_too(rp: RelyingParty) -> None:
    response = push(rp, {"request": unsigned(claims_for(rp))})
    assert error_of(response, 400) == "invalid_request_object"


def test_registration_refuses_signed_request_objects_without_keys(app: Flask) -> None:
    with app.app_context(), pytest.raises(ClientRegistrationError):
        new_client(
            name="x",
            redirect_uris=["https://x.example/cb"],
            auth_method="client_secret_basic",
            require_signed_request_object=True,
        )


def test_discovery_describes_request_objects(rp: RelyingParty) -> None:
    metadata = rp.http.get("/.well-known/openid-configuration").get_json()
    assert metadata["request_parameter_supported"] is True
    algs = metadata["request_object_signing_alg_values_supported"]
    assert "none" not in algs and not any(alg.startswith("HS") for alg in algs)
