"""Token revocation (RFC 7009) and introspection (RFC 7662), client-authenticated."""

from __future__ import annotations

import pytest
from flask import Flask
from protocol_support import (
    ALL_ITEMS,
    error_of,
    offline_login,
    post_authenticated,
    refresh,
)
from provider_support import ISSUER, CapturingLogin, RelyingParty

from idp.storage.base import db
from idp.storage.clients import get_client


@pytest.fixture
def offline_rp(app: Flask) -> RelyingParty:
    return RelyingParty(app, scopes=ALL_ITEMS)


def revoke(rp: RelyingParty, token: str, **extra: str) -> object:
    return post_authenticated(rp, "/revoke", {"token": token, **extra})


def introspect(rp: RelyingParty, token: str, **extra: str) -> object:
    return post_authenticated(rp, "/introspect", {"token": token, **extra})


def make_resource_server(app: Flask, rp: RelyingParty) -> None:
    with app.app_context():
        row = get_client(rp.client_id)
        assert row is not None
        row.resource_server = True
        db.session.commit()


# -- revocation ---------------------------------------------------------------------------


@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token", "bogus_hint"])
def test_revoking_an_access_token_ends_it(
    app: Flask,
    offline_rp: RelyingParty,
    login: CapturingLogin,
    resident_id: str,
    hint: str | None,
) -> None:
    body = offline_login(app, offline_rp, login, resident_id)
    extra = {"token_type_hint": hint} if hint else {}
    response = revoke(offline_rp, body["access_token"], **extra)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_json() == {}
    assert error_of(offline_rp.userinfo(body["access_token"]), 401) == "invalid_token"
    # revoking an access token leaves the refresh token usable
    assert refresh(offline_rp, body["refresh_token"]).status_code == 200


@pytest.mark.parametrize("hint", [None, "refresh_token", "access_token"])
def test_revoking_a_refresh_token_revokes_its_grant(
    app: Flask,
    offline_rp: RelyingParty,
    login: CapturingLogin,
    resident_id: str,
    hint: str | None,
) -> None:
    body = offline_login(app, offline_rp, login, resident_id)
    extra = {"token_type_hint": hint} if hint else {}
    assert revoke(offline_rp, body["refresh_token"], **extra).status_code == 200
    assert error_of(refresh(offline_rp, body["refresh_token"]), 400) == "invalid_grant"
    assert error_of(offline_rp.userinfo(body["access_token"]), 401) == "invalid_token"


