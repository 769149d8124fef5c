"""Helpers for the protocol-depth tests (refresh, revocation, introspection, PAR, JAR, DPoP).

Built on :mod:`provider_support`: client authentication for any endpoint, a full login that
records the resident's consent (as the consent page would), and error assertions.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from provider_support import ISSUER, CapturingLogin, RelyingParty

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
