"""The forms tool against a live provider over HTTP: card login, the form fills itself, the
resident signs with the card's signature key (virtual card, shared device client), the RP checks
the CMS and stores the submission; staff download it and OpenSSL verifies it.

Real servers on loopback (the provider on werkzeug's threaded server, real Redis, SQLite and
PostgreSQL); the forms RP talks to it only over HTTP (requests from its test client).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc.jwk import ECKey, KeySet
from login_support import Browser, HttpBrowser, LiveServer, LoginPki, virtual_device_login

from idp.handoff.device_client import DeviceApiError
from relying_party_demo import create_app

pytestmark = [pytest.mark.redis]

REDIRECT_URI = "http://127.0.0.1:5001/callback"
CLIENT_ID = "forms-rp"
FORM = "ningen-dock"
ANSWERS = {
    "exam_date": "2027-01-15",
    "clinic": "加賀市民病院",
    "insurance": "国民健康保険",
    "bank_account": "北國銀行 大聖寺支店 普通 1234567",
}


def register_signing_client(app: Flask, jwks: dict[str, Any], scopes: tuple[str, ...]) -> None:
    from idp.oidc.clients import new_client
    from idp.storage.clients import add_client

    with app.app_context():
        created = new_client(
            name="加賀市 電子申請（デモ）",
            name_en="Kaga City e-Application (demo)",
            redirect_uris=[REDIRECT_URI],
            auth_method="private_key_jwt",
            jwks=jwks,
            scopes=scopes,
            client_id=CLIENT_ID,
        )
        add_client(created.client)


def forms_rp(
    live: LiveServer, tmp_path: Path, login_pki: LoginPki, scopes: tuple[str, ...]
) -> Flask:
    key = ECKey.generate_key("P-256", parameters={"kid": "forms-rp-1"}, private=True)
    key_file = tmp_path / "forms-rp-key.json"
    key_file.write_text(json.dumps(key.as_dict(private=True)))
    register_signing_client(live.app, KeySet([key]).as_dict(private=False), scopes)
    return create_app(
        {
            "ISSUER": live.url,
            "CLIENT_ID": CLIENT_ID,
            "KEY_FILE": str(key_file),
            "REDIRECT_URI": REDIRECT_URI,
            "SECRET_KEY": "forms-rp-test-secret-key-forms-rp",
            "FORMS_DB": str(tmp_path / "forms.sqlite3"),
            "SIGN_CA_FILE": str(login_pki.sign_anchor),
        }
    )


@pytest.fixture
def rp_app(live: LiveServer, tmp_path: Path, login_pki: LoginPki) -> Flask:
    return forms_rp(live, tmp_path, login_pki, ("name", "address", "birthdate", "gender", "sign"))


def local(location: str) -> str:
    parts = urlsplit(location)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def through_the_card(rp: FlaskClient, authorize_url: str, login_pki: LoginPki) -> str:
    """The provider's page, the device with the virtual card, consent: the RP's callback."""
    browser = HttpBrowser()
    started = browser.start(authorize_url)
    virtual_device_login(started.handoff_url, login_pki, "yamada")
    location = browser.finish(started)
    assert location.startswith(REDIRECT_URI), location
    return location


def log_in_to_the_form(rp: FlaskClient, login_pki: LoginPki) -> str:
    response = rp.get(f"/forms/{FORM}")
    assert response.status_code == 302
    response = rp.get(response.headers["Location"])
    assert response.status_code == 302
    authorize_url = response.headers["Location"]
    claims = json.loads(parse_qs(urlsplit(authorize_url).query)["claims"][0])
    assert "verified_claims" in claims["userinfo"]  # discovery advertises it
    callback = rp.get(local(through_the_card(rp, authorize_url, login_pki)))
    assert callback.status_code == 302, callback.get_data(as_text=True)
    assert callback.headers["Location"] == f"/forms/{FORM}"
    page = rp.get(f"/forms/{FORM}").get_data(as_text=True)
    return page


def review_and_sign(rp: FlaskClient, forged: dict[str, str] | None = None) -> tuple[str, str]:
    page = rp.post(f"/forms/{FORM}/review", data={**ANSWERS, **(forged or {})})
    assert page.status_code == 200, page.get_data(as_text=True)
    match = re.search(r'name="submission_id" value="([^"]+)"', page.get_data(as_text=True))
    assert match
    response = rp.post(f"/forms/{FORM}/sign", data={"submission_id": match.group(1)})
    assert response.status_code == 302, response.get_data(as_text=True)
    authorize_url = response.headers["Location"]
    query = parse_qs(urlsplit(authorize_url).query)
    assert "sign" in query["scope"][0].split() and query["sign_transaction_id"][0]
    return match.group(1), authorize_url


def test_sign_and_submit_then_staff_and_openssl_verify(
    rp_app: Flask, live: LiveServer, login_pki: LoginPki, tmp_path: Path
) -> None:
    rp = rp_app.test_client()
    page = log_in_to_the_form(rp, login_pki)
    assert "マイナンバーカードで確認済み" in page and 'value="山田　太郎"' in page
    assert re.search(r'<time id="verified-at" datetime="\d{4}-\d\d-\d\dT', page)

    # forged identity fields are ignored: the document carries the verified claims
    submission_id, authorize_url = review_and_sign(
        rp, {"name": "偽物　一郎", "birthdate": "2000-01-01"}
    )
    done = rp.get(local(through_the_card(rp, authorize_url, login_pki)))
    assert done.status_code == 302, done.get_data(as_text=True)
    assert done.headers["Location"] == f"/forms/done/{submission_id}"
    receipt = rp.get(done.headers["Location"]).get_data(as_text=True)
    assert 'id="signer">山田　太郎<' in receipt and "電子署名を検証しました" in receipt

    staff = rp.get("/staff").get_data(as_text=True)
    assert f'data-submission="{submission_id}"' in staff and "山田　太郎" in staff
    cms = rp.get(f"/staff/submissions/{submission_id}.p7s").data
    document = rp.get(f"/staff/submissions/{submission_id}.json").data
    applicant = json.loads(document)["applicant"]
    assert applicant["name"] == "山田　太郎" and applicant["birthdate"] == "1985-04-01"
    assert "偽物".encode() not in document and json.loads(document)["answers"] == ANSWERS

    (tmp_path / "sig.p7s").write_bytes(cms)
    (tmp_path / "doc.json").write_bytes(document)
    verified = subprocess.run(
        [
            "openssl", "cms", "-verify", "-binary", "-inform", "DER",
            "-in", str(tmp_path / "sig.p7s"), "-content", str(tmp_path / "doc.json"),
            "-CAfile", str(login_pki.sign_anchor), "-purpose", "any", "-out", "/dev/null",
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    assert "Verification successful" in verified.stderr

    # the same submission again (double click, back button): one stored submission
    again = rp.post(f"/forms/{FORM}/sign", data={"submission_id": submission_id})
    assert again.status_code == 400  # the draft is gone once submitted
    assert rp.get("/staff").get_data(as_text=True).count("data-submission=") == 1


def test_a_replayed_signing_callback_stores_nothing_twice(
    rp_app: Flask, live: LiveServer, login_pki: LoginPki
) -> None:
    rp = rp_app.test_client()
    log_in_to_the_form(rp, login_pki)
    submission_id, authorize_url = review_and_sign(rp)
    callback = local(through_the_card(rp, authorize_url, login_pki))
    assert rp.get(callback).status_code == 302
    replay = rp.get(callback)  # state and code spent; the result is fetched once
    assert replay.status_code == 400
    assert rp.get("/staff").get_data(as_text=True).count("data-submission=") == 1
    assert submission_id in rp.get("/staff").get_data(as_text=True)


def test_a_client_not_registered_for_sign_gets_a_clear_error(
    live: LiveServer, tmp_path: Path, login_pki: LoginPki
) -> None:
    app = forms_rp(live, tmp_path, login_pki, ("name", "address", "birthdate", "gender"))
    rp = app.test_client()
    log_in_to_the_form(rp, login_pki)
    page = rp.post(f"/forms/{FORM}/review", data=ANSWERS).get_data(as_text=True)
    match = re.search(r'name="submission_id" value="([^"]+)"', page)
    assert match
    response = rp.post(f"/forms/{FORM}/sign", data={"submission_id": match.group(1)})
    assert response.status_code == 400
    assert 'id="error-code">unauthorized_client<' in response.get_data(as_text=True)


def test_a_revoked_signature_certificate_tells_the_resident_to_renew_it(
    rp_app: Flask, live: LiveServer, login_pki: LoginPki
) -> None:
    rp = rp_app.test_client()
    log_in_to_the_form(rp, login_pki)
    _, authorize_url = review_and_sign(rp)
    login_pki.revoke("sign", login_pki.credentials("yamada").sign_certificate.serial_number)  # type: ignore[union-attr]
    time.sleep(1.1)  # the provider re-reads its CRL files at most once a second
    browser = HttpBrowser()
    started = browser.start(authorize_url)
    with pytest.raises(DeviceApiError) as refused:  # the phone is told why (410)
        virtual_device_login(started.handoff_url, login_pki, "yamada")
    assert (refused.value.status, refused.value.code) == (410, "sign_certificate_revoked")
    response = browser.session.get(
        browser.base + started.continue_path, allow_redirects=False, timeout=10
    )
    # the provider's page says why, in the words the phone used, and offers to stop
    assert 'data-code="sign_certificate_revoked"' in response.text
    assert "窓口で電子証明書を更新" in response.text
    cancel = re.search(r'action="(/login/[^"]+/cancel[^"]*)"', response.text)
    assert cancel
    response = browser.session.post(
        browser.base + cancel.group(1).replace("&amp;", "&"),
        data={"csrf": Browser.csrf(response.text)},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    query = parse_qs(urlsplit(location).query)
    assert query["error"] == ["access_denied"]
    assert query["error_description"] == ["certificate_revoked"]
    page = rp.get(local(location))
    assert page.status_code == 403
    text = page.get_data(as_text=True)
    assert 'id="error-code">certificate_revoked<' in text and "窓口で電子証明書を更新" in text
    assert rp.get("/staff").get_data(as_text=True).count("data-submission=") == 0