def test_unknown_and_already_revoked_tokens_are_200(
    app: Flask, offline_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    assert revoke(offline_rp, "no-such-token").status_code == 200
    body = offline_login(app, offline_rp, login, resident_id)
    assert revoke(offline_rp, body["access_token"]).status_code == 200
    assert revoke(offline_rp, body["access_token"]).status_code == 200


def test_another_clients_token_is_refused_and_kept(
    app: Flask, offline_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    other = RelyingParty(app, scopes=ALL_ITEMS, name="別のサービス")
    body = offline_login(app, offline_rp, login, resident_id)
    assert error_of(revoke(other, body["access_token"]), 400) == "invalid_request"
    assert offline_rp.userinfo(body["access_token"]).status_code == 200
    # a refresh token is looked up per client: another client's is simply not found
    assert revoke(other, body["refresh_token"]).status_code == 200
    assert refresh(offline_rp, body["refresh_token"]).status_code == 200


def test_revocation_needs_a_token_and_client_authentication(offline_rp: RelyingParty) -> None:
    response = post_authenticated(offline_rp, "/revoke", {})
    assert error_of(response, 400) == "invalid_request"
    response = post_authenticated(offline_rp, "/revoke", {"token": "x"}, authenticate=False)
    assert error_of(response, 401) == "invalid_client"


def test_assertion_may_name_the_revocation_endpoint(
    app: Flask, offline_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    body = offline_login(app, offline_rp, login, resident_id)
    form = {
        "token": body["access_token"],
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": offline_rp.assertion(aud=ISSUER + "/revoke"),
    }
    assert offline_rp.http.post("/revoke", data=form).status_code == 200
    form["client_assertion"] = offline_rp.assertion(aud=ISSUER + "/userinfo")
    assert error_of(offline_rp.http.post("/revoke", data=form), 401) == "invalid_client"


def test_public_clients_revoke_their_own_tokens(
    app: Flask, login: CapturingLogin, resident_id: str
) -> None:
    rp = RelyingParty(app, auth_method="none", scopes=ALL_ITEMS)
    body = offline_login(app, rp, login, resident_id)
    assert revoke(rp, body["refresh_token"]).status_code == 200
    assert error_of(refresh(rp, body["refresh_token"])) == "invalid_grant"


def test_client_secret_basic_clients_revoke(
    app: Flask, login: CapturingLogin, resident_id: str
) -> None:
    rp = RelyingParty(app, auth_method="client_secret_basic", scopes=ALL_ITEMS)
    body = offline_login(app, rp, login, resident_id)
    assert revoke(rp, body["access_token"]).status_code == 200
    assert error_of(rp.userinfo(body["access_token"]), 401) == "invalid_token"


# -- introspection ------------------------------------------------------------------------


def test_introspecting_an_own_access_token(
    app: Flask, offline_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    body = offline_login(app, offline_rp, login, resident_id)
    response = introspect(offline_rp, body["access_token"])
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    data = response.get_json()
    sub = offline_rp.userinfo(body["access_token"]).get_json()["sub"]
    assert data["active"] is True
    assert data["scope"] == "openid name offline_access"
    assert data["client_id"] == offline_rp.client_id
    assert data["sub"] == sub
    assert data["iss"] == ISSUER
    assert data["token_type"] == "Bearer"
    assert data["exp"] - data["iat"] == 600
    assert "cnf" not in data


def test_introspecting_an_own_refresh_token_does_not_spend_it(
    app: Flask, offline_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    body = offline_login(app, offline_rp, login, resident_id)
    data = introspect(offline_rp, body["refresh_token"], token_type_hint="refresh_token")
    assert data.get_json()["active"] is True
    assert data.get_json()["client_id"] == offline_rp.client_id
    assert refresh(offline_rp, body["refresh_token"]).status_code == 200
    assert introspect(offline_rp, body["refresh_token"]).get_json() == {"active": False}


def test_inactive_tokens_reveal_nothing(
    app: Flask, offline_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    assert introspect(offline_rp, "no-such-token").get_json() == {"active": False}
    body = offline_login(app, offline_rp, login, resident_id)
    revoke(offline_rp, body["refresh_token"])  # revokes the grant: the access token too
    assert introspect(offline_rp, body["access_token"]).get_json() == {"active": False}


def test_other_clients_see_inactive_unless_resource_servers(
    app: Flask, offline_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    body = offline_login(app, offline_rp, login, resident_id)
    api = RelyingParty(app, name="加賀市 API", redirect_uri="https://api.example.jp/cb")
    assert introspect(api, body["access_token"]).get_json() == {"active": False}
    make_resource_server(app, api)
    data = introspect(api, body["access_token"]).get_json()
    assert data["active"] is True and data["client_id"] == offline_rp.client_id
    # never another client's refresh token
    assert introspect(api, body["refresh_token"]).get_json() == {"active": False}


def test_introspection_is_for_authenticated_confidential_clients(
    app: Flask, login: CapturingLogin, resident_id: str
) -> None:
    public = RelyingParty(app, auth_method="none", scopes=ALL_ITEMS)
    body = offline_login(app, public, login, resident_id)
    assert error_of(introspect(public, body["access_token"]), 401) == "invalid_client"
    confidential = RelyingParty(app, name="別のサービス")
    response = post_authenticated(confidential, "/introspect", {"token": "x"}, authenticate=False)
    assert error_of(response, 401) == "invalid_client"
    assert error_of(post_authenticated(confidential, "/introspect", {}), 400) == "invalid_request"
