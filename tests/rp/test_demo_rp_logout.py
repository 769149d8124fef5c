"""The demo relying party signs out with RP-initiated logout and receives back-channel logout.

Both the provider and the demo RP run behind real HTTP servers on loopback: the provider's
logout tokens reach the RP over HTTP, and the RP validates them with the provider's JWKS.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from login_support import HttpBrowser, LiveServer, LoginPki, virtual_device_login

from relying_party_demo import create_app

CLIENT_ID = "demo-rp"


def _register(provider: Flask, rp_url: str, key: ECKey) -> None:
    from idp.oidc.clients import new_client
    from idp.storage.clients import add_client

    with provider.app_context():
        created = new_client(
            name="加賀市 電子申請（デモ）",
            name_en="Kaga City e-Application (demo)",
            redirect_uris=[rp_url + "/callback"],
            auth_method="private_key_jwt",
            jwks=dict(KeySet([key]).as_dict(private=False)),
            client_id=CLIENT_ID,
            post_logout_redirect_uris=[rp_url + "/signed-out"],
            backchannel_logout_uri=rp_url + "/backchannel-logout",
            backchannel_logout_session_required=True,
        )
        add_client(created.client)


@pytest.fixture
def rp_live(live: LiveServer, tmp_path: Path) -> Iterator[LiveServer]:
    key = ECKey.generate_key("P-256", parameters={"kid": "demo-rp-1"}, private=True)
    key_file = tmp_path / "rp-key.json"
    key_file.write_text(json.dumps(key.as_dict(private=True)))

    def build(url: str) -> Flask:
        _register(live.app, url, key)
        return create_app(
            {
                "ISSUER": live.url,
                "CLIENT_ID": CLIENT_ID,
                "KEY_FILE": str(key_file),
                "REDIRECT_URI": url + "/callback",
                "SECRET_KEY": "rp-test-secret-key-rp-test-secret-key",
                "TESTING": True,
            }
        )

    server = LiveServer(build)
    yield server
    server.stop()


def log_in(rp: FlaskClient, browser: HttpBrowser, login_pki: LoginPki) -> None:
    started = browser.start(str(rp.post("/login").headers["Location"]))
    virtual_device_login(started.handoff_url, login_pki, "yamada")
    location = urlsplit(browser.finish(started))
    callback = rp.get(f"{location.path}?{location.query}")
    assert callback.status_code == 302, callback.get_data(as_text=True)
    assert rp.get("/me").status_code == 200


def test_sign_out_uses_rp_initiated_logout_and_ends_the_provider_session(
    rp_live: LiveServer, live: LiveServer, login_pki: LoginPki
) -> None:
    rp = rp_live.app.test_client()
    browser = HttpBrowser()
    log_in(rp, browser, login_pki)
    out = rp.post("/logout")
    assert out.status_code == 302
    end_session = urlsplit(out.headers["Location"])
    assert f"{end_session.scheme}://{end_session.netloc}{end_session.path}" == live.url + "/logout"
    params = parse_qs(end_session.query)
    assert params["client_id"] == [CLIENT_ID]
    assert params["post_logout_redirect_uri"] == [rp_live.url + "/signed-out"]
    assert "id_token_hint" in params
    # The browser follows it to the provider: attributed by the hint, no confirmation.
    answer = browser.session.get(out.headers["Location"], allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == rp_live.url + "/signed-out"
    assert parse_qs(back.query)["state"] == params["state"]
    assert rp.get(f"{back.path}?{back.query}").status_code == 302
    assert rp.get("/me").status_code == 302  # signed out here
    # ... and at the provider: a silent request finds no session.
    again = browser.session.get(
        str(rp.post("/login").headers["Location"]) + "&prompt=none",
        allow_redirects=False,
        timeout=10,
    )
    assert "error=login_required" in again.headers["Location"]


def test_a_back_channel_logout_ends_the_local_login(
    rp_live: LiveServer, live: LiveServer, login_pki: LoginPki
) -> None:
    from sqlalchemy import select

    from idp.oidc.sessions import end_all_sessions, sessions_for
    from idp.storage.base import db
    from idp.storage.residents import Resident

    rp = rp_live.app.test_client()
    log_in(rp, HttpBrowser(), login_pki)
    with live.app.app_context():
        [resident] = db.session.scalars(select(Resident)).all()
        [session] = sessions_for(resident.id)
        report = end_all_sessions(resident.id)
    assert report.notified == (CLIENT_ID,) and report.failed == ()
    assert session.clients == (CLIENT_ID,)
    assert rp.get("/me").status_code == 302  # the RP dropped the login


def _token(live: LiveServer, **changes: Any) -> str:
    from idp.oidc.backchannel import logout_token
    from idp.oidc.clients import load_client
    from idp.oidc.server import get_keyring

    with live.app.app_context():
        client = load_client(CLIENT_ID)
        assert client is not None
        token = logout_token(client, resident_id="someone", sid="sid-1")
        if not changes:
            return token
        claims = dict(jwt.decode(token, get_keyring().signing_key("ES256").key).claims)
        header = {"alg": "ES256", "kid": get_keyring().signing_key("ES256").kid}
        header["typ"] = changes.pop("typ", "logout+jwt")
        claims.update(changes)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(header, claims, get_keyring().signing_key("ES256").key)


def post_token(rp_live: LiveServer, token: str) -> requests.Response:
    return requests.post(
        rp_live.url + "/backchannel-logout", data={"logout_token": token}, timeout=10
    )


def test_the_receiver_accepts_a_token_once(rp_live: LiveServer, live: LiveServer) -> None:
    token = _token(live)
    assert post_token(rp_live, token).status_code == 200
    replay = post_token(rp_live, token)
    assert replay.status_code == 400
    assert replay.json()["error_description"] == "jti replayed"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"typ": "JWT"}, "typ is not logout+jwt"),
        ({"aud": "someone-else"}, "aud"),
        ({"iss": "https://evil.example"}, "iss"),
        ({"events": {}}, "events"),
        ({"nonce": "n"}, "a logout token has no nonce"),
        ({"sid": None}, "sid is required"),
        ({"exp": 1000}, "exp"),
    ],
)
def test_the_receiver_refuses_a_bad_token(
    rp_live: LiveServer, live: LiveServer, changes: dict[str, Any], reason: str
) -> None:
    answer = post_token(rp_live, _token(live, **changes))
    assert answer.status_code == 400
    assert answer.json()["error_description"] == reason


def test_the_receiver_refuses_a_foreign_signature(rp_live: LiveServer, live: LiveServer) -> None:
    token = _token(live)
    claims = jwt.decode(
        token, KeySet.import_key_set(requests.get(live.url + "/jwks.json", timeout=10).json())
    ).claims
    foreign = ECKey.generate_key("P-256", private=True)
    forged = jwt.encode({"alg": "ES256", "typ": "logout+jwt"}, dict(claims), foreign)
    answer = post_token(rp_live, forged)
    assert answer.status_code == 400
    assert answer.json()["error_description"].startswith("signature")
