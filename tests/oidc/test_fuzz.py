"""Arbitrary input to the endpoints never produces a 500."""

from __future__ import annotations

from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from provider_support import CapturingLogin, RelyingParty

NAMES = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
    "acr_values",
    "ui_locales",
    "response_mode",
    "request",
    "grant_type",
    "code",
    "code_verifier",
    "client_assertion",
    "client_assertion_type",
    "client_secret",
]
values = st.one_of(
    st.text(max_size=300),
    st.sampled_from(["code", "S256", "plain", "openid name", "none", "-1", "", "%00", "\x00"]),
)
params = st.lists(st.tuples(st.sampled_from(NAMES), values), max_size=12)
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(params=params, keep_valid=st.booleans())
def test_authorize_never_500(
    rp: RelyingParty, login: CapturingLogin, params: list[tuple[str, str]], keep_valid: bool
) -> None:
    base = list(rp.authorization_request().params.items()) if keep_valid else []
    query = urlencode(base + params)
    for response in (
        rp.http.get("/authorize?" + query),
        rp.http.post("/authorize", data=query, content_type="application/x-www-form-urlencoded"),
    ):
        assert response.status_code < 500, response.get_data(as_text=True)[:500]


@FUZZ
@given(params=params, header=st.one_of(st.none(), st.text(max_size=200)))
def test_token_and_userinfo_never_500(
    rp: RelyingParty, params: list[tuple[str, str]], header: str | None
) -> None:
    headers = (
        {"Authorization": header} if header and header.isascii() and header.isprintable() else {}
    )
    response = rp.http.post(
        "/token",
        data=urlencode([("grant_type", "authorization_code"), *params]),
        content_type="application/x-www-form-urlencoded",
        headers=headers,
    )
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    assert "error" in response.get_json()
    response = rp.http.get("/userinfo", headers=headers)
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
