"""Electronic signatures (flow E): the sign-transactions back channel, the signing round with
the virtual card through the shared device client, and the relying party's result, which
``openssl cms -verify`` must accept (real Redis; SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from flask import Flask
from login_support import (
    Browser,
    LoginPki,
    device_login,
    full_login,
    virtual_card,
)
from provider_support import ISSUER, RelyingParty, callback_params

from idp.card.errors import WrongPinError
from idp.extensions import get_store
from idp.handoff.device_client import DeviceApiError, FixedPrompts
from idp.oidc.sign_transactions import SignTransactionStore

SCOPES = ("name", "address", "birthdate", "gender", "sign")
DOCUMENT = "人間ドック助成金申請\n申請者: 山田　太郎\n".encode()
TEXT = "人間ドック助成金申請書に電子署名します"


def signing_rp(app: Flask, **kwargs: Any) -> RelyingParty:
    return RelyingParty(app, auth_method="client_secret_basic", scopes=SCOPES, **kwargs)


def basic(rp: RelyingParty) -> dict[str, str]:
    pair = f"{rp.client_id}:{rp.client_secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def create(rp: RelyingParty, body: Any = None, **changes: Any) -> Any:
    document = (
        body
        if body is not None
        else {
            "digest": b64url(hashlib.sha256(DOCUMENT).digest()),
            "digest_algorithm": "sha-256",
            "text": TEXT,
        }
    )
    document = {**document, **changes}
    return rp.http.post("/api/sign-transactions", json=document, headers=basic(rp))


def fetch(rp: RelyingParty, transaction_id: str) -> Any:
    return rp.http.get(f"/api/sign-transactions/{transaction_id}/result", headers=basic(rp))


def new_transaction(rp: RelyingParty) -> str:
    response = create(rp)
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["expires_at"] > time.time() + 250
    value = body["sign_transaction_id"]
    assert isinstance(value, str)
    return value


def sign_scope(transaction_id: str) -> dict[str, str | None]:
    return {"scope": "openid name sign", "sign_transaction_id": transaction_id}


def openssl_verify(
    tmp_path: Path, cms_der: bytes, document: bytes, ca: Path
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "sig.der").write_bytes(cms_der)
    (tmp_path / "document").write_bytes(document)
    return subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            str(tmp_path / "sig.der"),
            "-content",
            str(tmp_path / "document"),
            "-CAfile",
            str(ca),
            "-purpose",
            "any",
            "-out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_signed_document_verifies_with_openssl(
    app: Flask, login_pki: LoginPki, tmp_path: Path
) -> None:
    rp = signing_rp(app)
    other = signing_rp(app, redirect_uri="https://other.example.jp/cb", name="別のサービス")
    creds = login_pki.credentials("yamada")
    _, card = virtual_card(login_pki, creds)
    transaction_id = new_transaction(rp)
    assert fetch(rp, transaction_id).get_json()["error"] == "not_ready"
    assert fetch(rp, transaction_id).status_code == 409

    browser = Browser(rp)
    request = rp.authorization_request(**sign_scope(transaction_id))
    started = browser.start(request)
    prompts = FixedPrompts()
    outcome = device_login(app, started.handoff_url, card, prompts)
    assert outcome.signed and outcome.enrolled
    assert "signature" in prompts.asked
    assert prompts.asked[-1].startswith("secret:sign:")  # the password asked for the signature
    assert browser.status(started)["state"] == "card_verified"
    # Not fetchable before the resident consents.
    assert fetch(rp, transaction_id).status_code == 409
    page = browser.proceed(started)
    assert page.status_code == 200  # consent for sign is always asked
    assert TEXT in page.get_data(as_text=True)
    callback = browser.consent(started, page.get_data(as_text=True))
    assert callback.status_code == 302
    params = callback_params(callback.headers["Location"])
    assert params["state"] == [request.state] and "code" in params

    assert fetch(other, transaction_id).status_code == 404
    result = fetch(rp, transaction_id)
    assert result.status_code == 200, result.get_data(as_text=True)
    body = result.get_json()
    assert body["status"] == "signed"
    assert base64.b64decode(body["certificate"]) == creds.sign_certificate.public_bytes(
        Encoding.DER
    )
    cms_der = base64.b64decode(body["cms"])
    verified = openssl_verify(tmp_path, cms_der, DOCUMENT, login_pki.sign_anchor)
    assert verified.returncode == 0, verified.stderr
    assert "Verification successful" in verified.stderr
    tampered = openssl_verify(tmp_path, cms_der, DOCUMENT + b" ", login_pki.sign_anchor)
    assert tampered.returncode != 0
    assert "content verify error" in tampered.stderr

    second = fetch(rp, transaction_id)
    assert (second.status_code, second.get_json()["error"]) == (410, "already_fetched")
    # A used transaction cannot be named again.
    again = rp.authorize(rp.authorization_request(**sign_scope(transaction_id)))
    assert again.status_code == 302
    assert callback_params(again.headers["Location"])["error"] == ["invalid_request"]


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"digest": "not base64url!"}, 400),
        ({"digest": b64url(b"short")}, 400),
        ({"digest": b64url(bytes(33))}, 400),
        ({"digest_algorithm": "sha-1"}, 400),
        ({"text": "x" * 201}, 400),
        ({"text": ""}, 400),
        ({"text": "line\nbreak"}, 400),
        ({"expires_in": 59}, 400),
        ({"expires_in": 601}, 400),
        ({"expires_in": "300"}, 400),
        ({"extra": 1}, 400),
    ],
)
def test_malformed_requests_are_invalid_request(
    app: Flask, changes: dict[str, Any], status: int
) -> None:
    response = create(signing_rp(app), **changes)
    assert (response.status_code, response.get_json()["error"]) == (status, "invalid_request")


def test_client_authentication_and_registration(app: Flask) -> None:
    rp = signing_rp(app)
    unauthenticated = rp.http.post("/api/sign-transactions", json={"text": "x"})
    assert (unauthenticated.status_code, unauthenticated.get_json()["error"]) == (
        401,
        "invalid_client",
    )
    plain = RelyingParty(
        app, auth_method="client_secret_basic", redirect_uri="https://p.example/cb"
    )
    refused = create(plain)
    assert (refused.status_code, refused.get_json()["error"]) == (403, "unauthorized_client")
    huge = rp.http.post(
        "/api/sign-transactions",
        data=b"{" + b" " * 8000 + b"}",
        headers={**basic(rp), "Content-Type": "application/json"},
    )
    assert huge.status_code == 413


def test_expired_transaction(app: Flask) -> None:
    rp = signing_rp(app)
    with app.app_context():
        expired = SignTransactionStore(get_store()).create(
            client_id=rp.client_id, digest=bytes(32), text="t", expires_in=60, now=time.time() - 61
        )
    response = fetch(rp, expired.id)
    assert (response.status_code, response.get_json()["error"]) == (410, "expired")
    request = rp.authorization_request(**sign_scope(expired.id))
    refused = rp.authorize(request)
    assert refused.status_code == 302
    assert callback_params(refused.headers["Location"])["error"] == ["invalid_request"]


def test_sign_transaction_of_another_client_at_authorize(app: Flask) -> None:
    rp = signing_rp(app)
    other = signing_rp(app, redirect_uri="https://other.example.jp/cb")
    foreign = new_transaction(other)
    request = rp.authorization_request(**sign_scope(foreign))
    response = rp.authorize(request)
    assert response.status_code == 302
    params = callback_params(response.headers["Location"])
    assert params["error"] == ["invalid_request"]
    assert params["state"] == [request.state]
    assert params["iss"] == [ISSUER]
    missing = rp.authorize(rp.authorization_request(scope="openid sign"))
    assert callback_params(missing.headers["Location"])["error"] == ["invalid_request"]
    unknown = rp.authorize(rp.authorization_request(**sign_scope("x" * 43)))
    assert callback_params(unknown.headers["Location"])["error"] == ["invalid_request"]


def test_revoked_signature_certificate(app: Flask, login_pki: LoginPki) -> None:
    rp = signing_rp(app)
    creds = login_pki.credentials("yamada")
    _, card = virtual_card(login_pki, creds)
    full_login(rp, card)  # enrolled while the certificate was good
    assert creds.sign_certificate is not None
    login_pki.revoke("sign", creds.sign_certificate.serial_number)
    time.sleep(1.1)  # the trust files are re-read at most once a second
    transaction_id = new_transaction(rp)
    browser = Browser(rp)
    request = rp.authorization_request(**sign_scope(transaction_id))
    started = browser.start(request)
    with pytest.raises(DeviceApiError) as raised:
        device_login(app, started.handoff_url, card)
    assert (raised.value.status, raised.value.code) == (410, "sign_certificate_revoked")
    assert "municipal office" in raised.value.message
    assert browser.status(started)["state"] == "failed"
    page = browser.proceed(started).get_data(as_text=True)
    assert "窓口で電子証明書を更新" in page
    cancelled = browser.http.post(
        f"/login/{started.transaction_id}/cancel", data={"csrf": browser.csrf(page)}
    )
    params = callback_params(cancelled.headers["Location"])
    assert params["error"] == ["access_denied"]
    assert params["error_description"] == ["certificate_revoked"]
    assert params["state"] == [request.state]
    assert fetch(rp, transaction_id).status_code == 409


def test_wrong_signature_password_shows_the_tries(app: Flask, login_pki: LoginPki) -> None:
    rp = signing_rp(app)
    creds = login_pki.credentials("yamada")
    _, card = virtual_card(login_pki, creds)
    full_login(rp, card)
    transaction_id = new_transaction(rp)
    browser = Browser(rp)
    started = browser.start(rp.authorization_request(**sign_scope(transaction_id)))
    prompts = FixedPrompts(sign_password="WRONG9")
    with pytest.raises(WrongPinError):
        device_login(app, started.handoff_url, card, prompts)
    assert "secret:sign:5" in prompts.asked
    assert "wrong:sign:4" in prompts.asked
    assert fetch(rp, transaction_id).status_code == 409
