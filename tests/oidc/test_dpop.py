"""DPoP (RFC 9449): proofs at the token endpoint and at userinfo, the jti replay cache, server
nonces, cnf.jkt-bound access tokens, dpop_jkt code binding, bound refresh tokens."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from joserfc.jwk import OctKey, RSAKey
from protocol_support import (
    ALL_ITEMS,
    auth_parts,
    authorize_pushed,
    code_of,
    consent,
    dpop_proof,
    error_of,
    new_key,
    post_authenticated,
    push,
    server_nonce,
    set_client,
)
from provider_support import (
    ISSUER,
    CapturingLogin,
    RelyingParty,
    callback_params,
    enroll_test_resident,
    install_capturing_login,
)

from idp.oidc.server import get_server

TOKEN_URL = ISSUER + "/token"
USERINFO_URL = ISSUER + "/userinfo"


def code_for(
    rp: RelyingParty, login: CapturingLogin, resident_id: str, **overrides: str
) -> tuple[str, str]:
    request, params = rp.login(login, resident_id, **overrides)
    return params["code"][0], request.verifier


def token_request(
    rp: RelyingParty, code: str, verifier: str, proof: str | None, **extra: str
) -> Any:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": rp.redirect_uri,
        "code_verifier": verifier,
        **extra,
    }
    headers = {"DPoP": proof} if proof is not None else {}
    return post_authenticated(rp, "/token", form, headers=headers)


def dpop_tokens(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str, key: Any, **kw: str
) -> dict[str, Any]:
    code, verifier = code_for(rp, login, resident_id, **kw)
    proof = dpop_proof(key, nonce=server_nonce(app))
    response = token_request(rp, code, verifier, proof)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert isinstance(body, dict)
    return body


def userinfo(rp: RelyingParty, token: str, proof: str | None, scheme: str = "DPoP") -> Any:
    headers = {"Authorization": f"{scheme} {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    return rp.http.get("/userinfo", headers=headers)


# -- the token endpoint -------------------------------------------------------------------


def test_nonce_dance_then_a_dpop_bound_token(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    key = new_key()
    code, verifier = code_for(rp, login, resident_id)
    first = token_request(rp, code, verifier, dpop_proof(key))
    assert error_of(first, 400) == "use_dpop_nonce"
    nonce = first.headers["DPoP-Nonce"]
    # the nonce error came before the code was looked at: it is still good
    second = token_request(rp, code, verifier, dpop_proof(key, nonce=nonce))
    assert second.status_code == 200, second.get_json()
    assert second.headers["DPoP-Nonce"]
    body = second.get_json()
    assert body["token_type"] == "DPoP"

    introspection = post_authenticated(rp, "/introspect", {"token": body["access_token"]})
    data = introspection.get_json()
    assert data["token_type"] == "DPoP"
    assert data["cnf"] == {"jkt": key.thumbprint()}


def test_userinfo_with_a_dpop_bound_token(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    key = new_key()
    token = dpop_tokens(app, rp, login, resident_id, key)["access_token"]

    def proof(**kw: Any) -> str:
        base: dict[str, Any] = {
            "htm": "GET",
            "htu": USERINFO_URL,
            "nonce": server_nonce(app),
            "access_token": token,
        }
        base.update(kw)
        return dpop_proof(key, **base)

    ok = userinfo(rp, token, proof())
    assert ok.status_code == 200, ok.get_json()
    assert ok.get_json()["name"] == "山田　太郎"

    # a bound token as a Bearer token
    assert error_of(userinfo(rp, token, None, scheme="Bearer"), 401) == "invalid_token"
    # a proof made with another key
    other = dpop_proof(
        new_key("other"), htm="GET", htu=USERINFO_URL, nonce=server_nonce(app), access_token=token
    )
    response = userinfo(rp, token, other)
    assert error_of(response, 401) == "invalid_dpop_proof"
    assert response.headers["WWW-Authenticate"].startswith("DPoP ")
    # a missing proof, a missing ath, wrong htm / htu, a replayed proof
    assert error_of(userinfo(rp, token, None), 401) == "invalid_dpop_proof"
    assert error_of(userinfo(rp, token, proof(access_token=None)), 401) == "invalid_dpop_proof"
    assert error_of(userinfo(rp, token, proof(htm="POST")), 401) == "invalid_dpop_proof"
    assert error_of(userinfo(rp, token, proof(htu=TOKEN_URL)), 401) == "invalid_dpop_proof"
    once = proof()
    assert userinfo(rp, token, once).status_code == 200
    assert error_of(userinfo(rp, token, once), 401) == "invalid_dpop_proof"
    # no nonce at the resource: 401, a DPoP challenge and a fresh nonce
    response = userinfo(rp, token, proof(nonce=None))
    assert error_of(response, 401) == "use_dpop_nonce"
    assert 'error="use_dpop_nonce"' in response.headers["WWW-Authenticate"]
    assert response.headers["DPoP-Nonce"]


def test_a_bearer_token_is_not_accepted_with_the_dpop_scheme(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    code, verifier = code_for(rp, login, resident_id)
    token = rp.token_request(code, verifier).get_json()["access_token"]
    proof = dpop_proof(
        new_key(), htm="GET", htu=USERINFO_URL, nonce=server_nonce(app), access_token=token
    )
    assert error_of(userinfo(rp, token, proof), 401) == "invalid_dpop_proof"
    assert rp.userinfo(token).status_code == 200


def unsigned_proof(key: Any, nonce: str) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    header = {"typ": "dpop+jwt", "alg": "none", "jwk": key.as_dict(private=False)}
    claims = {"jti": "j", "htm": "POST", "htu": TOKEN_URL, "iat": int(time.time()), "nonce": nonce}
    return f"{part(header)}.{part(claims)}."


def _rsa() -> RSAKey:
    return RSAKey.generate_key(2048, private=True)


BAD_PROOFS: list[Any] = [
    pytest.param(
        lambda app, key: dpop_proof(key, nonce=server_nonce(app), header={"typ": "JWT"}), id="typ"
    ),
    pytest.param(lambda app, key: "not-a-jwt", id="garbage"),
    pytest.param(lambda app, key: dpop_proof(key, nonce=server_nonce(app), htm="GET"), id="htm"),
    pytest.param(
        lambda app, key: dpop_proof(key, nonce=server_nonce(app), htu=ISSUER + "/userinfo"),
        id="htu",
    ),
    pytest.param(
        lambda app, key: dpop_proof(key, nonce=server_nonce(app), htu="https://evil/token"),
        id="htu-host",
    ),
    pytest.param(
        lambda app, key: dpop_proof(key, nonce=server_nonce(app), iat=int(time.time()) - 600),
        id="iat-old",
    ),
    pytest.param(
        lambda app, key: dpop_proof(key, nonce=server_nonce(app), iat=int(time.time()) + 600),
        id="iat-future",
    ),
    pytest.param(lambda app, key: dpop_proof(key, nonce=server_nonce(app), iat=None), id="no-iat"),
    pytest.param(lambda app, key: dpop_proof(key, nonce=server_nonce(app), jti=None), id="no-jti"),
    pytest.param(
        lambda app, key: dpop_proof(
            key, nonce=server_nonce(app), header={"jwk": new_key("x").as_dict(private=False)}
        ),
        id="signature",
    ),
    pytest.param(
        lambda app, key: dpop_proof(
            key, nonce=server_nonce(app), header={"jwk": key.as_dict(private=True)}
        ),
        id="private-jwk",
    ),
    pytest.param(
        lambda app, key: dpop_proof(key, nonce=server_nonce(app), header={"jwk": None}), id="no-jwk"
    ),
    pytest.param(
        lambda app, key: dpop_proof(
            OctKey.generate_key(256),
            alg="HS256",
            nonce=server_nonce(app),
            header={"jwk": {"kty": "oct", "k": "c2VjcmV0"}},
        ),
        id="hs256",
    ),
    pytest.param(lambda app, key: unsigned_proof(key, server_nonce(app)), id="alg-none"),
]


@pytest.mark.parametrize("make", BAD_PROOFS)
def test_bad_proofs_at_the_token_endpoint(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str, make: Any
) -> None:
    code, verifier = code_for(rp, login, resident_id)
    response = token_request(rp, code, verifier, make(app, new_key()))
    assert error_of(response, 400) == "invalid_dpop_proof"
    # refused before the code was spent
    assert token_request(rp, code, verifier, None).status_code == 200


def test_two_dpop_headers_and_a_replayed_proof(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    key = new_key()
    code, verifier = code_for(rp, login, resident_id)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": rp.redirect_uri,
        "code_verifier": verifier,
    }
    proof = dpop_proof(key, nonce=server_nonce(app))
    auth, auth_headers = auth_parts(rp)
    twice = rp.http.post(
        "/token",
        data={**form, **auth},
        headers=[*auth_headers.items(), ("DPoP", proof), ("DPoP", proof)],
    )
    assert error_of(twice, 400) == "invalid_dpop_proof"
    assert token_request(rp, code, verifier, proof).status_code == 200
    code, verifier = code_for(rp, login, resident_id)
    assert error_of(token_request(rp, code, verifier, proof), 400) == "invalid_dpop_proof"


def test_nonces_of_the_previous_period_still_work_older_ones_not(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    with app.app_context():
        verifier_ = get_server(app).dpop
        lifetime = get_server(app).settings.dpop_nonce_lifetime
        previous = verifier_.nonce(time.time() - lifetime)
        stale = verifier_.nonce(time.time() - 2 * lifetime)
    key = new_key()
    code, verifier = code_for(rp, login, resident_id)
    assert error_of(token_request(rp, code, verifier, dpop_proof(key, nonce=stale))) == (
        "use_dpop_nonce"
    )
    assert token_request(rp, code, verifier, dpop_proof(key, nonce=previous)).status_code == 200


def test_nonces_can_be_switched_off(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(DPOP_NONCE_REQUIRED=False)
    login = install_capturing_login(app)
    rp = RelyingParty(app)
    with app.app_context():
        resident = enroll_test_resident().id
    code, verifier = code_for(rp, login, resident)
    response = token_request(rp, code, verifier, dpop_proof(new_key()))
    assert response.status_code == 200
    assert "DPoP-Nonce" not in response.headers


def test_rsa_proofs_work(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    code, verifier = code_for(rp, login, resident_id)
    proof = dpop_proof(_rsa(), alg="PS256", nonce=server_nonce(app))
    assert token_request(rp, code, verifier, proof).get_json()["token_type"] == "DPoP"


# -- client policy and bindings -----------------------------------------------------------


def test_a_client_that_requires_dpop(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    set_client(app, rp, dpop_bound_access_tokens=True)
    code, verifier = code_for(rp, login, resident_id)
    assert error_of(token_request(rp, code, verifier, None), 400) == "invalid_request"
    body = dpop_tokens(app, rp, login, resident_id, new_key())
    assert body["token_type"] == "DPoP"


def test_dpop_jkt_binds_the_code(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    key = new_key()
    code, verifier = code_for(rp, login, resident_id, dpop_jkt=key.thumbprint())
    wrong = dpop_proof(new_key("other"), nonce=server_nonce(app))
    assert error_of(token_request(rp, code, verifier, wrong), 400) == "invalid_grant"
    code, verifier = code_for(rp, login, resident_id, dpop_jkt=key.thumbprint())
    assert error_of(token_request(rp, code, verifier, None), 400) == "invalid_grant"
    code, verifier = code_for(rp, login, resident_id, dpop_jkt=key.thumbprint())
    right = dpop_proof(key, nonce=server_nonce(app))
    assert token_request(rp, code, verifier, right).status_code == 200


@pytest.mark.parametrize("jkt", ["short", "x" * 43 + "=", "a b" + "c" * 40])
def test_malformed_dpop_jkt(rp: RelyingParty, login: CapturingLogin, jkt: str) -> None:
    response = rp.authorize(rp.authorization_request(dpop_jkt=jkt))
    assert callback_params(response.headers["Location"])["error"] == ["invalid_request"]


def test_dpop_at_par_binds_the_code(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    key = new_key()
    request = rp.authorization_request()
    proof = dpop_proof(key, htu=ISSUER + "/par", nonce=server_nonce(app))
    pushed = push(rp, request.params, headers={"DPoP": proof})
    assert pushed.status_code == 201, pushed.get_json()
    assert pushed.headers["DPoP-Nonce"]
    assert authorize_pushed(rp, pushed.get_json()["request_uri"]).status_code == 200
    assert login.last.dpop_jkt == key.thumbprint()
    code = code_of(rp.finish(login.last, resident_id))
    assert error_of(token_request(rp, code, request.verifier, None)) == "invalid_grant"

    # a dpop_jkt that names another key than the PAR proof is refused
    other = rp.authorization_request(dpop_jkt=new_key("z").thumbprint())
    proof = dpop_proof(key, htu=ISSUER + "/par", nonce=server_nonce(app))
    assert error_of(push(rp, other.params, headers={"DPoP": proof}), 400) == "invalid_request"
    # a bad proof at PAR
    assert error_of(push(rp, other.params, headers={"DPoP": "x.y.z"}), 400) == (
        "invalid_dpop_proof"
    )


def _refresh(rp: RelyingParty, token: str, proof: str | None) -> Any:
    headers = {"DPoP": proof} if proof else {}
    form = {"grant_type": "refresh_token", "refresh_token": token}
    return post_authenticated(rp, "/token", form, headers=headers)


def test_public_clients_refresh_tokens_are_bound_to_their_key(
    app: Flask, login: CapturingLogin, resident_id: str
) -> None:
    rp = RelyingParty(app, auth_method="none", scopes=ALL_ITEMS)
    consent(app, resident_id, rp, ["name", "offline_access"])
    key = new_key()
    body = dpop_tokens(app, rp, login, resident_id, key, scope="openid name offline_access")
    refresh_token = body["refresh_token"]
    assert error_of(_refresh(rp, refresh_token, None)) == "invalid_grant"
    other = dpop_proof(new_key("other"), nonce=server_nonce(app))
    assert error_of(_refresh(rp, refresh_token, other)) == "invalid_grant"
    # the refused attempts did not spend it
    renewed = _refresh(rp, refresh_token, dpop_proof(key, nonce=server_nonce(app)))
    assert renewed.status_code == 200, renewed.get_json()
    assert renewed.get_json()["token_type"] == "DPoP"
    # the rotated token stays bound
    assert error_of(_refresh(rp, renewed.get_json()["refresh_token"], None)) == "invalid_grant"


def test_confidential_clients_refresh_tokens_are_not_bound(
    app: Flask, login: CapturingLogin, resident_id: str
) -> None:
    rp = RelyingParty(app, scopes=ALL_ITEMS)
    consent(app, resident_id, rp, ["name", "offline_access"])
    body = dpop_tokens(app, rp, login, resident_id, new_key(), scope="openid name offline_access")
    renewed = _refresh(rp, body["refresh_token"], None)
    assert renewed.status_code == 200
    assert renewed.get_json()["token_type"] == "Bearer"


def test_discovery_lists_dpop_algorithms(rp: RelyingParty) -> None:
    metadata = rp.http.get("/.well-known/openid-configuration").get_json()
    algs = metadata["dpop_signing_alg_values_supported"]
    assert "ES256" in algs and "none" not in algs
    assert not any(alg.startswith("HS") for alg in algs)
