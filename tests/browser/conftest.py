"""Headless Chromium (Debian's, through Playwright; never a downloaded browser) for the
end-to-end tests of the QR flow. Every module here is marked ``browser`` (and ``redis``):
without ``MYNA_TEST_CHROMIUM`` the tests are skipped locally and fail in CI (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from login_support import login_pki, shared_pki

__all__ = ["login_pki", "shared_pki"]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
TIMEOUT_MS = 15_000
DESKTOP = {"viewport": {"width": 1024, "height": 800}}
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
}


@pytest.fixture(scope="session")
def chromium(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)  # a loaded 2-core CI machine, not a slow page

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def desktop(chromium: Any) -> Iterator[Any]:
    """The resident's computer: a desktop-sized page, Japanese."""
    context = chromium.new_context(locale="ja-JP", **DESKTOP)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def phone(chromium: Any) -> Iterator[Any]:
    """The resident's phone: a phone-sized touch page showing the simulator."""
    context = chromium.new_context(locale="ja-JP", **PHONE)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()
