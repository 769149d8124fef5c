"""Refresh tokens: only with consented offline_access, rotated on every use, reuse revokes the
whole grant, configurable lifetimes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from flask import Flask
from joserfc import jwt
from joserfc.jwk import KeySet
from protocol_support import (
    ALL_ITEMS,
    consent,
    error_of,
    offline_login,
    post_authenticated,
    refresh,
)
from provider_support import (
    ISSUER,
    CapturingLogin,
    RelyingParty,
    callback_params,
    enroll_test_resident,
    install_capturing_login,
)

from idp.storage.consents import revoke_consent


@pytest.fixture
def offline_rp(app: Flask) -> RelyingParty:
    return RelyingParty(app, scopes=ALL_ITEMS)


def keys(rp: RelyingParty) -> KeySet:
    return KeySet.import_key_set(rp.http.get("/jwks.json").get_json())


def test_offline_access_gives_a_refresh_token_that_rotates(
    app: Flask, offline_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    rp = offline_rp
    first = offline_login(app, rp, login, resident_id)
    assert first["scope"] == "openid name offline_access"
    assert first["refresh_token"]
    original = jwt.decode(first["id_token"], keys(rp)).claims

    response = refresh(rp, first["refresh_token"])
    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    second = response.get_json()
    assert second["token_type"] == "Bearer"
    assert second["scope"] == "openid name offline_access"
    assert second["refresh_token"] not in (None, first["refresh_token"])
    assert second["access_token"] != first["access_token"]

    claims = jwt.decode(second["id_token"], keys(rp)).claims
    assert claims["iss"] == ISSUER and claims["aud"] == rp.client_id
    assert claims["sub"] == original["sub"]
    assert claims["auth_time"] == original["auth_time"]
    assert claims["acr"] == original["acr"] and claims["amr"] == original["amr"]
    assert "nonce" not in claims
    assert claims["at_hash"]

    userinfo = rp.userinfo(second["access_token"])
    assert userinfo.status_code == 200
    assert userinfo.get_json() == {
        "sub": original["sub"],
        "name": "山田　太郎",
        "family_name": "山田",
        "given_name": "太郎",
    }
    third = refresh(rp, second["refresh_token"])
    assert third.status_code == 200


def test_reuse_of_a_rotated_refresh_token_revokes_the_whole_grant(
    app: Flask, offline_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    rp = offline_rp
    first = offline_login(app, rp, login, resident_id)
    second = refresh(rp, first["refresh_token"]).get_json()
    assert rp.userinfo(first["access_token"]).status_code == 200

    reuse = refresh(rp, first["refresh_token"])
    assert error_of(reuse, 400) == "invalid_grant"
    assert "revoked" in reuse.get_json()["error_description"]

    # every token of the grant is dead: the current refresh token and both access tokens
    assert error_of(refresh(rp, second["refresh_token"]), 400) == "invalid_grant"
    for access_token in (first["access_token"], second["access_token"]):
        assert error_of(rp.userinfo(access_token), 401) == "invalid_token"


def test_other_grants_survive_a_revoked_grant(
    app: Flask, offline_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    rp = offline_rp
    leaked = offline_login(app, rp, login, resident_id)
    healthy = offline_login(app, rp, login, resident_id)
    refresh(rp, leaked["refresh_token"])
    assert error_of(refresh(rp, leaked["refresh_token"])) == "invalid_grant"
    assert refresh(rp, healthy["refresh_token"]).status_code == 200


def test_concurrent_use_of_one_refresh_token_lets_one_win_and_revokes_the_grant(
    app: Flask, offline_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    rp = offline_rp
    token = offline_login(app, rp, login, resident_id)["refresh_token"]
    statuses: list[int] = []
    barrier = threading.Barrier(6)

    def racer() -> None:
        http = app.test_client()
        barrier.wait()
        statuses.append(refresh(rp, token, http=http).status_code)

    threads = [threading.Thread(target=racer) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(200) <= 1
    assert statuses.count(400) >= 5
    # whatever the winner got is revoked with the grant
    assert error_of(refresh(rp, token)) == "invalid_grant"


def test_no_refresh_token_without_offline_access(
    app: Flask, offline_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    body = offline_login(app, offline_rp, login, resident_id, scope="openid name")
    assert "refresh_token" not in body
    assert body["scope"] == "openid name"


def test_no_refresh_token_when_offline_access_was_not_granted(
    app: Flask, offline_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    rp = offline_rp
    request = rp.authorization_request(scope="openid name offline_access")
    assert rp.authorize(request).status_code == 200
    callback = rp.finish(login.last, resident_id, granted=("openid", "name"))
    code = callback_params(callback.headers["Location"])["code"][0]
    body = rp.token_request(code, request.verifier).get_json()
    assert body["scope"] == "openid name"
    assert "refresh_token" not in body


def test_offline_access_needs_a_client_registered_for_it(
    rp: RelyingParty, login: CapturingLogin
) -> None:
    request = rp.authorization_request(scope="openid name offline_access")
    response = rp.authorize(request)
    assert response.status_code == 302
    params = callback_params(response.headers["Location"])
    assert params["error"] == ["invalid_scope"]
    assert params["state"] == [request.state]


def test_a_client_without_offline_access_cannot_use_the_refresh_grant(rp: RelyingParty) -> None:
    response = refresh(rp, "whatever")
    assert error_of(response, 400) == "unauthorized_client"


def test_missing_or_unknown_refresh_token(offline_rp: RelyingParty) -> None:
    response = post_authenticated(offline_rp, "/token", {"grant_type": "refresh_token"})
    assert error_of(response, 400) == "invalid_request"
    assert error_of(refresh(offline_rp, "no-such-token"), 400) == "invalid_grant"
    assert error_of(refresh(offline_rp, "x" * 600), 400) == "invalid_grant"


def test_refresh_needs_client_authentication(
    app: Flask, offline_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    token = offline_login(app, offline_rp, login, resident_id)["refresh_token"]
    response = post_authenticated(
        offline_rp,
        "/token",
        {"grant_type": "refresh_token", "refresh_token": token},
        authenticate=False,
    )
    assert error_of(response, 401) == "invalid_client"
    # a failed authentication does not spend the token
    assert refresh(offline_rp, token).status_code == 200


def test_another_clients_refresh_token_is_unknown_and_not_spent(
    app: Flask, offline_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    thief = RelyingParty(app, scopes=ALL_ITEMS, name="別のサービス")
    token = offline_login(app, offline_rp, login, resident_id)["refresh_token"]
    assert error_of(refresh(thief, token), 400) == "invalid_grant"
    assert refresh(offline_rp, token).status_code == 200


def test_a_narrower_scope_may_be_asked_for_a_wider_one_not(
    app: Flask, offline_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    rp = offline_rp
    token = offline_login(app, rp, login, resident_id)["refresh_token"]
    wider = refresh(rp, token, scope="openid name address")
    assert error_of(wider, 400) == "invalid_scope"
    # refused before the token was consumed
    narrower = refresh(rp, token, scope="openid")
    assert narrower.status_code == 200
    body = narrower.get_json()
    assert body["scope"] == "openid"
    assert rp.userinfo(body["access_token"]).get_json().keys() == {"sub"}
    # the rotated refresh token keeps the original grant
    again = refresh(rp, body["refresh_token"]).get_json()
    assert again["scope"] == "openid name offline_access"


def test_withdrawn_consent_ends_offline_access(
    app: Flask, offline_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    rp = offline_rp
    body = offline_login(app, rp, login, resident_id)
    with app.app_context():
        assert revoke_consent(resident_id, rp.client_id)
    response = refresh(rp, body["refresh_token"])
    assert error_of(response, 400) == "invalid_grant"
    assert error_of(rp.userinfo(body["access_token"]), 401) == "invalid_token"
    # consenting again later does not bring the old grant back
    consent(app, resident_id, rp, ["name", "offline_access"])
    assert error_of(refresh(rp, body["refresh_token"])) == "invalid_grant"


def test_public_clients_refresh_with_their_client_id(
    app: Flask, login: CapturingLogin, resident_id: str
) -> None:
    rp = RelyingParty(app, auth_method="none", scopes=ALL_ITEMS)
    body = offline_login(app, rp, login, resident_id)
    assert refresh(rp, body["refresh_token"]).status_code == 200


def test_replayed_code_also_revokes_the_refresh_token(
    app: Flask, offline_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    rp = offline_rp
    consent(app, resident_id, rp, ["name", "offline_access"])
    request, params = rp.login(login, resident_id, scope="openid name offline_access")
    body = rp.token_request(params["code"][0], request.verifier).get_json()
    assert error_of(rp.token_request(params["code"][0], request.verifier)) == "invalid_grant"
    assert error_of(refresh(rp, body["refresh_token"])) == "invalid_grant"


def test_refresh_token_idle_lifetime(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(REFRESH_TOKEN_TTL=1, REFRESH_TOKEN_MAX_LIFETIME=60)
    login = install_capturing_login(app)
    rp = RelyingParty(app, scopes=ALL_ITEMS)
    with app.app_context():
        resident = enroll_test_resident().id
    token = offline_login(app, rp, login, resident)["refresh_token"]
    time.sleep(1.3)
    assert error_of(refresh(rp, token)) == "invalid_grant"


def test_rotation_never_extends_past_the_grants_absolute_lifetime(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(REFRESH_TOKEN_TTL=2, REFRESH_TOKEN_MAX_LIFETIME=2)
    login = install_capturing_login(app)
    rp = RelyingParty(app, scopes=ALL_ITEMS)
    with app.app_context():
        resident = enroll_test_resident().id
    token = offline_login(app, rp, login, resident)["refresh_token"]
    time.sleep(1.1)
    rotated = refresh(rp, token).get_json()["refresh_token"]  # lives to the grant's end only
    time.sleep(1.2)
    assert error_of(refresh(rp, rotated)) == "invalid_grant"
