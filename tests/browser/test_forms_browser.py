"""The forms tool end to end in headless Chromium: the resident logs in through the QR handoff
with the phone simulator, the identity block fills itself, they fill the form, review, sign with
the card (the simulator enters the signature password), submit; the staff view shows the verified
signature and OpenSSL verifies the downloaded CMS against the test signature CA.

Real servers on 127.0.0.1 (werkzeug threads): the provider (real Redis, SQLite and PostgreSQL),
the forms RP (its own SQLite, HTTP only to the provider), the phone simulator.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from a11y_support import assert_accessible
from browser_steps import current_frame, enter_pin, scan, step
from joserfc.jwk import ECKey, KeySet
from login_support import LiveServer, LoginPki, dispose, make_login_app
from phone_support import Recorder, Stack
from playwright.sync_api import Page, expect

import phone_simulator
from relying_party_demo import create_app as create_rp_app

pytestmark = [pytest.mark.browser, pytest.mark.redis]

CLIENT_ID = "demo-rp"
SCOPES = ("name", "address", "birthdate", "gender", "sign")


@pytest.fixture
def stack(db_url: str, redis_url: str, login_pki: LoginPki, tmp_path: Path) -> Iterator[Stack]:
    idp = LiveServer(lambda issuer: make_login_app(db_url, redis_url, login_pki, ISSUER=issuer))
    key = ECKey.generate_key("P-256", parameters={"kid": "demo-rp-1"}, private=True)
    key_file = tmp_path / "rp-key.json"
    key_file.write_text(json.dumps(key.as_dict(private=True)))

    def build_rp(url: str) -> object:
        from idp.oidc.clients import new_client
        from idp.storage.clients import add_client

        with idp.app.app_context():
            created = new_client(
                name="加賀市 電子申請（デモ）",
                redirect_uris=[f"{url}/callback"],
                auth_method="private_key_jwt",
                jwks=KeySet([key]).as_dict(private=False),
                scopes=SCOPES,
                client_id=CLIENT_ID,
            )
            add_client(created.client)
        return create_rp_app(
            {
                "ISSUER": idp.url,
                "CLIENT_ID": CLIENT_ID,
                "KEY_FILE": str(key_file),
                "REDIRECT_URI": f"{url}/callback",
                "SECRET_KEY": "rp-test-secret-key-rp-test-secret-key",
                "FORMS_DB": str(tmp_path / "forms.sqlite3"),
                "SIGN_CA_FILE": str(login_pki.sign_anchor),
            }
        )

    rp = LiveServer(build_rp)  # type: ignore[arg-type]
    phone = LiveServer(
        lambda _url: phone_simulator.create_app(
            {
                "PROVIDERS": [idp.url],
                "PKI": login_pki.pki,
                "SECRET_KEY": "phone-test-secret-key-phone-test",
            }
        )
    )
    running = Stack(idp=idp, rp=rp, phone=phone, idp_requests=Recorder(idp.app.wsgi_app))
    try:
        yield running
    finally:
        for server in (phone, rp, idp):
            server.stop()
        dispose(idp.app)


def shot(page: Page, name: str) -> None:
    """With ``MYNA_SCREENSHOT_DIR`` set, keep a PNG of the screen (docs/screenshots/forms-*)."""
    target = os.environ.get("MYNA_SCREENSHOT_DIR")  # noqa: TID251 - opt-in output directory
    if target:
        page.screenshot(path=str(Path(target) / f"forms-{name}.png"), full_page=True)


def card_on_the_phone(desktop: Page, phone: Page, stack: Stack, *, sign: bool) -> None:
    """The provider's login page: scan its QR, continue, PIN1, the signature password."""
    expect(desktop).to_have_url(re.compile(re.escape(stack.idp.url) + r"/login/[A-Za-z0-9_-]+$"))
    expect(desktop.locator("#qr-image svg")).to_be_visible()
    scan(phone, stack, current_frame(desktop))
    step(phone, "confirm")
    expect(phone.locator("#asking")).to_contain_text("加賀市 電子申請（デモ）")
    phone.click("#continue")
    step(phone, "pin")
    enter_pin(phone, "1234")
    step(phone, "password")  # first login: enrollment; a signature: the text to sign
    if sign:
        expect(phone.locator("#notice")).to_have_attribute("data-notice", "signature")
        expect(phone.locator("#screen")).to_contain_text("人間ドック助成金申請")
        shot(phone, "phone-sign")
    phone.fill("#secret", "ABC123")
    phone.click("#ok")
    step(phone, "done")
    desktop.wait_for_url(re.compile(r"/login/[A-Za-z0-9_-]+/continue"))
    assert_accessible(desktop, "consent with the text to sign" if sign else "consent")
    desktop.click('button[value="approve"]')


