"""Interoperability: Authlib's own OAuth client, over real HTTP, exactly as docs/integrators.md
shows it (private_key_jwt, PKCE S256, the basic-4 scopes, explicit iss/aud/nonce/acr checks).

The card login is replaced by ``finish_authorization`` (the card flow has its own end-to-end
tests); everything the relying party does goes over a socket to a live server.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from flask import Flask
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from provider_support import enroll_test_resident, install_capturing_login
from werkzeug.serving import make_server

from idp.oidc.authorize import finish_authorization
from idp.oidc.claims import ACR_CARD_PIN, AMR_CARD_PIN
from idp.oidc.clients import new_client
from idp.storage.clients import add_client

REDIRECT_URI = "https://forms.kaga.example.jp/callback"


class ShortLivedPrivateKeyJWT(PrivateKeyJWT):  # type: ignore[misc]
    """Authlib's PrivateKeyJWT with a 60-second assertion (its default is an hour)."""

    def sign(self, auth: Any, token_endpoint: str) -> str:
        return str(
            private_key_jwt_sign(
                auth.client_secret,
                client_id=auth.client_id,
                token_endpoint=token_endpoint,
                alg=self.alg,
                header={"kid": auth.client_secret.kid},
                expires_in=60,
            )
        )


@pytest.fixture
def live(app_factory: Callable[..., Flask]) -> Iterator[tuple[Flask, str]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    issuer = f"http://127.0.0.1:{port}"
    app = app_factory(ISSUER=issuer)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, issuer
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_authlib_client_full_flow(live: tuple[Flask, str]) -> None:
    app, issuer = live
    login = install_capturing_login(app)
    rp_key = ECKey.generate_key("P-256", parameters={"kid": "forms-2026"}, private=True)
    with app.app_context():
        resident_id = enroll_test_resident().id
        created = new_client(
            name="加賀市 電子申請",
            redirect_uris=[REDIRECT_URI],
            auth_method="private_key_jwt",
            jwks=dict(KeySet([rp_key]).as_dict(private=False)),
            client_id="kaga-forms",
        )
        add_client(created.client)

    # -- the relying party, as in docs/integrators.md --------------------------------------
    metadata = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=5).json()
    assert metadata["issuer"] == issuer
    session = OAuth2Session(
        "kaga-forms",
        rp_key,
        token_endpoint_auth_method="private_key_jwt",
        redirect_uri=REDIRECT_URI,
        scope="openid name address birthdate gender",
        code_challenge_method="S256",
    )
    session.register_client_auth_method(
        ShortLivedPrivateKeyJWT(metadata["token_endpoint"], alg="ES256")
    )
    code_verifier = generate_token(48)
    nonce = generate_token(24)
    url, state = session.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=code_verifier, nonce=nonce
    )

    # -- the browser and the card login --------------------------------------------------
    assert requests.get(url, timeout=5).status_code == 200
    with app.test_request_context():
        callback = finish_authorization(
            login.last,
            resident_id=resident_id,
            granted_scopes=login.last.scopes,
            auth_time=int(time.time()),
            amr=AMR_CARD_PIN,
            acr=ACR_CARD_PIN,
        )
    callback_url = callback.headers["Location"]

    # -- back at the relying party ---------------------------------------------------------
    params = parse_qs(urlsplit(callback_url).query)
    assert params["iss"] == [issuer]  # RFC 9207: the response comes from this issuer
    assert params["state"] == [state]
    token = session.fetch_token(
        metadata["token_endpoint"],
        authorization_response=callback_url,
        code_verifier=code_verifier,
    )
    keys = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=5).json())
    id_token = jwt.decode(token["id_token"], keys, algorithms=["ES256"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": "kaga-forms"},
        nonce={"essential": True, "value": nonce},
        acr={"essential": True, "value": ACR_CARD_PIN},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        auth_time={"essential": True},
    ).validate(id_token.claims)

    userinfo = session.get(metadata["userinfo_endpoint"], timeout=5).json()
    assert userinfo["sub"] == id_token.claims["sub"]
    assert userinfo["name"] == "山田\u3000太郎"
    assert userinfo["birthdate"] == "1985-04-01"
    assert userinfo["gender"] == "male"
    assert userinfo["address"]["formatted"].startswith("石川県加賀市")

    # the same code a second time: refused, and the access token stops working
    second = requests.post(
        metadata["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": params["code"][0],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": code_verifier,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": private_key_jwt_sign(
                rp_key,
                client_id="kaga-forms",
                token_endpoint=metadata["token_endpoint"],
                alg="ES256",
                header={"kid": rp_key.kid},
                expires_in=60,
            ),
        },
        timeout=5,
    )
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    assert session.get(metadata["userinfo_endpoint"], timeout=5).status_code == 401


def test_authlib_client_refresh_revocation_introspection(live: tuple[Flask, str]) -> None:
    """Authlib's client: offline_access, a refresh that rotates the refresh token (its new ID
    token checked for iss/aud/sub), revocation and introspection, all with private_key_jwt."""
    from idp.storage.consents import put_consent

    app, issuer = live
    login = install_capturing_login(app)
    rp_key = ECKey.generate_key("P-256", parameters={"kid": "forms-2026"}, private=True)
    with app.app_context():
        resident_id = enroll_test_resident().id
        created = new_client(
            name="加賀市 電子申請",
            redirect_uris=[REDIRECT_URI],
            auth_method="private_key_jwt",
            jwks=dict(KeySet([rp_key]).as_dict(private=False)),
            client_id="kaga-forms",
            scopes=("name", "offline_access"),
        )
        add_client(created.client)
        put_consent(resident_id, "kaga-forms", ["name", "offline_access"])

    metadata = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=5).json()
    session = OAuth2Session(
        "kaga-forms",
        rp_key,
        token_endpoint_auth_method="private_key_jwt",
        revocation_endpoint_auth_method="private_key_jwt",
        redirect_uri=REDIRECT_URI,
        scope="openid name offline_access",
        code_challenge_method="S256",
    )
    # one assertion audience for every endpoint: the token endpoint (accepted everywhere)
    session.register_client_auth_method(
        ShortLivedPrivateKeyJWT(metadata["token_endpoint"], alg="ES256")
    )
    code_verifier = generate_token(48)
    url, _ = session.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=code_verifier, nonce=generate_token(24)
    )
    assert requests.get(url, timeout=5).status_code == 200
    with app.test_request_context():
        callback = finish_authorization(
            login.last,
            resident_id=resident_id,
            granted_scopes=login.last.scopes,
            auth_time=int(time.time()),
            amr=AMR_CARD_PIN,
            acr=ACR_CARD_PIN,
        )
    first = session.fetch_token(
        metadata["token_endpoint"],
        authorization_response=callback.headers["Location"],
        code_verifier=code_verifier,
    )
    assert "refresh_token" in first

    keys = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=5).json())
    refreshed = session.refresh_token(metadata["token_endpoint"])
    assert refreshed["refresh_token"] != first["refresh_token"]
    claims = jwt.decode(refreshed["id_token"], keys, algorithms=["ES256"]).claims
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": "kaga-forms"},
        sub={"essential": True, "value": jwt.decode(first["id_token"], keys).claims["sub"]},
    ).validate(claims)

    introspected = session.introspect_token(
        metadata["introspection_endpoint"], refreshed["access_token"]
    ).json()
    assert introspected["active"] is True and introspected["iss"] == issuer
    assert introspected["client_id"] == "kaga-forms"

    revoked = session.revoke_token(
        metadata["revocation_endpoint"], refreshed["refresh_token"], "refresh_token"
    )
    assert revoked.status_code == 200
    after = session.introspect_token(
        metadata["introspection_endpoint"], refreshed["refresh_token"], "refresh_token"
    ).json()
    assert after == {"active": False}
