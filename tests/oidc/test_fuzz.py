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


JWTISH = st.one_of(
    st.text(max_size=200),
    st.builds(
        lambda a, b, c: f"{a}.{b}.{c}",
        st.text(
            alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=80
        ),
        st.text(
            alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=80
        ),
        st.text(max_size=40),
    ),
    st.sampled_from(
        [
            "eyJhbGciOiJub25lIn0.e30.",
            "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2In0.e30.sig",
            "e30.e30.e30",
        ]
    ),
)
FUZZ_NAMES = [
    *NAMES,
    "request_uri",
    "claims",
    "dpop_jkt",
    "token",
    "token_type_hint",
    "refresh_token",
]
fuzz_params = st.lists(
    st.tuples(st.sampled_from(FUZZ_NAMES), st.one_of(values, JWTISH)), max_size=10
)


@FUZZ
@given(
    params=fuzz_params,
    dpop=st.one_of(st.none(), JWTISH),
    scheme=st.sampled_from(["Bearer", "DPoP"]),
)
def test_protocol_endpoints_never_500(
    rp: RelyingParty,
    login: CapturingLogin,
    params: list[tuple[str, str]],
    dpop: str | None,
    scheme: str,
) -> None:
    headers = {"DPoP": dpop} if dpop and dpop.isascii() and dpop.isprintable() else {}
    body = urlencode(params)
    for path in ("/par", "/token", "/revoke", "/introspect"):
        response = rp.http.post(
            path, data=body, content_type="application/x-www-form-urlencoded", headers=headers
        )
        assert response.status_code < 500, (path, response.get_data(as_text=True)[:500])
        assert "error" in response.get_json()
    token = next((v for k, v in params if k == "token" and v.isascii() and v.isprintable()), "x")
    response = rp.http.get("/userinfo", headers={**headers, "Authorization": f"{scheme} {token}"})
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    query = urlencode([("client_id", rp.client_id), *params])
    assert rp.http.get("/authorize?" + query).status_code < 500
