"""Helpers for the protocol-depth tests (refresh, revocation, introspection, PAR, JAR, DPoP).

Built on :mod:`provider_support`: client authentication for any endpoint, a full login that
records the resident's consent (as the consent page would), and error assertions.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import ECKey
from provider_support import ISSUER, CapturingLogin, RelyingParty, callback_params

from idp.oidc.server import get_server
from idp.storage.base import db
from idp.storage.clients import get_client
from idp.storage.consents import put_consent

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALL_ITEMS = ("name", "address", "birthdate", "gender", "offline_access")


def auth_parts(
    rp: RelyingParty, *, aud: str = ISSUER + "/token"
) -> tuple[dict[str, str], dict[str, str]]:
    """The form fields and headers that authenticate ``rp`` with its registered method."""
    form: dict[str, str] = {}
    headers: dict[str, str] = {}
    if rp.auth_method == "private_key_jwt":
        form["client_assertion_type"] = ASSERTION_TYPE
        form["client_assertion"] = rp.assertion(aud=aud)
    elif rp.auth_method == "client_secret_basic":
        pair = f"{rp.client_id}:{rp.client_secret}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    else:
        form["client_id"] = rp.client_id
    return form, headers


def post_authenticated(
    rp: RelyingParty,
    path: str,
    form: Mapping[str, str],
    *,
    headers: Mapping[str, str] | None = None,
    authenticate: bool = True,
    http: FlaskClient | None = None,
) -> Any:
    """POST ``form`` to ``path`` as ``rp`` (client authentication added unless told not to),
    with ``rp``'s test client or ``http``."""
    body = dict(form)
    all_headers = dict(headers or {})
    if authenticate:
        auth_form, auth_headers = auth_parts(rp)
        body.update(auth_form)
        all_headers.update(auth_headers)
    return (http or rp.http).post(path, data=body, headers=all_headers)


def consent(app: Flask, resident_id: str, rp: RelyingParty, items: Sequence[str]) -> None:
    """Record the resident's consent to ``items`` for ``rp`` (what the consent page does)."""
    with app.app_context():
        put_consent(resident_id, rp.client_id, list(items))


def offline_login(
    app: Flask,
    rp: RelyingParty,
    login: CapturingLogin,
    resident_id: str,
    *,
    scope: str = "openid name offline_access",
) -> dict[str, Any]:
    """Consent, log in with ``scope`` and redeem the code: the token response body."""
    consent(app, resident_id, rp, [s for s in scope.split() if s != "openid"])
    request, params = rp.login(login, resident_id, scope=scope)
    response = rp.token_request(params["code"][0], request.verifier)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert isinstance(body, dict)
    return body


def refresh(
    rp: RelyingParty, refresh_token: str, *, http: FlaskClient | None = None, **extra: str
) -> Any:
    """A refresh token request as ``rp``."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    return post_authenticated(rp, "/token", form, http=http)


def error_of(response: Any, status: int | None = None) -> str:
    """The ``error`` of a JSON error response (checking ``no-store`` and, if given, the status)."""
    body = response.get_json()
    assert isinstance(body, dict), response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    if status is not None:
        assert response.status_code == status, body
    return str(body["error"])


# -- DPoP, PAR, request objects -------------------------------------------------------------


def new_key(kid: str = "dpop-key") -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid}, private=True)


def server_nonce(app: Flask) -> str:
    """A DPoP nonce the provider accepts now."""
    with app.app_context():
        return str(get_server(app).dpop.nonce())


def dpop_proof(
    key: Any,
    *,
    htm: str = "POST",
    htu: str = ISSUER + "/token",
    nonce: str | None = None,
    access_token: str | None = None,
    alg: str = "ES256",
    header: Mapping[str, Any] | None = None,
    **claims: Any,
) -> str:
    """A DPoP proof JWT signed by ``key`` (claims overridable, ``None`` drops one)."""
    body: dict[str, Any] = {
        "jti": secrets.token_urlsafe(16),
        "htm": htm,
        "htu": htu,
        "iat": int(time.time()),
    }
    if nonce is not None:
        body["nonce"] = nonce
    if access_token is not None:
        digest = hashlib.sha256(access_token.encode()).digest()
        body["ath"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    protected: dict[str, Any] = {"typ": "dpop+jwt", "alg": alg, "jwk": key.as_dict(private=False)}
    protected.update(header or {})
    protected = {k: v for k, v in protected.items() if v is not None}
    return jwt.encode(protected, body, key, algorithms=[alg])


def request_object(rp: RelyingParty, params: Mapping[str, Any], **claims: Any) -> str:
    """A request object with ``params`` signed by ``rp``'s key (JWT claims overridable)."""
    now = int(time.time())
    body: dict[str, Any] = {
        **params,
        "iss": rp.client_id,
        "aud": ISSUER,
        "client_id": rp.client_id,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": secrets.token_urlsafe(8),
    }
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    header = {"alg": "ES256", "kid": rp.key.kid, "typ": "oauth-authz-req+jwt"}
    return jwt.encode(header, body, rp.key)


def push(rp: RelyingParty, params: Mapping[str, str], **kwargs: Any) -> Any:
    """POST an authorization request to ``/par`` as ``rp``."""
    return post_authenticated(rp, "/par", params, **kwargs)


def authorize_pushed(rp: RelyingParty, request_uri: str, **query: str) -> Any:
    """``/authorize`` with a pushed request's ``request_uri``."""
    params = {"client_id": rp.client_id, "request_uri": request_uri, **query}
    return rp.http.get("/authorize?" + urlencode(params))


def code_of(response: Any) -> str:
    """The ``code`` of an authorization response (a redirect)."""
    assert response.status_code == 302, response.get_data(as_text=True)
    params = callback_params(response.headers["Location"])
    assert "code" in params, params
    return params["code"][0]


def set_client(app: Flask, rp: RelyingParty, **fields: Any) -> None:
    """Change stored settings of ``rp``'s client (``require_signed_request_object=True``...)."""
    with app.app_context():
        row = get_client(rp.client_id)
        assert row is not None
        for name, value in fields.items():
            setattr(row, name, value)
        db.session.commit()


def error_page_code(response: Any) -> str:
    """The error code an error page shows (no redirect happened)."""
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert "Location" not in response.headers
    text = response.get_data(as_text=True)
    marker = 'id="error-code"'
    assert marker in text, text[:500]
    return text.split(marker, 1)[1].split(">", 1)[1].split("<", 1)[0].strip()
