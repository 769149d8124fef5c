"""The main screens of the QR login, in Japanese and English, as PNG screenshots.

Every run checks the words on each screen in both languages. With ``MYNA_SCREENSHOT_DIR`` set,
the PNGs are also written there; docs/screenshots/ is made with::

    MYNA_SCREENSHOT_DIR=docs/screenshots .venv/bin/pytest tests/browser/test_screenshots.py
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_steps import current_frame, enter_pin, open_login, step
from login_support import LoginPki
from phone_support import Stack, start_stack
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.redis]

WINDOW = 5


@pytest.fixture
def stack(redis_url: str, login_pki: LoginPki, tmp_path: Path) -> Iterator[Stack]:
    database = f"sqlite:///{tmp_path / 'idp.sqlite3'}"
    with start_stack(
        database, redis_url, login_pki, tmp_path, idp_settings={"QR_FRAME_WINDOW": WINDOW}
    ) as running:
        yield running


class Shots:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.taken: list[Path] = []

    def __call__(self, page: Page, name: str, *, full_page: bool = False) -> None:
        path = self.directory / f"{name}.png"
        page.wait_for_timeout(150)  # let the last paint settle
        page.screenshot(path=str(path), full_page=full_page, animations="disabled")
        self.taken.append(path)


@pytest.fixture
def shots(tmp_path: Path) -> Iterator[Shots]:
    taken = Shots(tmp_path / "shots")
    taken.directory.mkdir()
    yield taken
    target = os.environ.get("MYNA_SCREENSHOT_DIR")  # noqa: TID251 - opt-in output directory
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for path in taken.taken:
            shutil.copyfile(path, Path(target) / path.name)


def scan_by_paste(phone: Page, stack: Stack, frame: str, resident: str) -> None:
    phone.select_option("#resident", resident)
    phone.fill("#qr", frame)
    phone.click("#scan")


def test_screens_in_japanese(desktop: Page, phone: Page, stack: Stack, shots: Shots) -> None:
    code = open_login(desktop, stack)
    expect(desktop.locator("h1")).to_have_text("マイナンバーカードでログイン")
    shots(desktop, "desktop-qr-ja")

    stale = current_frame(desktop)
    phone.goto(stale)  # what a phone camera opens from the QR code (no app yet)
    expect(phone.locator("#app-link")).to_be_visible()
    shots(phone, "phone-landing-ja", full_page=True)
    phone.goto(stack.phone.url + "/")
    expect(phone.locator("h1")).to_have_text("QRコードを読み取る")
    time.sleep(WINDOW + 1.2)
    scan_by_paste(phone, stack, stale, "yamada")
    expect(phone.locator("#scan-error")).to_have_attribute("data-error", "qr_stale")
    shots(phone, "phone-stale-ja", full_page=True)

    scan_by_paste(phone, stack, current_frame(desktop), "yamada")
    step(phone, "confirm")
    expect(phone.locator("#verification-code")).to_have_text(code)
    expect(phone.locator("h1")).to_have_text("ログインの確認")
    shots(phone, "phone-confirm-ja", full_page=True)
    expect(desktop.locator("#qr-hidden")).to_be_visible()
    shots(desktop, "desktop-picked-up-ja")

    phone.click("#continue")
    step(phone, "pin")
    enter_pin(phone, "9999")
    step(phone, "pin")
    expect(phone.locator("#notice")).to_have_text("暗証番号が違います。")
    for digit in "12":
        phone.click(f'#pinpad [data-digit="{digit}"]')  # half-typed: two dots filled
    shots(phone, "phone-pin-ja", full_page=True)
    phone.click('#pinpad [data-action="clear"]')
    enter_pin(phone, "0000")
    step(phone, "last_try")
    expect(phone.locator("h1")).to_have_text("残り1回です")
    shots(phone, "phone-last-try-ja", full_page=True)
    phone.click("#use-last-try")
    enter_pin(phone, "1234")
    step(phone, "password")
    expect(phone.locator("h1")).to_have_text("署名用電子証明書のパスワード")
    shots(phone, "phone-password-ja", full_page=True)
    phone.fill("#secret", "ABC123")
    phone.click("#ok")
    step(phone, "done")
    expect(phone.locator("h1")).to_have_text("完了しました")
    shots(phone, "phone-done-ja", full_page=True)
    desktop.wait_for_url("**/continue**")
    expect(desktop.locator('button[value="approve"]')).to_be_visible()
    shots(desktop, "desktop-consent-ja")
    after_consent(desktop, stack, shots, "ja")


def test_screens_in_english(desktop: Page, phone: Page, stack: Stack, shots: Shots) -> None:
    open_login(desktop, stack)
    desktop.goto(desktop.url + "?lang=en")
    expect(desktop.locator("h1")).to_have_text("Sign in with your My Number card")
    expect(desktop.locator("#qr-image svg")).to_be_visible()
    shots(desktop, "desktop-qr-en")

    phone.goto(stack.phone.url + "/?lang=en")
    expect(phone.locator("h1")).to_have_text("Scan the QR code")
    scan_by_paste(phone, stack, current_frame(desktop), "suzuki")
    step(phone, "confirm")
    expect(phone.locator("#asking")).to_contain_text("Kaga City e-Application (demo)")
    shots(phone, "phone-confirm-en", full_page=True)
    phone.click("#continue")
    enter_pin(phone, "9999")
    step(phone, "pin")
    expect(phone.locator("#notice")).to_have_text("Wrong PIN.")
    expect(phone.locator("#tries-left")).to_have_text("2 tries left")
    shots(phone, "phone-pin-en", full_page=True)
    enter_pin(phone, "1234")
    step(phone, "password")
    phone.fill("#secret", "ABC123")
    phone.click("#ok")
    step(phone, "done")
    expect(phone.locator("h1")).to_have_text("Done")
    desktop.wait_for_url("**/continue**")
    expect(desktop.locator("h1")).to_have_text("Consent to share your information")
    shots(desktop, "desktop-consent-en")
    after_consent(desktop, stack, shots, "en")
    frame_page = stack.idp.url + "/m/" + "A" * 43 + "?t=1&c=AAAA&lang=en"
    phone.goto(frame_page)
    shots(phone, "phone-landing-invalid-en", full_page=True)


def after_consent(desktop: Page, stack: Stack, shots: Shots, locale: str) -> None:
    """Agree, the service's page, the resident's portal, an error page."""
    desktop.click('button[value="approve"]')
    desktop.wait_for_url(stack.rp.url + "/me")
    shots(desktop, f"desktop-done-{locale}")
    desktop.goto(f"{stack.idp.url}/account?lang={locale}")
    expect(desktop.locator("h1")).to_be_visible()
    if "/account" in desktop.url:
        shots(desktop, f"desktop-portal-{locale}")
    desktop.goto(
        f"{stack.idp.url}/authorize?client_id=unknown&response_type=code&scope=openid&ui_locales={locale}"
    )
    expect(desktop.locator("#error-code")).to_have_text("invalid_client")
    shots(desktop, f"desktop-error-{locale}")
