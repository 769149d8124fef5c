"""Pushed authorization requests (RFC 9126): /par, single-use short-lived request_uri, the
per-client "PAR required" flag."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlencode

import pytest
from flask import Flask
from protocol_support import (
    auth_parts,
    authorize_pushed,
    code_of,
    error_of,
    error_page_code,
    push,
    request_object,
    set_client,
)
from provider_support import (
    CapturingLogin,
    RelyingParty,
    callback_params,
    enroll_test_resident,
    install_capturing_login,
)

PREFIX = "urn:ietf:params:oauth:request_uri:"


def pushed_uri(rp: RelyingParty, **overrides: str | None) -> tuple[str, str]:
    """Push a fresh authorization request: (request_uri, code_verifier)."""
    request = rp.authorization_request(**overrides)
    response = push(rp, request.params)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["request_uri"], request.verifier


def test_push_then_authorize_then_redeem(
    rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    request = rp.authorization_request(scope="openid name")
    response = push(rp, request.params)
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["request_uri"].startswith(PREFIX)
    assert body["expires_in"] == 60

    # parameters outside the pushed request are ignored
    started = authorize_pushed(rp, body["request_uri"], scope="openid address gender")
    assert started.status_code == 200, started.get_data(as_text=True)
    ctx = login.last
    assert ctx.scopes == ("openid", "name")
    assert ctx.state == request.state
    code = code_of(rp.finish(ctx, resident_id))
    assert rp.token_request(code, request.verifier).status_code == 200


def test_request_uri_is_single_use(rp: RelyingParty, login: CapturingLogin) -> None:
    uri, _ = pushed_uri(rp)
    assert authorize_pushed(rp, uri).status_code == 200
    assert error_page_code(authorize_pushed(rp, uri)) == "invalid_request_uri"


def test_request_uri_expires(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(PAR_TTL=1)
    install_capturing_login(app)
    rp = RelyingParty(app)
    uri, _ = pushed_uri(rp)
    time.sleep(1.3)
    assert error_page_code(authorize_pushed(rp, uri)) == "invalid_request_uri"


def test_unknown_and_foreign_request_uris(
    app: Flask, rp: RelyingParty, login: CapturingLogin
) -> None:
    assert error_page_code(authorize_pushed(rp, PREFIX + "nope")) == "invalid_request_uri"
    assert error_page_code(authorize_pushed(rp, PREFIX + "x" * 500)) == "invalid_request_uri"
    other = RelyingParty(app, name="別のサービス", redirect_uri="https://other.example.jp/cb")
    uri, _ = pushed_uri(rp)
    assert error_page_code(authorize_pushed(other, uri)) == "invalid_request_uri"


def test_errors_with_a_registered_redirect_uri_in_the_query_are_redirected(
    rp: RelyingParty, login: CapturingLogin
) -> None:
    response = authorize_pushed(
        rp, PREFIX + "nope", redirect_uri=rp.redirect_uri, state="query-state"
    )
    assert response.status_code == 302
    params = callback_params(response.headers["Location"])
    assert params["error"] == ["invalid_request_uri"]
    assert params["state"] == ["query-state"]
    assert params["iss"] == ["http://localhost"]


def test_request_uri_of_another_kind_is_not_supported(
    rp: RelyingParty, login: CapturingLogin
) -> None:
    response = authorize_pushed(rp, "https://rp.example.jp/request.jwt")
    assert error_page_code(response) == "request_uri_not_supported"


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"state": None}, "invalid_request"),
        ({"nonce": None}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"redirect_uri": "https://evil.example/cb"}, "invalid_request"),
        ({"scope": "name"}, "invalid_scope"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"request_uri": PREFIX + "abc"}, "invalid_request"),
        ({"client_id": "someone-else"}, "invalid_request"),
        ({"claims": "not json"}, "invalid_request"),
        ({"prompt": "bogus"}, "invalid_request"),
    ],
)
def test_pushed_requests_are_validated_and_errors_are_json(
    rp: RelyingParty, overrides: dict[str, str | None], error: str
) -> None:
    response = push(rp, rp.authorization_request(**overrides).params)
    assert error_of(response, 400) == error
    assert "Location" not in response.headers


def test_repeated_parameters_are_refused(rp: RelyingParty) -> None:
    form, headers = auth_parts(rp)
    body = urlencode(
        [*rp.authorization_request().params.items(), ("scope", "openid"), *form.items()]
    )
    response = rp.http.post(
        "/par", data=body, content_type="application/x-www-form-urlencoded", headers=headers
    )
    assert error_of(response, 400) == "invalid_request"


def test_pushing_needs_client_authentication(app: Flask, rp: RelyingParty) -> None:
    response = push(rp, rp.authorization_request().params, authenticate=False)
    assert error_of(response, 401) == "invalid_client"
    public = RelyingParty(app, auth_method="none", name="公開クライアント")
    response = push(public, public.authorization_request().params)
    assert response.status_code == 201


def test_a_client_that_requires_par_cannot_send_plain_requests(
    app: Flask, rp: RelyingParty, login: CapturingLogin
) -> None:
    set_client(app, rp, require_pushed_authorization_requests=True)
    request = rp.authorization_request()
    response = rp.authorize(request)
    assert response.status_code == 302
    params = callback_params(response.headers["Location"])
    assert params["error"] == ["invalid_request"]
    assert params["state"] == [request.state]
    signed = rp.authorization_request(request=request_object(rp, rp.authorization_request().params))
    assert callback_params(rp.authorize(signed).headers["Location"])["error"] == ["invalid_request"]
    uri, _ = pushed_uri(rp)
    assert authorize_pushed(rp, uri).status_code == 200


def test_a_signed_request_object_may_be_pushed(
    rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    inner = rp.authorization_request(scope="openid gender")
    response = push(rp, {"request": request_object(rp, inner.params)})
    assert response.status_code == 201, response.get_json()
    assert authorize_pushed(rp, response.get_json()["request_uri"]).status_code == 200
    assert login.last.scopes == ("openid", "gender")
    code = code_of(rp.finish(login.last, resident_id))
    assert rp.token_request(code, inner.verifier).status_code == 200


def test_discovery_names_the_par_endpoint(rp: RelyingParty) -> None:
    metadata = rp.http.get("/.well-known/openid-configuration").get_json()
    assert metadata["pushed_authorization_request_endpoint"] == "http://localhost/par"
    assert metadata["require_pushed_authorization_requests"] is False
    assert metadata["request_uri_parameter_supported"] is False


def test_the_resident_completes_after_par_in_a_fresh_app(
    app_factory: Callable[..., Flask],
) -> None:
    """A request pushed to one instance is authorized on another (state lives in Redis)."""
    first = app_factory()
    second = app_factory(REDIS_PREFIX=first.config["REDIS_PREFIX"])
    install_capturing_login(second)
    rp = RelyingParty(first)
    with first.app_context():
        enroll_test_resident()
    uri, _ = pushed_uri(rp)
    response = second.test_client().get(
        "/authorize?" + f"client_id={rp.client_id}&request_uri={uri}"
    )
    assert response.status_code == 200, response.get_data(as_text=True)
