"""WCAG 2.2 AA in headless Chromium: axe-core on every resident page and every state of the
login page, keyboard-only operation, reflow at 320 CSS px, 200 % text, and the extendable
login (2.2.1). See docs/accessibility.md.

Every Japanese page is also checked for untranslated English (tests/i18n_support.py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from a11y_support import assert_accessible, assert_reflows, assert_text_resizes, tab_through
from browser_steps import current_frame, enter_pin, open_login, scan, step
from i18n_support import assert_translated
from login_support import LoginPki
from phone_support import Stack, start_stack
from playwright.sync_api import Page, expect

from idp.extensions import get_settings, get_store
from idp.handoff.transaction import TransactionStore

pytestmark = [pytest.mark.browser, pytest.mark.redis]


@pytest.fixture
def stack(redis_url: str, login_pki: LoginPki, tmp_path: Path) -> Iterator[Stack]:
    database = f"sqlite:///{tmp_path / 'idp.sqlite3'}"
    with start_stack(database, redis_url, login_pki, tmp_path) as running:
        yield running


def check(page: Page, name: str, locale: str = "ja") -> None:
    """axe on the page as it is, and no untranslated English on a Japanese page."""
    assert_accessible(page, name)
    assert_translated(page.content(), locale, name)


def with_lang(url: str, locale: str) -> str:
    """``url`` with ``lang=locale`` instead of any ``lang`` it had."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "lang"] + [("lang", locale)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _store(stack: Stack) -> TransactionStore:
    return TransactionStore(get_store(), ttl=get_settings().login_ttl)


def _transaction_id(desktop: Page) -> str:
    match = re.search(r"/login/([A-Za-z0-9_-]+)", desktop.url)
    assert match, desktop.url
    return match.group(1)


def _to_pin(phone: Page, stack: Stack, desktop: Page) -> None:
    scan(phone, stack, current_frame(desktop))
    step(phone, "confirm")
    phone.click("#continue")
    step(phone, "pin")


# -- the login page, state by state -------------------------------------------------------------


def test_every_state_of_a_successful_login(desktop: Page, phone: Page, stack: Stack) -> None:
    code = open_login(desktop, stack)
    check(desktop, "login: QR shown")
    # the QR's non-visual alternative: an image named with the code, and its text
    expect(desktop.get_by_role("img", name=re.compile(code))).to_be_visible()
    expect(desktop.get_by_role("group", name="確認コード")).to_contain_text(code)
    desktop.click("#qr-enlarge")
    desktop.locator("#qr-text-box summary").click()
    check(desktop, "login: QR enlarged, text shown")

    scan(phone, stack, current_frame(desktop))
    step(phone, "confirm")
    expect(desktop.locator("#login-status")).to_have_attribute("data-state", "picked_up")
    check(desktop, "login: picked up")

    with stack.idp.app.app_context():
        store = _store(stack)
        transaction = store.get(_transaction_id(desktop))
        assert transaction is not None
        store.announce(transaction, "checking")  # what the device API says while it verifies
    expect(desktop.locator("#login-status")).to_have_attribute("data-state", "checking")
    expect(desktop.locator("#login-status")).to_have_text("カードを確認しています…")
    check(desktop, "login: checking")

    phone.click("#continue")
    enter_pin(phone, "1234")
    step(phone, "password")
    expect(desktop.locator("#login-status")).to_have_attribute("data-state", "enroll_needed")
    check(desktop, "login: enrollment needed")
    phone.fill("#secret", "ABC123")
    phone.click("#ok")
    step(phone, "done")

    desktop.wait_for_url(re.compile(r"/login/[A-Za-z0-9_-]+/continue"))
    check(desktop, "consent")
    buttons = ('button[value="approve"]', 'button[value="deny"]')
    assert_reflows(desktop, "consent", buttons)
    assert_text_resizes(desktop, "consent", buttons)
    desktop.goto(with_lang(desktop.url, "en"))
    check(desktop, "consent (en)", "en")
    desktop.click('button[value="approve"]')
    desktop.wait_for_url(stack.rp.url + "/me")
    check(desktop, "done: the relying party's page")


