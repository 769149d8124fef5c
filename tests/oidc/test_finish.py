"""The seam: AuthorizationContext, finish_authorization and deny_authorization."""

from __future__ import annotations

import time

import pytest
from flask import Flask
from provider_support import ISSUER, CapturingLogin, RelyingParty, callback_params

from idp.oidc.authorize import AuthorizationContext, deny_authorization
from idp.storage.audit import list_releases
from idp.storage.base import db
from idp.storage.clients import get_client


def started(rp: RelyingParty, login: CapturingLogin, **params: str) -> AuthorizationContext:
    response = rp.authorize(rp.authorization_request(**params))
    assert response.status_code == 200
    return login.last


def test_context_round_trips_through_a_dict(rp: RelyingParty, login: CapturingLogin) -> None:
    ctx = started(rp, login, prompt="login", max_age="60", ui_locales="en")
    data = ctx.to_dict()
    assert data["scopes"] == list(ctx.scopes)
    assert AuthorizationContext.from_dict(data) == ctx


@pytest.mark.parametrize(
    "damage",
    [
        {"scopes": "openid"},
        {"state": 7},
        {"max_age": "60"},
        {"max_age": True},
        {"login_hint": ["a"]},
    ],
)
def test_malformed_context_data_is_a_value_error(
    rp: RelyingParty, login: CapturingLogin, damage: dict[str, object]
) -> None:
    data = started(rp, login).to_dict()
    data.update(damage)
    with pytest.raises(ValueError, match="malformed"):
        AuthorizationContext.from_dict(data)


def test_context_without_a_field_is_a_value_error(rp: RelyingParty, login: CapturingLogin) -> None:
    data = started(rp, login).to_dict()
    del data["nonce"]
    with pytest.raises(ValueError, match="malformed"):
        AuthorizationContext.from_dict(data)


def test_finish_redirects_with_code_state_and_iss_and_records_the_release(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    ctx = started(rp, login)
    response = rp.finish(ctx, resident_id, granted=("name", "gender"))
    assert response.status_code == 302
    assert response.headers["Cache-Control"] == "no-store"
    params = callback_params(response.headers["Location"])
    assert set(params) == {"code", "state", "iss"}
    assert params["state"] == [ctx.state]
    assert params["iss"] == [ISSUER]
    with app.app_context():
        (release,) = list_releases(resident_id)
        assert release.client_id == rp.client_id
        assert release.items == ["name", "gender"]
        assert release.request_id == ctx.request_id


def test_finish_refuses_scopes_that_were_not_requested(
    rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    ctx = started(rp, login, scope="openid name")
    with pytest.raises(ValueError, match="not requested"):
        rp.finish(ctx, resident_id, granted=("name", "address"))


def test_finish_with_an_authentication_older_than_max_age_is_login_required(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    ctx = started(rp, login, max_age="60")
    response = rp.finish(ctx, resident_id, auth_time=int(time.time()) - 3600)
    params = callback_params(response.headers["Location"])
    assert params["error"] == ["login_required"]
    assert params["state"] == [ctx.state]
    with app.app_context():
        assert list_releases(resident_id) == []


def test_finish_after_the_client_removed_the_redirect_uri_shows_a_page(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    ctx = started(rp, login)
    with app.app_context():
        client = get_client(rp.client_id)
        assert client is not None
        client.redirect_uris = ["https://rp.example.jp/new-callback"]
        db.session.commit()
    response = rp.finish(ctx, resident_id)
    assert response.status_code == 400
    assert "Location" not in response.headers


@pytest.mark.parametrize("error", ["access_denied", "consent_required", "temporarily_unavailable"])
def test_deny_redirects_with_error_state_and_iss(
    app: Flask, rp: RelyingParty, login: CapturingLogin, error: str
) -> None:
    ctx = started(rp, login)
    with app.test_request_context():
        response = deny_authorization(ctx, error, "The resident cancelled.")
    params = callback_params(response.headers["Location"])
    assert params["error"] == [error]
    assert params["error_description"] == ["The resident cancelled."]
    assert params["state"] == [ctx.state]
    assert params["iss"] == [ISSUER]


def test_deny_refuses_codes_that_are_not_for_the_login_to_send(
    app: Flask, rp: RelyingParty, login: CapturingLogin
) -> None:
    ctx = started(rp, login)
    with app.test_request_context(), pytest.raises(ValueError, match="invalid_grant"):
        deny_authorization(ctx, "invalid_grant")
