"""The QR login end to end in headless Chromium: the demo relying party, the provider's login
page with its rotating QR code, the phone simulator on a phone-sized page, a virtual card.

Real servers on 127.0.0.1 (werkzeug threads), real Redis, SQLite and PostgreSQL. The test
reads the QR frame from the page's text alternative, like a camera would read the image.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_steps import current_frame, enter_pin, finish_on_desktop, open_login, scan, step
from login_support import LoginPki
from phone_support import Stack, start_stack
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.redis]

WINDOW = 5  # seconds a QR frame is accepted (the default)


@pytest.fixture
def stack(db_url: str, redis_url: str, login_pki: LoginPki, tmp_path: Path) -> Iterator[Stack]:
    with start_stack(
        db_url, redis_url, login_pki, tmp_path, idp_settings={"QR_FRAME_WINDOW": WINDOW}
    ) as running:
        yield running


def test_qr_login_with_the_phone_simulator(desktop: Page, phone: Page, stack: Stack) -> None:
    code = open_login(desktop, stack)
    scan(phone, stack, current_frame(desktop))
    step(phone, "confirm")
    # the phone says who is asking, where, and the code the computer shows
    expect(phone.locator("#asking")).to_contain_text("加賀市 電子申請（デモ）")
    expect(phone.locator("#origin")).to_have_text(stack.idp.url)
    expect(phone.locator("#verification-code")).to_have_text(code)
    # the computer learnt of the pickup: the QR is gone, the status says so
    expect(desktop.locator("#login-status")).to_have_attribute("data-state", "picked_up")
    expect(desktop.locator("#qr-area")).to_be_hidden()
    expect(desktop.locator("#qr-hidden")).to_be_visible()

    phone.click("#continue")
    step(phone, "pin")
    expect(phone.locator("#tries-left")).to_have_text("残り 3 回")
    enter_pin(phone, "1234")
    step(phone, "password")  # first login: enrollment
    expect(phone.locator("#notice")).to_have_attribute("data-notice", "enrollment")
    phone.fill("#secret", "ABC123")
    phone.click("#ok")
    step(phone, "done")
    finish_on_desktop(desktop, stack)
    assert any("/events" in path for path in stack.idp_requests.paths("/login/"))


@pytest.fixture
def two_instances(
    db_url: str, redis_url: str, login_pki: LoginPki, tmp_path: Path
) -> Iterator[Stack]:
    with start_stack(
        db_url,
        redis_url,
        login_pki,
        tmp_path,
        two_instances=True,
        idp_settings={"QR_FRAME_WINDOW": WINDOW},
    ) as running:
        yield running


def test_page_on_one_instance_device_on_the_other(
    desktop: Page, phone: Page, two_instances: Stack
) -> None:
    """The page and its event stream are served by instance A; the phone's pickup and card
    response go to instance B (same issuer, Redis and database). Polling is refused, so only
    the event stream, through Redis pub/sub, can move the page on."""
    stack = two_instances
    assert stack.second is not None and stack.second_requests is not None

    def refuse(route: Any) -> None:
        route.abort()

    desktop.route(re.compile(r".*/login/[A-Za-z0-9_-]+/status$"), refuse)
    open_login(desktop, stack)
    scan(phone, stack, current_frame(desktop))
    step(phone, "confirm")
    expect(desktop.locator("#login-status")).to_have_attribute("data-state", "picked_up")
    phone.click("#continue")
    enter_pin(phone, "1234")
    phone.fill("#secret", "ABC123")
    phone.click("#ok")
    step(phone, "done")
    finish_on_desktop(desktop, stack)

    device_on_b = stack.second_requests.paths("/device/")
    assert "POST /device/v1/pickup" in device_on_b
    assert any(p.endswith("/response") and p.startswith("POST") for p in device_on_b)
    assert stack.idp_requests.paths("/device/") == []  # A never saw the phone
    assert any(p.endswith("/events") for p in stack.idp_requests.paths("/login/"))
    assert stack.second_requests.paths("/login/") == []  # B never saw the browser
    # Any poll was refused (the page may poll once, when a QR fetch races the pickup): the
    # event stream is what moved the page on.


def test_a_screenshot_of_the_qr_is_refused_and_the_page_keeps_its_qr(
    desktop: Page, phone: Page, stack: Stack
) -> None:
    open_login(desktop, stack)
    screenshot = current_frame(desktop)
    time.sleep(WINDOW + 1.2)  # relayed to someone else's phone: seconds later
    phone.goto(stack.phone.url + "/")
    phone.fill("#qr", screenshot)
    phone.click("#scan")
    error = phone.locator("#scan-error")
    expect(error).to_have_attribute("data-error", "qr_stale")
    expect(error).to_contain_text("QRコードの有効期限")
    # nothing happened to the login: the computer still shows a (newer) QR code
    expect(desktop.locator("#login-status")).to_have_attribute("data-state", "created")
    expect(desktop.locator("#qr-area")).to_be_visible()
    expect(desktop.locator("#qr-content")).not_to_have_text(screenshot)

    # the live frame works; cancelling on the phone tells the computer
    scan(phone, stack, current_frame(desktop))
    step(phone, "confirm")
    phone.click("#cancel")
    step(phone, "cancelled")
    expect(desktop.locator("#message")).to_be_visible()
    expect(desktop.locator("#qr-area")).to_have_count(0)


def test_wrong_pins_show_the_tries_left_and_the_last_try_asks_first(
    desktop: Page, phone: Page, stack: Stack
) -> None:
    open_login(desktop, stack)
    scan(phone, stack, current_frame(desktop))
    step(phone, "confirm")
    phone.click("#continue")
    step(phone, "pin")
    enter_pin(phone, "9999")
    step(phone, "pin")
    expect(phone.locator("#notice")).to_have_text("暗証番号が違います。")
    expect(phone.locator("#tries-left")).to_have_text("残り 2 回")
    enter_pin(phone, "0000")
    step(phone, "last_try")
    expect(phone.locator("#last-try")).to_contain_text("ロック")
    phone.click("#use-last-try")
    step(phone, "pin")
    expect(phone.locator("#tries-left")).to_have_text("残り 1 回")
    enter_pin(phone, "1234")
    step(phone, "password")
    phone.fill("#secret", "abc123")  # lower case typed; the app upper-cases it
    phone.click("#ok")
    step(phone, "done")
    finish_on_desktop(desktop, stack)


def test_same_device_app_link_and_back_to_the_browser(phone: Page, stack: Stack) -> None:
    """On a phone: the login page's button hands the app the frame and the way back; after the
    card the app opens the login page again, which completes in the same browser."""
    browser = phone  # one phone: its browser and the app share the device (and the cookie)
    open_login(browser, stack)
    login_url = browser.url
    link = browser.locator("#app-link").get_attribute("href") or ""
    assert link.startswith("myna-idp://handoff?qr=") and "&return=" in link
    app = browser.context.new_page()  # the app, opened by the link
    app.goto(stack.phone.url + "/")
    app.fill("#qr", link)
    app.click("#scan")
    step(app, "confirm")
    app.click("#continue")
    enter_pin(app, "1234")
    app.fill("#secret", "ABC123")
    app.click("#ok")
    step(app, "done")
    back = app.locator("#return")
    assert (back.get_attribute("href") or "").startswith(login_url)
    back.click()  # the app opens the browser page again
    expect(app).to_have_url(re.compile(r"/login/[A-Za-z0-9_-]+/continue"))
    app.click('button[value="approve"]')
    expect(app).to_have_url(stack.rp.url + "/me")
    expect(app.locator("body")).to_contain_text("山田　太郎")
