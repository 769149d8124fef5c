"""Arbitrary input to the endpoints never produces a 500 or an unhandled exception.

The app runs with ``TESTING`` (exceptions propagate), so an unhandled exception fails the test
even where a 500 page would hide it. Covered: every route of the ``oidc``, ``logout`` and
``sign_api`` blueprints with malformed form bodies, JSON bodies, raw bytes under any
``Content-Type``, and fuzzed ``Authorization`` / ``DPoP`` headers; JWTs with bad headers,
bad base64, wrong or confused algorithms, huge sizes, and validly signed JWTs (by the client's
registered key, or a fresh key in a DPoP proof) whose claims have the wrong types.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc.jwk import ECKey
from provider_support import ISSUER, CapturingLogin, RelyingParty

from idp.oidc.request_checks import _SINGLE as AUTHORIZE_PARAMETERS

#: The authorization request parameters come from the provider's own list (each may appear
#: once); then the token endpoint's.
NAMES = [
    *AUTHORIZE_PARAMETERS,
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


# == every route, every body shape ============================================================

FUZZED_BLUEPRINTS = ("oidc", "logout", "sign_api")
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False),
        st.text(max_size=40),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
claim_values = st.one_of(
    json_values, st.sampled_from([ISSUER, ISSUER + "/token", "diff", 0, -1, 2**63, "9" * 30])
)


def routes(app: Flask) -> list[tuple[str, str]]:
    """(method, path) of every fuzzed route, path variables filled in."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] not in FUZZED_BLUEPRINTS:
            continue
        path = re.sub(r"<[^>]+>", "fuzz", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, path))
    return found


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(header: Any, claims: Any, signature: str) -> str:
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(claims).encode())
    return f"{head}.{body}.{signature}"


jwt_headers = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.one_of(
            st.sampled_from(
                ["none", "None", "HS256", "RS256", "ES256", "PS256", "EdDSA", "ES512", "RSA-OAEP"]
            ),
            json_values,
        ),
        "typ": st.one_of(st.sampled_from(["JWT", "dpop+jwt", "oauth-authz-req+jwt"]), json_values),
        "kid": st.one_of(st.sampled_from(["rp-key-1", "", "../../etc"]), json_values),
        "jwk": st.one_of(
            json_values,
            st.just({"kty": "oct", "k": "c2VjcmV0"}),
            st.just({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}),
            st.just({"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
        ),
        "crit": json_values,
        "b64": st.booleans(),
        "x5c": json_values,
        "jku": st.sampled_from(["https://evil.example/jwks", "file:///etc/passwd"]),
    },
)
jwt_claims = st.dictionaries(
    st.sampled_from(
        [
            *("iss", "sub", "aud", "exp", "iat", "nbf", "jti", "htm", "htu", "ath", "nonce"),
            *("cnf", "client_id", "redirect_uri", "scope", "response_type", "code_challenge"),
        ]
    ),
    claim_values,
    max_size=10,
)
bad_jwts = st.one_of(
    st.builds(compact, jwt_headers, jwt_claims, st.text(alphabet=B64URL, max_size=90)),
    # bad base64: padding, non-alphabet characters, too few or too many parts
    st.builds(
        lambda a, b, c: f"{a}.{b}.{c}",
        st.text(alphabet=B64URL + "=+/ !.", max_size=60),
        st.text(alphabet=B64URL + "=+/ ", max_size=60),
        st.text(alphabet=B64URL + "=", max_size=60),
    ),
    st.text(alphabet=B64URL + ".", max_size=120),
    # huge: a header of 40 kB
    st.builds(lambda n: compact({"alg": "ES256", "kid": "k" * n}, {}, "AA"), st.just(40_000)),
)