def test_wrong_and_blocked_pin(desktop: Page, phone: Page, stack: Stack) -> None:
    open_login(desktop, stack)
    _to_pin(phone, stack, desktop)
    enter_pin(phone, "9999")
    step(phone, "pin")
    expect(phone.locator("#notice")).to_have_text("暗証番号が違います。")
    check(desktop, "login: PIN wrong (waiting for the card)")
    enter_pin(phone, "0000")
    step(phone, "last_try")
    phone.click("#use-last-try")
    enter_pin(phone, "1111")
    expect(desktop.locator("#failure, #message").first).to_be_visible()
    expect(desktop.locator("body")).to_contain_text("ロック")
    check(desktop, "failure: PIN blocked")


def test_revoked_certificate(
    desktop: Page, phone: Page, redis_url: str, login_pki: LoginPki, tmp_path: Path
) -> None:
    login_pki.revoke("auth", login_pki.credentials("yamada").auth_certificate.serial_number)
    database = f"sqlite:///{tmp_path / 'idp.sqlite3'}"
    with start_stack(database, redis_url, login_pki, tmp_path) as stack:
        open_login(desktop, stack)
        _to_pin(phone, stack, desktop)
        enter_pin(phone, "1234")
        expect(desktop.locator("body")).to_contain_text("失効", timeout=30_000)
        check(desktop, "failure: certificate revoked")
        desktop.goto(with_lang(desktop.url, "en"))
        check(desktop, "failure: certificate revoked (en)", "en")


def test_expired_login_and_declined_consent(desktop: Page, phone: Page, stack: Stack) -> None:
    open_login(desktop, stack)
    with stack.idp.app.app_context():
        store = _store(stack)
        transaction = store.get(_transaction_id(desktop))
        assert transaction is not None
        store.update(transaction, expires_at=int(time.time()) - 1)
    desktop.reload()
    expect(desktop.locator("body")).to_contain_text("時間切れ")
    check(desktop, "failure: expired")

    open_login(desktop, stack)
    _to_pin(phone, stack, desktop)
    enter_pin(phone, "1234")
    step(phone, "password")
    phone.fill("#secret", "ABC123")
    phone.click("#ok")
    desktop.wait_for_url(re.compile(r"/login/[A-Za-z0-9_-]+/continue"))
    desktop.click('button[value="deny"]')
    desktop.wait_for_url(re.compile(re.escape(stack.rp.url) + r"/callback"))
    expect(desktop.locator("#error-code")).to_have_text("access_denied")
    check(desktop, "declined consent: the relying party's page")


# -- other pages ----------------------------------------------------------------------------------


def test_error_phone_and_forms_pages(desktop: Page, phone: Page, stack: Stack) -> None:
    for locale in ("ja", "en"):
        desktop.goto(f"{stack.idp.url}/authorize?client_id=nobody&ui_locales={locale}")
        expect(desktop.locator("#error-code")).to_be_visible()
        check(desktop, f"OAuth error page ({locale})", locale)

    open_login(desktop, stack)
    frame = current_frame(desktop)
    phone.goto(frame)
    expect(phone.locator("#app-link")).to_be_visible()
    check(phone, "phone landing page")
    assert_reflows(phone, "phone landing page", ("#app-link",))
    phone.goto(with_lang(frame, "en"))
    check(phone, "phone landing page (en)", "en")
    phone.goto(stack.idp.url + "/m/" + "A" * 43 + "?t=1&c=AAAA&lang=ja")
    check(phone, "phone landing page: invalid QR")
    phone.goto(desktop.url)  # another browser: not its login
    expect(phone.locator("h1")).to_be_visible()
    check(phone, "not your login")

    for path in ("/", "/forms", "/staff", "/staff/forms"):
        desktop.goto(stack.rp.url + path)
        check(desktop, f"relying party {path}")
    desktop.goto(stack.rp.url + "/forms?lang=en")
    check(desktop, "relying party /forms (en)", "en")


# -- keyboard, zoom, text size --------------------------------------------------------------------


