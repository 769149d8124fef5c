"""The phone simulator signs (flow E): after PIN1 (and the first-time enrollment) it shows the
relying party's text, asks the signature password with the tries left, and the relying party's
result verifies."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from login_support import HttpBrowser, LoginPki
from phone_support import Stack, login_frame, start_stack
from provider_support import RelyingParty, callback_params, pkce_pair

from phone_simulator.flow import Step

pytestmark = [pytest.mark.redis]

SETTLE = 10.0
TEXT = "人間ドック助成金申請書に電子署名します"


@pytest.fixture
def stack(db_url: str, redis_url: str, login_pki: LoginPki, tmp_path: Path) -> Iterator[Stack]:
    with start_stack(db_url, redis_url, login_pki, tmp_path) as running:
        yield running


def test_the_phone_shows_the_text_and_signs_with_the_signature_password(stack: Stack) -> None:
    rp = RelyingParty(
        stack.idp.app,
        auth_method="client_secret_basic",
        scopes=("name", "sign"),
        redirect_uri="https://forms.example.jp/callback",
    )
    auth = base64.b64encode(f"{rp.client_id}:{rp.client_secret}".encode()).decode()
    digest = base64.urlsafe_b64encode(hashlib.sha256(b"form").digest()).rstrip(b"=").decode()
    created = requests.post(
        stack.idp.url + "/api/sign-transactions",
        json={"digest": digest, "digest_algorithm": "sha-256", "text": TEXT},
        headers={"Authorization": f"Basic {auth}"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    transaction_id = created.json()["sign_transaction_id"]
    _, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": rp.client_id,
        "redirect_uri": rp.redirect_uri,
        "scope": "openid name sign",
        "state": "s1",
        "nonce": "n1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "sign_transaction_id": transaction_id,
    }
    browser = HttpBrowser()
    started = browser.start(stack.idp.url + "/authorize?" + urlencode(params))
    qr = login_frame(browser.session, stack.idp.url, started.transaction_id)
    flow = stack.phone_app.scan(qr["content"], "yamada")

    def answer(value: str, then: Step) -> None:
        assert flow.answer(flow.screen().seq, value)
        screen = flow.wait_settled(SETTLE)
        assert screen.step is then, screen

    assert flow.wait_settled(SETTLE).step is Step.CONFIRM
    answer("continue", Step.PIN)
    answer("1234", Step.PASSWORD)  # first login: enrollment
    assert flow.screen().notice == "enrollment"
    answer("abc123", Step.PASSWORD)  # now the signature itself
    screen = flow.screen()
    assert screen.notice == "signature" and screen.tries_left == 5
    assert flow.challenge is not None and flow.challenge.sign is not None
    assert flow.challenge.sign.text == TEXT
    page = requests.get(f"{stack.phone.url}/flow/{flow.id}", timeout=10)
    assert page.status_code == 200  # the screen as the resident sees it
    assert TEXT in page.text and 'id="sign-text"' in page.text
    answer("wrong9", Step.PASSWORD)  # a wrong password: one try fewer, shown
    assert flow.screen().notice == "wrong_secret" and flow.screen().tries_left == 4
    answer("abc123", Step.DONE)
    assert flow.outcome is not None and flow.outcome.signed
    location = browser.finish(started)
    assert callback_params(location)["state"] == ["s1"]
    result = requests.get(
        f"{stack.idp.url}/api/sign-transactions/{transaction_id}/result",
        headers={"Authorization": f"Basic {auth}"},
        timeout=10,
    )
    assert result.status_code == 200, result.text
    assert result.json()["status"] == "signed"
