"""Steps of the QR login in Chromium, shared by the browser tests."""

from __future__ import annotations

import re
from urllib.parse import quote

from phone_support import Stack
from playwright.sync_api import Page, expect

__all__ = ["current_frame", "enter_pin", "finish_on_desktop", "open_login", "scan", "step"]


def open_login(desktop: Page, stack: Stack) -> str:
    """The relying party's button, then the provider's login page with a QR code."""
    desktop.goto(stack.rp.url + "/")
    desktop.click("#login")
    expect(desktop).to_have_url(re.compile(re.escape(stack.idp.url) + r"/login/[A-Za-z0-9_-]+$"))
    expect(desktop.locator("#qr-image svg")).to_be_visible()
    expect(desktop.locator("#login-status")).to_have_attribute("data-state", "created")
    code = desktop.locator("#verification-code").inner_text().strip()
    assert re.fullmatch(r"[0-9]{4}", code), code
    return code


def current_frame(desktop: Page) -> str:
    """The frame on screen now, from the QR's text alternative."""
    frame = (desktop.locator("#qr-content").text_content() or "").strip()
    assert frame.startswith("http://127.0.0.1:") and "/m/" in frame, frame
    return frame


def scan(phone: Page, stack: Stack, frame: str) -> None:
    """What clicking the QR on the demo's page does: open the simulator with the frame."""
    phone.goto(f"{stack.phone.url}/?qr={quote(frame, safe='')}")


def step(phone: Page, name: str) -> None:
    expect(phone.locator("#screen")).to_have_attribute("data-step", name)


def enter_pin(phone: Page, pin: str) -> None:
    """PIN1 on the on-screen PIN pad."""
    expect(phone.locator("#pinpad")).to_be_visible()
    for digit in pin:
        phone.click(f'#pinpad [data-digit="{digit}"]')
    phone.click("#ok")


def finish_on_desktop(desktop: Page, stack: Stack) -> None:
    """The desktop page moved on by itself: consent, then the relying party's result."""
    desktop.wait_for_url(re.compile(r"/login/[A-Za-z0-9_-]+/continue"))
    desktop.click('button[value="approve"]')
    desktop.wait_for_url(stack.rp.url + "/me")
    body = desktop.locator("body")
    expect(body).to_contain_text("山田　太郎")
    expect(body).to_contain_text("石川県加賀市大聖寺南町ニ４１番地")
    expect(body).to_contain_text("1985-04-01")
    expect(body).to_contain_text("urn:myna-idp:acr:jpki-card-pin")