def test_keyboard_only_login(desktop: Page, phone: Page, stack: Stack) -> None:
    open_login(desktop, stack)
    order = tab_through(desktop)
    labels = [item["label"] for item in order]
    for wanted in ("a", "#qr-enlarge", "#app-link", "#extend-button", "#continue"):
        assert any(label.startswith(wanted) for label in labels), (wanted, labels)
    assert labels.index("#qr-enlarge") < labels.index("#app-link") < labels.index("#continue")
    hidden_focus = [item for item in order if not item["visible"]]
    assert not hidden_focus, hidden_focus  # every focused control shows a focus ring
    stops = [(item["label"], item["text"]) for item in order]
    assert len(stops) == len(set(stops)), stops  # no trap: each reached once per round

    # the skip link is the first stop and moves to the main content
    desktop.keyboard.press("Tab")
    assert desktop.evaluate("() => document.activeElement.className") == "skip"
    desktop.keyboard.press("Enter")
    expect(desktop).to_have_url(re.compile(r"#main$"))

    # the QR enlarger toggles with Space, the text alternative opens with Enter
    desktop.focus("#qr-enlarge")
    desktop.keyboard.press("Space")
    expect(desktop.locator("#qr-enlarge")).to_have_attribute("aria-pressed", "true")
    desktop.focus("#qr-text-box summary")
    desktop.keyboard.press("Enter")
    expect(desktop.locator("#qr-content")).to_be_visible()

    scan(phone, stack, current_frame(desktop))
    step(phone, "confirm")
    phone.click("#continue")
    enter_pin(phone, "1234")
    phone.fill("#secret", "ABC123")
    phone.click("#ok")
    desktop.wait_for_url(re.compile(r"/login/[A-Za-z0-9_-]+/continue"))
    consent = [item["label"] for item in tab_through(desktop)]
    assert "button[name=decision][value=approve]" in consent, consent
    while desktop.evaluate("() => document.activeElement.value") != "approve":
        desktop.keyboard.press("Tab")
    desktop.keyboard.press("Enter")
    desktop.wait_for_url(stack.rp.url + "/me")


def test_reflow_at_400_percent_and_text_at_200_percent(desktop: Page, stack: Stack) -> None:
    open_login(desktop, stack)
    controls = ("#qr-image svg", "#qr-enlarge", "#app-link", "#continue", "#extend-button")
    assert_reflows(desktop, "login page", controls)
    assert_text_resizes(desktop, "login page", ("#qr-enlarge", "#continue", "#extend-button"))
    desktop.set_viewport_size({"width": 320, "height": 640})
    assert_accessible(desktop, "login page at 320 px")
    desktop.set_viewport_size({"width": 1024, "height": 800})

    desktop.goto(f"{stack.idp.url}/authorize?client_id=nobody")
    assert_reflows(desktop, "OAuth error page", ("#error-code",))
    assert_text_resizes(desktop, "OAuth error page", ("#error-code",))
    desktop.goto(stack.rp.url + "/forms")
    assert_reflows(desktop, "forms", ("#form-list a",))


# -- more time (WCAG 2.2.1) ---------------------------------------------------------------------


@pytest.fixture
def short_stack(redis_url: str, login_pki: LoginPki, tmp_path: Path) -> Iterator[Stack]:
    """Logins of 70 s: the page warns within seconds (the warning comes 60 s before)."""
    database = f"sqlite:///{tmp_path / 'idp.sqlite3'}"
    with start_stack(
        database, redis_url, login_pki, tmp_path, idp_settings={"LOGIN_TTL": 70}
    ) as running:
        yield running


def test_the_warning_is_announced_and_the_keyboard_extends(
    desktop: Page, short_stack: Stack
) -> None:
    open_login(desktop, short_stack)
    message = desktop.locator("#extend-message")
    expect(message).to_have_attribute("aria-live", "assertive")
    expect(message).to_contain_text("残り1分を切りました", timeout=30_000)
    check(desktop, "login: time running out")
    desktop.focus("#extend-button")
    desktop.keyboard.press("Space")
    expect(message).to_contain_text("時間を延長しました")
    expect(desktop.locator("#expires-note")).to_contain_text("2 分")
    check(desktop, "login: extended")
    with short_stack.idp.app.app_context():
        transaction = _store(short_stack).get(_transaction_id(desktop))
    assert transaction is not None and transaction.extensions == 1
