"""The resident portal in headless Chromium: a resident signs in to a service and then to
/account with the virtual card on the phone simulator, and uses every portal action: the data
and its evidence, the release history, withdrawing a consent, reading the card again (the
signature password is asked), sessions and signing out everywhere, deleting the account.

Real servers on 127.0.0.1 (werkzeug threads): the provider on PostgreSQL and Redis, the demo
relying party, the phone simulator.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from a11y_support import assert_accessible, assert_reflows, assert_text_resizes, tab_through
from browser_steps import current_frame, enter_pin, finish_on_desktop, open_login, scan, step
from i18n_support import assert_translated
from login_support import LoginPki
from phone_support import Stack, start_stack
from playwright.sync_api import Page, expect

from idp.account.human_errors import PROBLEMS

pytestmark = [pytest.mark.browser, pytest.mark.redis]


def check(page: Page, name: str, locale: str = "ja") -> None:
    """axe-core (WCAG 2.2 A/AA) on the page as it is, and no untranslated English on a
    Japanese page (tests/browser/a11y_support.py, tests/i18n_support.py)."""
    assert_accessible(page, name)
    assert_translated(page.content(), locale, name)


def shot(page: Page, name: str) -> None:
    """With ``MYNA_SCREENSHOT_DIR`` set, keep a PNG of the page (docs/screenshots/portal-*)."""
    target = os.environ.get("MYNA_SCREENSHOT_DIR")  # noqa: TID251 - opt-in output directory
    if target:
        page.screenshot(path=str(Path(target) / f"portal-{name}.png"), full_page=True)


def keyboard_reaches(page: Page, name: str, *labels: str) -> None:
    """Tab reaches every control in ``labels`` with a visible focus, and no trap."""
    stops = tab_through(page)
    reached = [str(stop["label"]) for stop in stops]
    missing = [label for label in labels if not any(r.startswith(label) for r in reached)]
    assert not missing, f"{name}: Tab never reaches {missing}: {stops}"
    hidden = [stop for stop in stops if not stop["visible"]]
    assert not hidden, f"{name}: focus not visible on {hidden}"


@pytest.fixture
def stack(db_url: str, redis_url: str, login_pki: LoginPki, tmp_path: Path) -> Iterator[Stack]:
    with start_stack(db_url, redis_url, login_pki, tmp_path) as running:
        yield running


def card_on_the_phone(desktop: Page, phone: Page, stack: Stack, *, password: bool) -> None:
    """The provider's login page: scan its QR, continue, PIN1 (and the signature password)."""
    expect(desktop).to_have_url(re.compile(re.escape(stack.idp.url) + r"/login/[A-Za-z0-9_-]+$"))
    expect(desktop.locator("#qr-image svg")).to_be_visible()
    scan(phone, stack, current_frame(desktop))
    step(phone, "confirm")
    expect(phone.locator("#asking")).to_contain_text("マイナンバーカード アカウント")
    phone.click("#continue")
    step(phone, "pin")
    enter_pin(phone, "1234")
    if password:
        step(phone, "password")
        phone.fill("#secret", "ABC123")
        phone.click("#ok")
    step(phone, "done")


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_resident_uses_every_portal_action(desktop: Page, phone: Page, stack: Stack) -> None:
    account = stack.idp.url + "/account"
    # a service first (enrolment and consent), so there is a release and a consent to show
    open_login(desktop, stack)
    scan(phone, stack, current_frame(desktop))
    step(phone, "confirm")
    phone.click("#continue")
    step(phone, "pin")
    enter_pin(phone, "1234")
    step(phone, "password")
    phone.fill("#secret", "ABC123")
    phone.click("#ok")
    step(phone, "done")
    finish_on_desktop(desktop, stack)

    # the card login a minute ago is fresh enough for the portal: the data held
    desktop.goto(account)
    data = desktop.locator("#verified-data")
    expect(data).to_contain_text("山田　太郎")
    expect(data).to_contain_text("昭和60年4月1日（1985年4月1日）")
    expect(desktop.locator("#verification")).to_contain_text("JPKI")
    expect(desktop.locator("#credentials > li")).to_have_count(2)
    check(desktop, "portal overview")
    shot(desktop, "overview-ja")
    keyboard_reaches(desktop, "portal overview", "#signout")
    assert_reflows(desktop, "portal overview", ("#signout",))
    assert_text_resizes(desktop, "portal overview", ("#signout",))

    # releases: the service and what it received; the portal itself is not listed
    desktop.click('nav a[href$="/account/history"]')
    expect(desktop.locator("h1")).to_have_text("どのサービスに何を提供したか")
    expect(desktop.locator(".release-client")).to_have_count(1)
    expect(desktop.locator("#releases")).to_contain_text("加賀市 電子申請（デモ）")
    expect(desktop.locator("#releases")).to_contain_text("住所")
    check(desktop, "portal history")
    shot(desktop, "history-ja")

    # English on the same page
    desktop.click("header .lang a")
    expect(desktop.locator("html")).to_have_attribute("lang", "en")
    expect(desktop.locator("h1")).to_have_text("What was shared with which service")
    check(desktop, "portal history (en)", "en")
    shot(desktop, "history-en")
    desktop.click("header .lang a")
    expect(desktop.locator("html")).to_have_attribute("lang", "ja")

    # withdraw the consent
    desktop.click('nav a[href$="/account/consents"]')
    check(desktop, "portal consents")
    assert_reflows(desktop, "portal consents", ('#consents li[data-client="demo-rp"] button',))
    desktop.click('#consents li[data-client="demo-rp"] button')
    expect(desktop.locator("h1")).to_have_text("同意を取り消しました")
    check(desktop, "portal consent withdrawn")
    shot(desktop, "withdrawn-ja")
    desktop.click("text=アカウントに戻る")
    desktop.click('nav a[href$="/account/consents"]')
    expect(desktop.locator("#no-consents")).to_be_visible()
    check(desktop, "portal consents (none)")

    # read the card again: a card login that asks for the signature password too
    desktop.click('nav a[href$="/account/refresh"]')
    check(desktop, "portal refresh")
    desktop.click("#refresh-start")
    card_on_the_phone(desktop, phone, stack, password=True)
    desktop.wait_for_url(account)
    expect(desktop.locator("#refresh-pending")).to_have_count(0)

    # sessions: this browser is listed; sign out everywhere
    desktop.click('nav a[href$="/account/sessions"]')
    expect(desktop.locator('#sessions li[data-current="true"]')).to_have_count(1)
    check(desktop, "portal sessions")
    keyboard_reaches(desktop, "portal sessions", "#signout-everywhere")
    desktop.click("#signout-everywhere")
    expect(desktop.locator("h1")).to_have_text("すべての端末からログアウトしました")
    check(desktop, "portal signed out everywhere")
    desktop.goto(account)
    expect(desktop).to_have_url(re.compile(re.escape(stack.idp.url) + r"/login/"))

    # sign in again and delete the account
    card_on_the_phone(desktop, phone, stack, password=False)
    desktop.wait_for_url(account)
    desktop.click('nav a[href$="/account/delete"]')
    expect(desktop.locator("#kept")).to_contain_text("監査")
    check(desktop, "portal delete")
    shot(desktop, "delete-ja")
    keyboard_reaches(desktop, "portal delete", "#confirm", "#delete-account")
    desktop.click("#delete-account")  # not confirmed yet
    expect(desktop.locator("#confirm-error")).to_be_visible()
    check(desktop, "portal delete (not confirmed)")
    desktop.check("#confirm")
    desktop.click("#delete-account")
    expect(desktop.locator("h1")).to_have_text("アカウントを削除しました")
    check(desktop, "portal deleted")
    desktop.goto(account)
    expect(desktop).to_have_url(re.compile(re.escape(stack.idp.url) + r"/login/"))


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_every_problem_page_in_both_languages(desktop: Page, stack: Stack) -> None:
    desktop.goto(stack.idp.url + "/account/problem/pin_blocked")
    expect(desktop.locator("h1")).to_have_text("暗証番号がロックされています")
    expect(desktop.locator("ol.todo li")).to_have_count(2)
    expect(desktop.locator("ol.todo")).to_contain_text("コンビニエンスストア")
    desktop.click("header .lang a")
    expect(desktop.locator("h1")).to_have_text("Your PIN is locked")
    for code in sorted(PROBLEMS):
        for locale in ("ja", "en"):
            desktop.goto(f"{stack.idp.url}/account/problem/{code}?lang={locale}")
            expect(desktop.locator("#failure")).to_have_attribute("data-code", code)
            check(desktop, f"problem {code} ({locale})", locale)
            if code == "pin_blocked":
                shot(desktop, f"problem-pin-blocked-{locale}")
    assert_reflows(desktop, "problem page", ("h1",))
