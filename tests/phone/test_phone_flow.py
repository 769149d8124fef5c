"""The phone simulator against a live provider: pickup, PIN rules, refusals (no browser).

The login is started by a cookie-holding ``requests`` session (the desktop browser), whose
``GET /login/<id>/qr`` gives the current QR frame; the phone is driven through its Python API
(:class:`phone_simulator.flow.Phone`) or its HTTP screens (Flask test client).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from login_support import HttpBrowser, LoginPki, Started
from phone_support import Stack, login_frame, start_stack

from idp.card.jpki_ap import TEXT_AP_AID
from phone_simulator.flow import PhoneFlow, Step
from phone_simulator.provider import PickupError
from phone_simulator.qr import ScanError
from phone_simulator.wallet import CardBusyError, Wallet

pytestmark = [pytest.mark.redis]

SETTLE = 10.0


@pytest.fixture
def stack(db_url: str, redis_url: str, login_pki: LoginPki, tmp_path: Path) -> Iterator[Stack]:
    with start_stack(
        db_url, redis_url, login_pki, tmp_path, idp_settings={"QR_FRAME_WINDOW": 2}
    ) as running:
        yield running


def start_login(stack: Stack) -> tuple[HttpBrowser, Started]:
    """The relying party's login button, then the provider's login page, as a browser."""
    import requests

    rp = requests.Session()
    response = rp.post(stack.rp.url + "/login", allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    browser = HttpBrowser()
    return browser, browser.start(response.headers["Location"])


def frame(stack: Stack, browser: HttpBrowser, started: Started) -> str:
    content = login_frame(browser.session, stack.idp.url, started.transaction_id)["content"]
    assert isinstance(content, str)
    return content


def state(stack: Stack, browser: HttpBrowser, started: Started) -> str:
    body = browser.session.get(stack.idp.url + started.status_path, timeout=10).json()
    return str(body["state"])


def settle(flow: PhoneFlow, step: Step) -> None:
    screen = flow.wait_settled(SETTLE)
    assert screen.step is step, screen


def answer(flow: PhoneFlow, value: str, then: Step) -> None:
    assert flow.answer(flow.screen().seq, value)
    settle(flow, then)


def test_the_phone_picks_up_enrolls_and_the_browser_continues(stack: Stack) -> None:
    browser, started = start_login(stack)
    qr = login_frame(browser.session, stack.idp.url, started.transaction_id)
    flow = stack.phone_app.scan(qr["content"], "yamada")
    settle(flow, Step.CONFIRM)
    # who is asking, and the same verification code as on the desktop page
    assert flow.verification_code == qr["verification_code"]
    assert flow.client_name == "加賀市 電子申請（デモ）"
    assert flow.found.origin == stack.idp.url
    assert state(stack, browser, started) == "picked_up"
    answer(flow, "continue", Step.PIN)
    screen = flow.screen()
    assert screen.tries_left == 3 and screen.notice is None
    answer(flow, "1234", Step.PASSWORD)  # unknown card: enrollment
    assert flow.screen().notice == "enrollment" and flow.screen().tries_left == 5
    answer(flow, "abc123", Step.DONE)  # typed in lower case: the app upper-cases it
    assert flow.outcome is not None and flow.outcome.enrolled
    assert state(stack, browser, started) == "card_verified"
    location = browser.finish(started)
    assert location.startswith(stack.rp.url + "/callback?")
    card = stack.phone_app.wallet.card("yamada")
    assert not any(TEXT_AP_AID in command for command in card.commands)


def test_wrong_pins_count_down_and_the_last_try_needs_a_yes(stack: Stack) -> None:
    browser, started = start_login(stack)
    flow = stack.phone_app.scan(frame(stack, browser, started), "suzuki")
    settle(flow, Step.CONFIRM)
    answer(flow, "continue", Step.PIN)
    answer(flow, "9999", Step.PIN)
    assert flow.screen().notice == "wrong_secret" and flow.screen().tries_left == 2
    answer(flow, "12", Step.PIN)  # wrong shape: nothing sent, no try spent
    assert flow.screen().notice == "bad_format" and flow.screen().tries_left == 2
    answer(flow, "0000", Step.LAST_TRY)
    assert flow.screen().tries_left == 1
    flow.cancel()  # "no": the last try is not spent
    screen = flow.wait_final(SETTLE)
    assert screen.step is Step.CANCELLED and screen.error == "last_try_declined"
    assert stack.phone_app.wallet.card("suzuki").pin_tries(0x0018) == 1
    assert state(stack, browser, started) in ("cancelled", "failed")

    # next login on the same phone: the card still has one try, asked for at once
    browser2, started2 = start_login(stack)
    flow2 = stack.phone_app.scan(frame(stack, browser2, started2), "suzuki")
    settle(flow2, Step.CONFIRM)
    answer(flow2, "continue", Step.LAST_TRY)
    answer(flow2, "use_last_try", Step.PIN)
    assert flow2.screen().tries_left == 1
    answer(flow2, "1234", Step.PASSWORD)  # right: the counter is back to 3
    assert stack.phone_app.wallet.card("suzuki").pin_tries(0x0018) == 3
    answer(flow2, "ABC123", Step.DONE)


def test_a_blocked_pin_stays_blocked_for_the_simulators_lifetime(stack: Stack) -> None:
    browser, started = start_login(stack)
    flow = stack.phone_app.scan(frame(stack, browser, started), "takahashi")
    settle(flow, Step.CONFIRM)
    answer(flow, "continue", Step.PIN)
    answer(flow, "1111", Step.PIN)
    answer(flow, "2222", Step.LAST_TRY)
    answer(flow, "use_last_try", Step.PIN)
    answer(flow, "3333", Step.FAILED)
    assert flow.screen().error == "pin_blocked"
    assert state(stack, browser, started) in ("cancelled", "failed")

    browser2, started2 = start_login(stack)
    flow2 = stack.phone_app.scan(frame(stack, browser2, started2), "takahashi")
    settle(flow2, Step.CONFIRM)
    answer(flow2, "continue", Step.FAILED)
    assert flow2.screen().error == "pin_blocked"
    card = stack.phone_app.wallet.card("takahashi")
    verifies = [c for c in card.commands if c[:4] == bytes.fromhex("00200080") and len(c) > 5]
    assert verifies == []  # the blocked card was never sent a PIN

    stack.phone_app.wallet.replace("takahashi")  # a new card from the office
    browser3, started3 = start_login(stack)
    flow3 = stack.phone_app.scan(frame(stack, browser3, started3), "takahashi")
    settle(flow3, Step.CONFIRM)
    answer(flow3, "continue", Step.PIN)
    assert flow3.screen().tries_left == 3
    flow3.cancel()
    assert flow3.wait_final(SETTLE).step is Step.CANCELLED


def test_a_card_without_signature_certificate_cannot_enroll(stack: Stack) -> None:
    browser, started = start_login(stack)
    flow = stack.phone_app.scan(frame(stack, browser, started), "kobayashi")
    settle(flow, Step.CONFIRM)
    answer(flow, "continue", Step.PIN)
    answer(flow, "1234", Step.FAILED)  # the provider asks to enroll: the card cannot
    assert flow.screen().error == "enrollment_unavailable"
    assert stack.phone_app.wallet.card("kobayashi").pin_tries(0x001B) == 5  # never asked
    assert state(stack, browser, started) in ("cancelled", "failed")


def test_declining_on_the_confirm_screen_cancels_the_login(stack: Stack) -> None:
    browser, started = start_login(stack)
    flow = stack.phone_app.scan(frame(stack, browser, started), "yamada")
    settle(flow, Step.CONFIRM)
    flow.cancel()
    screen = flow.wait_final(SETTLE)
    assert screen.step is Step.CANCELLED and screen.error == "declined"
    assert state(stack, browser, started) in ("cancelled", "failed")
    assert stack.phone_app.wallet.card("yamada").commands == []  # the card was never touched


def test_pickup_refusals_are_typed(stack: Stack) -> None:
    browser, started = start_login(stack)
    content = frame(stack, browser, started)
    phone = stack.phone_app

    forged = re.sub(r"c=[0-9a-f]{32}", "c=" + "0" * 32, content)
    with pytest.raises(PickupError) as caught:
        phone.scan(forged, "yamada")
    assert caught.value.code == "qr_forged"

    unknown = re.sub(r"/m/[A-Za-z0-9_-]+", "/m/" + "A" * 22, content)
    with pytest.raises(PickupError) as caught:
        phone.scan(unknown, "yamada")
    assert caught.value.code == "qr_unknown"

    time.sleep(3.2)  # the window is 2 s here: this frame is now a stale screenshot
    with pytest.raises(PickupError) as caught:
        phone.scan(content, "yamada")
    assert caught.value.code == "qr_stale"
    assert state(stack, browser, started) == "created"  # nothing happened to the login

    fresh = frame(stack, browser, started)
    flow = phone.scan(fresh, "yamada")
    settle(flow, Step.CONFIRM)
    with pytest.raises(PickupError) as caught:  # a second phone (or a replay)
        phone.scan(fresh, "suzuki")
    assert caught.value.code == "already_picked_up"
    flow.cancel()
    flow.wait_final(SETTLE)

    elsewhere = content.replace(stack.idp.url, "http://127.0.0.2:1")
    requests_before = len(stack.idp_requests.paths("/device/"))
    with pytest.raises(ScanError) as scan_error:
        phone.scan(elsewhere, "yamada")
    assert scan_error.value.code == "qr_unknown_provider"
    assert len(stack.idp_requests.paths("/device/")) == requests_before


def test_one_card_one_login_at_a_time(stack: Stack) -> None:
    browser, started = start_login(stack)
    flow = stack.phone_app.scan(frame(stack, browser, started), "ito")
    settle(flow, Step.CONFIRM)
    browser2, started2 = start_login(stack)
    with pytest.raises(CardBusyError):
        stack.phone_app.scan(frame(stack, browser2, started2), "ito")
    assert state(stack, browser2, started2) == "created"  # refused before the pickup
    flow.cancel()
    flow.wait_final(SETTLE)


def test_the_pin_stays_on_the_phone(
    stack: Stack, caplog: pytest.LogCaptureFixture, login_pki: LoginPki
) -> None:
    """Through the simulator's own HTTP screens: the PIN goes in a form post to the phone,
    and from there to the card only -- not to the provider, not to any log."""
    caplog.set_level(logging.DEBUG)
    pin, password = "8053", "QZ7X4KW9"
    stack.phone_app.wallet = Wallet(login_pki.pki, pin=pin, sign_password=password)
    browser, started = start_login(stack)
    phone = stack.phone.app.test_client()
    home = phone.get("/").get_data(as_text=True)
    csrf = _csrf(home)
    response = phone.post(
        "/scan",
        data={"csrf": csrf, "qr": frame(stack, browser, started), "resident": "yamada"},
    )
    assert response.status_code == 303
    flow_path = response.headers["Location"]
    page = phone.get(flow_path).get_data(as_text=True)
    assert 'data-step="confirm"' in page and "加賀市 電子申請（デモ）" in page
    pages: list[Any] = [page]
    for value in ("continue", pin, password):
        seq = re.search(r'name="seq" value="(\d+)"', pages[-1])
        assert seq, pages[-1]
        posted = phone.post(
            flow_path + "/answer", data={"csrf": csrf, "seq": seq.group(1), "value": value}
        )
        assert posted.status_code == 303
        pages.append(phone.get(flow_path).get_data(as_text=True))
    assert 'data-step="done"' in pages[-1], pages[-1]
    # a replayed form (same seq) is ignored, never sent to the card again
    replay = phone.post(flow_path + "/answer", data={"csrf": csrf, "seq": "2", "value": pin})
    assert replay.status_code == 303
    card = stack.phone_app.wallet.card("yamada")
    verifies = [c for c in card.commands if c[:4] == bytes.fromhex("00200080") and len(c) > 5]
    assert len(verifies) == 2  # PIN1 once, the password once
    sent = stack.idp_requests.bodies()
    assert pin.encode() not in sent and password.encode() not in sent
    assert pin not in caplog.text and password not in caplog.text
    assert state(stack, browser, started) == "card_verified"


def test_the_simulator_refuses_forms_without_its_csrf_token(stack: Stack) -> None:
    phone = stack.phone.app.test_client()
    phone.get("/")
    response = phone.post("/scan", data={"csrf": "x", "qr": "y"})
    assert response.status_code == 400


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)