def signed_by(key: ECKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A JWT validly signed by ``key`` (ES256) with any header fields and claims."""
    protected = {**header, "alg": "ES256"}
    head = b64url(json.dumps(protected).encode())
    body = b64url(json.dumps(claims).encode())
    signature = key.private_key.sign(f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(signature)
    return f"{head}.{body}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


content_types = st.one_of(
    st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=latin-1",
            "application/json",
            "multipart/form-data",
            "multipart/form-data; boundary=x",
            "text/plain",
            "application/jwt",
            "",
        ]
    ),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
)
authorization_headers = st.one_of(
    st.none(),
    st.builds(lambda raw: "Basic " + base64.b64encode(raw).decode(), st.binary(max_size=60)),
    st.builds(lambda t: "Basic " + t, st.text(alphabet=B64URL + "=:", max_size=60)),
    st.builds(lambda t: "Bearer " + t, st.text(alphabet=B64URL + ". ", max_size=80)),
    st.builds(lambda t: "DPoP " + t, st.text(alphabet=B64URL + ".", max_size=80)),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80),
)
bodies = st.one_of(
    st.builds(
        lambda pairs: ("form", urlencode(pairs).encode()),
        st.lists(st.tuples(st.sampled_from(FUZZ_NAMES), st.one_of(values, bad_jwts)), max_size=8),
    ),
    st.builds(lambda doc: ("json", json.dumps(doc).encode()), json_values),
    st.builds(lambda raw: ("raw", raw), st.binary(max_size=300)),
)
printable = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.data(),
    body=bodies,
    content_type=content_types,
    authorization=authorization_headers,
    dpop=st.one_of(st.none(), bad_jwts),
    query=st.lists(st.tuples(st.sampled_from(FUZZ_NAMES), values), max_size=5),
)
def test_every_route_never_500(
    app: Flask,
    rp: RelyingParty,
    data: st.DataObject,
    body: tuple[str, bytes],
    content_type: str,
    authorization: str | None,
    dpop: str | None,
    query: list[tuple[str, str]],
) -> None:
    method, path = data.draw(st.sampled_from(routes(app)))
    headers = {"Content-Type": content_type}
    if authorization is not None:
        headers["Authorization"] = authorization
    if dpop is not None:
        headers["DPoP"] = dpop
    response = rp.http.open(
        path + ("?" + urlencode(query) if query else ""),
        method=method,
        data=body[1] if method != "GET" else None,
        headers=headers,
    )
    assert response.status_code < 500, (method, path, response.get_data(as_text=True)[:500])


@FUZZ
@given(header=jwt_headers, claims=jwt_claims, where=st.sampled_from(["assertion", "request"]))
def test_validly_signed_jwts_with_wrong_claims_never_500(
    rp: RelyingParty,
    login: CapturingLogin,
    header: dict[str, Any],
    claims: dict[str, Any],
    where: str,
) -> None:
    """Signed by the client's registered key, so the claims checks themselves are reached."""
    token = signed_by(rp.key, {**header, "kid": rp.key.kid}, claims)
    if where == "assertion":
        form = {
            "grant_type": "authorization_code",
            "code": "x",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": token,
        }
        for path in ("/token", "/par", "/revoke", "/introspect"):
            response = rp.http.post(path, data=form)
            assert response.status_code < 500, (path, response.get_data(as_text=True)[:500])
            assert "error" in response.get_json()
    else:
        query = {"client_id": rp.client_id, "request": token}
        response = rp.http.get("/authorize?" + urlencode(query))
        assert response.status_code < 500, response.get_data(as_text=True)[:500]


@FUZZ
@given(header=jwt_headers, claims=jwt_claims, scheme=st.sampled_from(["Bearer", "DPoP"]))
def test_validly_signed_dpop_proofs_with_wrong_claims_never_500(
    rp: RelyingParty, header: dict[str, Any], claims: dict[str, Any], scheme: str
) -> None:
    """A proof signed by the key in its own ``jwk`` header, with any claims."""
    key = ECKey.generate_key("P-256", private=True)
    proof = signed_by(key, {**header, "typ": "dpop+jwt", "jwk": key.as_dict(private=False)}, claims)
    response = rp.http.post(
        "/token", data={"grant_type": "authorization_code", "code": "x"}, headers={"DPoP": proof}
    )
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    response = rp.http.get("/userinfo", headers={"DPoP": proof, "Authorization": f"{scheme} token"})
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
