"""Discovery is complete and truthful: every advertised value works, every endpoint and grant
that exists is advertised; JWKS and discovery carry Cache-Control and an ETag (304)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey
from protocol_support import code_of, dpop_proof, post_authenticated, server_nonce
from provider_support import (
    ISSUER,
    CapturingLogin,
    RelyingParty,
    callback_params,
    enroll_test_resident,
    install_capturing_login,
)

from idp.extensions import get_settings, get_store
from idp.oidc.keys import rotate_signing_key
from idp.oidc.server import get_server
from idp.oidc.sign_transactions import SignTransactionStore

ALL_SCOPES = (
    "name",
    "address",
    "birthdate",
    "gender",
    "age_over_18",
    "age_over_65",
    "resident_of",
    "offline_access",
    "sign",
)


def metadata_of(rp: RelyingParty) -> dict[str, Any]:
    document = rp.http.get("/.well-known/openid-configuration").get_json()
    assert isinstance(document, dict)
    return document


def key_for(alg: str, kid: str) -> Any:
    curves = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
    if alg in curves:
        return ECKey.generate_key(curves[alg], parameters={"kid": kid}, private=True)
    if alg == "Ed25519":
        return OKPKey.generate_key("Ed25519", parameters={"kid": kid}, private=True)
    return RSAKey.generate_key(2048, parameters={"kid": kid}, private=True)


# -- caching ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "max_age"), [("/jwks.json", 300), ("/.well-known/openid-configuration", 3600)]
)
def test_etag_and_not_modified(rp: RelyingParty, path: str, max_age: int) -> None:
    first = rp.http.get(path)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag.startswith('"') and len(etag) == 66
    assert first.headers["Cache-Control"] == f"public, max-age={max_age}"
    again = rp.http.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""
    assert again.headers["ETag"] == etag
    assert again.headers["Cache-Control"] == f"public, max-age={max_age}"
    assert rp.http.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    assert rp.http.get(path).headers["ETag"] == etag  # stable


def test_the_jwks_etag_changes_with_the_keys(app: Flask, rp: RelyingParty) -> None:
    before = rp.http.get("/jwks.json").headers["ETag"]
    with app.app_context():
        rotate_signing_key("ES256", get_settings(), force=True)
    after = rp.http.get("/jwks.json", headers={"If-None-Match": before})
    assert after.status_code == 200
    assert after.headers["ETag"] != before
    assert len(after.get_json()["keys"]) == 3  # the new active and next keys, the retiring one


# -- nothing that works is missing --------------------------------------------------------


def test_every_endpoint_is_advertised(app: Flask, rp: RelyingParty) -> None:
    metadata = metadata_of(rp)
    advertised = {value for value in metadata.values() if isinstance(value, str)}
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("oidc.") or rule.rule.startswith("/.well-known"):
            continue
        assert ISSUER + rule.rule in advertised, rule.rule


def test_every_grant_and_client_authentication_is_advertised(app: Flask, rp: RelyingParty) -> None:
    metadata = metadata_of(rp)
    server = get_server(app)
    for grant, _ in server._token_grants:
        assert grant.GRANT_TYPE in metadata["grant_types_supported"]
        assert set(grant.TOKEN_ENDPOINT_AUTH_METHODS) == set(
            metadata["token_endpoint_auth_methods_supported"]
        )
    assert set(metadata["revocation_endpoint_auth_methods_supported"]) == set(
        metadata["token_endpoint_auth_methods_supported"]
    )


def test_the_core_and_extension_metadata_is_there(rp: RelyingParty) -> None:
    metadata = metadata_of(rp)
    for name in (
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "revocation_endpoint",
        "introspection_endpoint",
        "pushed_authorization_request_endpoint",
        "scopes_supported",
        "response_types_supported",
        "response_modes_supported",
        "grant_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
        "token_endpoint_auth_methods_supported",
        "token_endpoint_auth_signing_alg_values_supported",
        "code_challenge_methods_supported",
        "claims_supported",
        "claims_parameter_supported",
        "request_parameter_supported",
        "request_object_signing_alg_values_supported",
        "dpop_signing_alg_values_supported",
        "authorization_response_iss_parameter_supported",
        "verified_claims_supported",
        "trust_frameworks_supported",
        "evidence_supported",
        "claims_in_verified_claims_supported",
        "acr_values_supported",
        "end_session_endpoint",
        "backchannel_logout_supported",
        "backchannel_logout_session_supported",
    ):
        assert name in metadata, name
    assert metadata["frontchannel_logout_supported"] is False
    for absent in ("registration_endpoint", "check_session_iframe"):
        assert absent not in metadata


# -- every advertised value works ---------------------------------------------------------


def test_every_advertised_scope_can_be_asked_for(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(MUNICIPALITIES={"172065": "石川県加賀市"})
    login = install_capturing_login(app)
    rp = RelyingParty(app, scopes=ALL_SCOPES)
    for scope in metadata_of(rp)["scopes_supported"]:
        extra: dict[str, str | None] = {}
        if scope == "sign":  # a signature needs a registered signature transaction
            with app.app_context():
                extra["sign_transaction_id"] = (
                    SignTransactionStore(get_store())
                    .create(client_id=rp.client_id, digest=bytes(32), text="t", expires_in=300)
                    .id
                )
        request = rp.authorization_request(scope=f"openid {scope}", **extra)
        assert rp.authorize(request).status_code == 200, scope
        assert scope in login.last.scopes


def test_every_advertised_claim_is_released_somewhere(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(MUNICIPALITIES={"172065": "石川県加賀市"})
    login = install_capturing_login(app)
    rp = RelyingParty(app, scopes=ALL_SCOPES)
    with app.app_context():
        resident = enroll_test_resident().id
    metadata = metadata_of(rp)
    personal = [
        claim
        for claim in metadata["claims_supported"]
        if claim not in ("sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr")
        and claim not in ("at_hash", "sid", "verified_claims")
    ]
    verified = {
        "verification": {"trust_framework": None, "time": None, "evidence": None},
        "claims": dict.fromkeys(metadata["claims_in_verified_claims_supported"]),
    }
    claims = {"userinfo": {**dict.fromkeys(personal), "verified_claims": verified}}
    request = rp.authorization_request(scope="openid", claims=json.dumps(claims))
    assert rp.authorize(request).status_code == 200
    code = code_of(rp.finish(login.last, resident))
    body = rp.token_request(code, request.verifier).get_json()
    info = rp.userinfo(body["access_token"]).get_json()
    for claim in personal:
        assert claim in info, claim
    answer = info["verified_claims"]
    assert answer["verification"]["trust_framework"] in metadata["trust_frameworks_supported"]
    assert [e["type"] for e in answer["verification"]["evidence"]] == metadata["evidence_supported"]
    assert set(answer["claims"]) == set(metadata["claims_in_verified_claims_supported"])
    keys = KeySet.import_key_set(rp.http.get("/jwks.json").get_json())
    id_token = jwt.decode(body["id_token"], keys).claims
    authentication = ("sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr")
    for claim in (*authentication, "at_hash", "sid"):
        assert claim in id_token, claim
        assert claim in metadata["claims_supported"]
    assert id_token["acr"] in metadata["acr_values_supported"]


def _request_object(rp: RelyingParty, key: Any, alg: str) -> str:
    now = int(time.time())
    body = {
        **rp.authorization_request().params,
        "iss": rp.client_id,
        "aud": ISSUER,
        "exp": now + 60,
    }
    return jwt.encode({"alg": alg, "kid": key.kid}, body, key, algorithms=[alg])


def test_every_request_object_algorithm_works(app: Flask, login: CapturingLogin) -> None:
    probe = RelyingParty(app, name="probe")
    for alg in metadata_of(probe)["request_object_signing_alg_values_supported"]:
        key = key_for(alg, f"ro-{alg}")
        rp = RelyingParty(app, client_key=key, name=f"ro {alg}")
        response = rp.http.get(
            "/authorize",
            query_string={"client_id": rp.client_id, "request": _request_object(rp, key, alg)},
        )
        assert response.status_code == 200, (alg, response.get_data(as_text=True)[:300])


def test_every_dpop_algorithm_works(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    for alg in metadata_of(rp)["dpop_signing_alg_values_supported"]:
        request, params = rp.login(login, resident_id)
        form = {
            "grant_type": "authorization_code",
            "code": params["code"][0],
            "redirect_uri": rp.redirect_uri,
            "code_verifier": request.verifier,
        }
        proof = dpop_proof(key_for(alg, "d"), alg=alg, nonce=server_nonce(app))
        response = post_authenticated(rp, "/token", form, headers={"DPoP": proof})
        assert response.status_code == 200, (alg, response.get_json())
        assert response.get_json()["token_type"] == "DPoP"


def test_every_advertised_prompt_is_accepted(rp: RelyingParty, login: CapturingLogin) -> None:
    for prompt in metadata_of(rp)["prompt_values_supported"]:
        response = rp.authorize(rp.authorization_request(prompt=prompt))
        if prompt == "none":  # no provider session: every login needs the card
            assert callback_params(response.headers["Location"])["error"] == ["login_required"]
        else:
            assert response.status_code == 200, prompt


def test_only_advertised_values_are_accepted(rp: RelyingParty, login: CapturingLogin) -> None:
    metadata = metadata_of(rp)
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["response_modes_supported"] == ["query"]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    for overrides in (
        {"response_mode": "fragment"},
        {"code_challenge_method": "plain"},
        {"response_type": "code id_token"},
    ):
        response = rp.authorize(rp.authorization_request(**overrides))
        assert "error" in callback_params(response.headers["Location"]), overrides
