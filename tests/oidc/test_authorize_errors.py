"""The authorization endpoint: every bad request gets its exact error, state and iss.

Errors go to the registered redirect URI (with ``iss``, RFC 9207); when the client is unknown
or the redirect URI is not registered, the resident sees an error page and nothing redirects.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from flask import Flask
from provider_support import ISSUER, CapturingLogin, RelyingParty, callback_params


def redirected_error(response: object, rp: RelyingParty) -> dict[str, list[str]]:
    assert response.status_code == 302  # type: ignore[attr-defined]
    location = response.headers["Location"]  # type: ignore[attr-defined]
    assert location.startswith(rp.redirect_uri + "?")
    params = callback_params(location)
    assert params["iss"] == [ISSUER]
    assert "code" not in params
    return params


def error_page(response: object) -> str:
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert "Location" not in response.headers  # type: ignore[attr-defined]
    assert response.mimetype == "text/html"  # type: ignore[attr-defined]
    text = response.get_data(as_text=True)  # type: ignore[attr-defined]
    return text


def test_missing_pkce_is_invalid_request(rp: RelyingParty, login: CapturingLogin) -> None:
    request = rp.authorization_request(code_challenge=None, code_challenge_method=None)
    params = redirected_error(rp.authorize(request), rp)
    assert params["error"] == ["invalid_request"]
    assert params["state"] == [request.state]
    assert login.contexts == []


def test_plain_pkce_is_invalid_request(rp: RelyingParty, login: CapturingLogin) -> None:
    request = rp.authorization_request(code_challenge_method="plain")
    params = redirected_error(rp.authorize(request), rp)
    assert params["error"] == ["invalid_request"]
    assert params["state"] == [request.state]
    assert "S256" in params["error_description"][0]


def test_pkce_without_method_is_refused_not_taken_as_plain(
    rp: RelyingParty, login: CapturingLogin
) -> None:
    request = rp.authorization_request(code_challenge_method=None)
    params = redirected_error(rp.authorize(request), rp)
    assert params["error"] == ["invalid_request"]
    assert params["state"] == [request.state]


def test_malformed_code_challenge_is_invalid_request(
    rp: RelyingParty, login: CapturingLogin
) -> None:
    request = rp.authorization_request(code_challenge="short")
    params = redirected_error(rp.authorize(request), rp)
    assert params["error"] == ["invalid_request"]
    assert params["state"] == [request.state]


def test_pkce_required_for_confidential_clients_too(app: Flask, login: CapturingLogin) -> None:
    rp = RelyingParty(app, auth_method="client_secret_basic")
    request = rp.authorization_request(code_challenge=None, code_challenge_method=None)
    params = redirected_error(rp.authorize(request), rp)
    assert params["error"] == ["invalid_request"]


def test_unknown_client_gets_a_page_not_a_redirect(rp: RelyingParty, login: CapturingLogin) -> None:
    request = rp.authorization_request(client_id="no-such-client")
    page = error_page(rp.authorize(request))
    assert 'id="error-code">invalid_client<' in page
    assert rp.redirect_uri not in page


def test_unregistered_redirect_uri_gets_a_page_not_a_redirect(
    rp: RelyingParty, login: CapturingLogin
) -> None:
    request = rp.authorization_request(redirect_uri="https://attacker.example/callback")
    page = error_page(rp.authorize(request))
    assert 'id="error-code">invalid_request<' in page
    assert "attacker.example" not in page


def test_redirect_uri_must_match_exactly(rp: RelyingParty, login: CapturingLogin) -> None:
    request = rp.authorization_request(redirect_uri=rp.redirect_uri + "/")
    error_page(rp.authorize(request))
    request = rp.authorization_request(redirect_uri=rp.redirect_uri + "?x=1")
    error_page(rp.authorize(request))


def test_missing_redirect_uri_gets_a_page(rp: RelyingParty, login: CapturingLogin) -> None:
    request = rp.authorization_request(redirect_uri=None)
    page = error_page(rp.authorize(request))
    assert 'id="error-code">invalid_request<' in page


def test_missing_state_is_invalid_request(rp: RelyingParty, login: CapturingLogin) -> None:
    request = rp.authorization_request(state=None)
    params = redirected_error(rp.authorize(request), rp)
    assert params["error"] == ["invalid_request"]
    assert "state" not in params


@pytest.mark.parametrize("state", ["x" * 256, "caf\u00e9", "tab\there"])
def test_invalid_state_is_refused_and_not_echoed(
    rp: RelyingParty, login: CapturingLogin, state: str
) -> None:
    request = rp.authorization_request(state=state)
    params = redirected_error(rp.authorize(request), rp)
    assert params["error"] == ["invalid_request"]
    assert "state" not in params


def test_longest_valid_state_is_accepted(rp: RelyingParty, login: CapturingLogin) -> None:
    state = "".join(chr(c) for c in range(0x20, 0x7F)) + "s" * (255 - 95)
    response = rp.authorize(rp.authorization_request(state=state))
    assert response.status_code == 200
    assert login.last.state == state


def test_missing_nonce_is_invalid_request(rp: RelyingParty, login: CapturingLogin) -> None:
    request = rp.authorization_request(nonce=None)
    params = redirected_error(rp.authorize(request), rp)
    assert params["error"] == ["invalid_request"]
    assert params["state"] == [request.state]
    assert "nonce" in params["error_description"][0]


def test_scope_without_openid_is_invalid_scope(rp: RelyingParty, login: CapturingLogin) -> None:
    request = rp.authorization_request(scope="name address")
    params = redirected_error(rp.authorize(request), rp)
    assert params["error"] == ["invalid_scope"]
    assert params["state"] == [request.state]


def test_scope_the_client_may_not_ask_for_is_invalid_scope(
    app: Flask, login: CapturingLogin
) -> None:
    rp = RelyingParty(app, scopes=("name",))
    request = rp.authorization_request(scope="openid name address")
    params = redirected_error(rp.authorize(request), rp)
    assert params["error"] == ["invalid_scope"]
    assert params["state"] == [request.state]


def test_unknown_scopes_are_ignored(rp: RelyingParty, login: CapturingLogin) -> None:
    response = rp.authorize(rp.authorization_request(scope="openid profile email birthdate"))
    assert response.status_code == 200
    assert login.last.scopes == ("openid", "birthdate")


def test_token_response_type_is_unsupported(rp: RelyingParty, login: CapturingLogin) -> None:
    request = rp.authorization_request(response_type="token")
    params = redirected_error(rp.authorize(request), rp)
    assert params["error"] == ["unsupported_response_type"]
    assert params["state"] == [request.state]


def test_prompt_none_is_login_required(rp: RelyingParty, login: CapturingLogin) -> None:
    request = rp.authorization_request(prompt="none")
    params = redirected_error(rp.authorize(request), rp)
    assert params["error"] == ["login_required"]
    assert params["state"] == [request.state]


def test_prompt_none_with_others_is_invalid_request(
    rp: RelyingParty, login: CapturingLogin
) -> None:
    request = rp.authorization_request(prompt="none login")
    params = redirected_error(rp.authorize(request), rp)
    assert params["error"] == ["invalid_request"]


@pytest.mark.parametrize(
    ("parameter", "error"),
    [
        ("request", "invalid_request_object"),
        ("request_uri", "request_uri_not_supported"),
        ("registration", "registration_not_supported"),
    ],
)
def test_unsigned_request_objects_and_foreign_request_uris_are_refused(
    rp: RelyingParty, login: CapturingLogin, parameter: str, error: str
) -> None:
    request = rp.authorization_request(**{parameter: "eyJhbGciOiJub25lIn0.e30."})
    params = redirected_error(rp.authorize(request), rp)
    assert params["error"] == [error]
    assert params["state"] == [request.state]


def test_fragment_response_mode_is_invalid_request(rp: RelyingParty, login: CapturingLogin) -> None:
    request = rp.authorization_request(response_mode="fragment")
    params = redirected_error(rp.authorize(request), rp)
    assert params["error"] == ["invalid_request"]


def test_repeated_parameter_is_invalid_request(rp: RelyingParty, login: CapturingLogin) -> None:
    request = rp.authorization_request()
    query = urlencode(request.params) + "&nonce=second"
    params = redirected_error(rp.http.get("/authorize?" + query), rp)
    assert params["error"] == ["invalid_request"]
    assert params["state"] == [request.state]


def test_non_numeric_max_age_is_invalid_request(rp: RelyingParty, login: CapturingLogin) -> None:
    request = rp.authorization_request(max_age="soon")
    params = redirected_error(rp.authorize(request), rp)
    assert params["error"] == ["invalid_request"]


def test_valid_request_reaches_the_login_with_every_parameter(
    rp: RelyingParty, login: CapturingLogin
) -> None:
    request = rp.authorization_request(
        prompt="login consent",
        max_age="300",
        login_hint="yamada",
        acr_values="urn:myna-idp:acr:jpki-card-pin",
        ui_locales="en ja",
        scope="openid gender name",
    )
    response = rp.authorize(request)
    assert response.status_code == 200
    ctx = login.last
    assert ctx.client_id == rp.client_id
    assert ctx.client_name == "加賀市 電子申請"
    assert ctx.redirect_uri == rp.redirect_uri
    assert ctx.scopes == ("openid", "gender", "name")
    assert ctx.requested_items == ("gender", "name")
    assert ctx.state == request.state
    assert ctx.nonce == request.params["nonce"]
    assert ctx.code_challenge == request.params["code_challenge"]
    assert ctx.code_challenge_method == "S256"
    assert ctx.prompt == ("login", "consent")
    assert ctx.max_age == 300
    assert ctx.login_hint == "yamada"
    assert ctx.acr_values == ("urn:myna-idp:acr:jpki-card-pin",)
    assert ctx.ui_locales == ("en", "ja")


def test_post_authorization_request_is_accepted(rp: RelyingParty, login: CapturingLogin) -> None:
    request = rp.authorization_request()
    response = rp.http.post("/authorize", data=request.params)
    assert response.status_code == 200
    assert login.last.state == request.state


def test_without_a_login_starter_the_page_says_unavailable(app: Flask, rp: RelyingParty) -> None:
    app.extensions.pop("myna.login_starter", None)
    response = rp.authorize(rp.authorization_request())
    assert response.status_code == 503
    assert "Location" not in response.headers
    assert 'id="error-code">temporarily_unavailable<' in response.get_data(as_text=True)