def test_fill_sign_submit_and_staff_verify(
    desktop: Page, phone: Page, stack: Stack, login_pki: LoginPki, tmp_path: Path
) -> None:
    desktop.goto(stack.rp.url + "/forms")
    desktop.click('a[data-form="ningen-dock"]')
    card_on_the_phone(desktop, phone, stack, sign=False)

    # the form fills itself from the verified claims, read-only, with the badge
    desktop.wait_for_url(stack.rp.url + "/forms/ningen-dock")
    expect(desktop.locator("#verified-badge")).to_have_text("マイナンバーカードで確認済み")
    verified_at = desktop.locator("#verified-at")
    expect(verified_at).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT"))
    expect(verified_at).to_have_text(re.compile(r"^\d{4}年\d{1,2}月\d{1,2}日 \d\d:\d\d$"))
    expect(desktop.locator("#identity-name")).to_have_value("山田　太郎")
    expect(desktop.locator("#identity-address")).to_have_value("石川県加賀市大聖寺南町ニ４１番地")
    expect(desktop.locator("#identity-birthdate")).to_have_value("1985-04-01")
    expect(desktop.locator("#identity-gender")).to_have_value("男性")
    expect(desktop.locator("#identity-name")).not_to_be_editable()

    desktop.fill("#f-exam_date", "2027-01-15")
    desktop.fill("#f-clinic", "加賀市民病院")
    desktop.select_option("#f-insurance", "国民健康保険")
    desktop.fill("#f-bank_account", "北國銀行 大聖寺支店 普通 1234567")
    shot(desktop, "form")
    assert_accessible(desktop, "forms tool: the form")
    # someone edits the page: the identity fields get names and other values
    desktop.evaluate(
        """() => { for (const [k, v] of [["name", "偽物　一郎"], ["birthdate", "2000-01-01"]]) {
             const input = document.getElementById("identity-" + k);
             input.removeAttribute("readonly"); input.name = k; input.value = v; } }"""
    )
    desktop.click("#to-review")
    review = desktop.locator("#review")
    expect(review).to_contain_text("山田　太郎")
    expect(review).not_to_contain_text("偽物")
    expect(review).to_contain_text("加賀市民病院")
    submission_id = desktop.locator("#submission-id").inner_text().strip()
    shot(desktop, "review")
    assert_accessible(desktop, "forms tool: review")

    desktop.click("#sign-submit")
    card_on_the_phone(desktop, phone, stack, sign=True)
    desktop.wait_for_url(stack.rp.url + f"/forms/done/{submission_id}")
    expect(desktop.locator("#signer")).to_have_text("山田　太郎")
    expect(desktop.locator("#signature-ok")).to_be_visible()
    assert_accessible(desktop, "forms tool: submitted")

    # the staff view: the verified signature, the CMS and the document to download
    desktop.goto(stack.rp.url + "/staff")
    row = desktop.locator(f'tr[data-submission="{submission_id}"]')
    expect(row.locator(".signer")).to_contain_text("山田　太郎")
    expect(row.locator(".signature-verified")).to_be_visible()
    signed_at = row.locator(".signed-at")
    expect(signed_at).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT"))
    expect(signed_at).to_have_text(re.compile(r"^\d{4}年\d{1,2}月\d{1,2}日 \d\d:\d\d$"))
    shot(desktop, "staff")
    assert_accessible(desktop, "forms tool: staff view")
    cms = desktop.request.get(stack.rp.url + (row.locator("a.cms").get_attribute("href") or ""))
    document = desktop.request.get(
        stack.rp.url + (row.locator("a.document").get_attribute("href") or "")
    )
    assert cms.ok and document.ok
    assert json.loads(document.body())["applicant"]["name"] == "山田　太郎"
    (tmp_path / "sig.p7s").write_bytes(cms.body())
    (tmp_path / "doc.json").write_bytes(document.body())
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
    csv = desktop.request.get(stack.rp.url + "/staff/forms/ningen-dock/submissions.csv")
    assert csv.body().startswith("\ufeff".encode()) and submission_id in csv.text()
