"""The demo relying party (Authlib's Flask client, strict checks) against a live provider.

The RP only talks HTTP to the provider: discovery, JWKS, token (private_key_jwt), userinfo.
The resident's browser and the card device are real HTTP clients too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc.jwk import ECKey, KeySet
from login_support import (
    HttpBrowser,
    LiveServer,
    LoginPki,
    register_client,
    virtual_device_login,
)

from relying_party_demo import create_app

REDIRECT_URI = "http://127.0.0.1:5001/callback"
CLIENT_ID = "demo-rp"


@pytest.fixture
def rp_app(live: LiveServer, tmp_path: Path) -> Flask:
    key = ECKey.generate_key("P-256", parameters={"kid": "demo-rp-1"}, private=True)
    key_file = tmp_path / "rp-key.json"
    key_file.write_text(json.dumps(key.as_dict(private=True)))
    register_client(
        live.app,
        client_id=CLIENT_ID,
        redirect_uri=REDIRECT_URI,
        jwks=KeySet([key]).as_dict(private=False),
    )
    app = create_app(
        {
            "ISSUER": live.url,
            "CLIENT_ID": CLIENT_ID,
            "KEY_FILE": str(key_file),
            "REDIRECT_URI": REDIRECT_URI,
            "SECRET_KEY": "rp-test-secret-key-rp-test-secret-key",
            "TESTING": True,
        }
    )
    return app


def begin(rp: FlaskClient) -> str:
    """The RP's login button: the authorization URL it sends the browser to."""
    response = rp.post("/login")
    assert response.status_code == 302
    return str(response.headers["Location"])


def callback_path(location: str) -> str:
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == REDIRECT_URI
    return f"{parts.path}?{parts.query}"


def log_in(rp: FlaskClient, login_pki: LoginPki, resident: str = "yamada", **kwargs: Any) -> str:
    authorize_url = begin(rp)
    browser = HttpBrowser()
    started = browser.start(authorize_url)
    virtual_device_login(started.handoff_url, login_pki, resident)
    return browser.finish(started, **kwargs)


def test_authorization_request_is_strict(rp_app: Flask, live: LiveServer) -> None:
    location = begin(rp_app.test_client())
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == live.url + "/authorize"
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert params["response_type"] == "code" and params["client_id"] == CLIENT_ID
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert params["state"] and params["nonce"]
    assert params["scope"].split() == ["openid", "name", "address", "birthdate", "gender"]
    assert params["redirect_uri"] == REDIRECT_URI


def test_demo_rp_logs_in_and_shows_the_verified_claims(
    rp_app: Flask, live: LiveServer, login_pki: LoginPki
) -> None:
    rp = rp_app.test_client()
    location = log_in(rp, login_pki)
    callback = rp.get(callback_path(location))
    assert callback.status_code == 302, callback.get_data(as_text=True)
    assert callback.headers["Location"].endswith("/me")
    page = rp.get("/me").get_data(as_text=True)
    assert '<html lang="ja">' in page
    assert "山田　太郎" in page and "石川県加賀市大聖寺南町ニ４１番地" in page
    assert "1985-04-01" in page and "男性" in page
    assert "urn:myna-idp:acr:jpki-card-pin" in page and "hwk sc pin mfa" in page
    english = rp.get("/me?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in english and "male" in english and "男性" not in english
    assert "Sex" in english and "性別" not in english


def test_demo_rp_refuses_a_callback_without_the_right_iss(
    rp_app: Flask, login_pki: LoginPki
) -> None:
    rp = rp_app.test_client()
    location = log_in(rp, login_pki)
    parts = urlsplit(location)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    for iss in ("https://evil.example", None):
        forged = dict(params)
        if iss is None:
            forged.pop("iss")
        else:
            forged["iss"] = iss
        response = rp.get(f"{parts.path}?{urlencode(forged)}")
        assert response.status_code == 400
        assert 'id="error-code">invalid_issuer<' in response.get_data(as_text=True)


def test_demo_rp_refuses_a_replayed_callback(rp_app: Flask, login_pki: LoginPki) -> None:
    rp = rp_app.test_client()
    path = callback_path(log_in(rp, login_pki))
    assert rp.get(path).status_code == 302
    replay = rp.get(path)  # the state was used: Authlib refuses it
    assert replay.status_code == 400


def test_demo_rp_shows_a_denied_login(rp_app: Flask, login_pki: LoginPki) -> None:
    rp = rp_app.test_client()
    location = log_in(rp, login_pki, approve=False)
    response = rp.get(callback_path(location))
    assert response.status_code == 400
    assert "ログインは中止されました" in response.get_data(as_text=True)


def test_demo_rp_expects_the_card_acr(rp_app: Flask, live: LiveServer, login_pki: LoginPki) -> None:
    strict = create_app({**rp_app.config, "EXPECTED_ACR": "urn:example:something-else"})
    rp = strict.test_client()
    response = rp.get(callback_path(log_in(rp, login_pki)))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'id="error-code">invalid_id_token<' in page and "acr" in page


def test_demo_rp_never_imports_idp() -> None:
    root = Path(__file__).resolve().parents[2] / "relying_party_demo"
    for source in root.rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        assert "import idp" not in text and "from idp" not in text, source
