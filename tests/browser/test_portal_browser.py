"""The resident portal in headless Chromium: a resident signs in to a service and then to
/account with the virtual card on the phone simulator, and uses every portal action: the data
and its evidence, the release history, withdrawing a consent, reading the card again (the
signature password is asked), sessions and signing out everywhere, deleting the account.

Real servers on 127.0.0.1 (werkzeug threads): the provider on PostgreSQL and Redis, the demo
relying party, the phone simulator.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_steps import current_frame, enter_pin, finish_on_desktop, open_login, scan, step
from login_support import LoginPki
from phone_support import Stack, start_stack
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.redis]


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
    expect(data).to_contain_text("1985年（昭和60年）4月1日")
    expect(desktop.locator("#verification")).to_contain_text("JPKI")
    expect(desktop.locator("#credentials > li")).to_have_count(2)

    # releases: the service and what it received; the portal itself is not listed
    desktop.click('nav a[href$="/account/history"]')
    expect(desktop.locator("h1")).to_have_text("どのサービスに何を提供したか")
    expect(desktop.locator(".release-client")).to_have_count(1)
    expect(desktop.locator("#releases")).to_contain_text("加賀市 電子申請（デモ）")
    expect(desktop.locator("#releases")).to_contain_text("住所")

    # English on the same page
    desktop.click("header .lang a")
    expect(desktop.locator("html")).to_have_attribute("lang", "en")
    expect(desktop.locator("h1")).to_have_text("What was shared with which service")
    desktop.click("header .lang a")
    expect(desktop.locator("html")).to_have_attribute("lang", "ja")

    # withdraw the consent
    desktop.click('nav a[href$="/account/consents"]')
    desktop.click('#consents li[data-client="demo-rp"] button')
    expect(desktop.locator("h1")).to_have_text("同意を取り消しました")
    desktop.click("text=アカウントに戻る")
    desktop.click('nav a[href$="/account/consents"]')
    expect(desktop.locator("#no-consents")).to_be_visible()

    # read the card again: a card login that asks for the signature password too
    desktop.click('nav a[href$="/account/refresh"]')
    desktop.click("#refresh-start")
    card_on_the_phone(desktop, phone, stack, password=True)
    desktop.wait_for_url(account)
    expect(desktop.locator("#refresh-pending")).to_have_count(0)

    # sessions: this browser is listed; sign out everywhere
    desktop.click('nav a[href$="/account/sessions"]')
    expect(desktop.locator('#sessions li[data-current="true"]')).to_have_count(1)
    desktop.click("#signout-everywhere")
    expect(desktop.locator("h1")).to_have_text("すべての端末からログアウトしました")
    desktop.goto(account)
    expect(desktop).to_have_url(re.compile(re.escape(stack.idp.url) + r"/login/"))

    # sign in again and delete the account
    card_on_the_phone(desktop, phone, stack, password=False)
    desktop.wait_for_url(account)
    desktop.click('nav a[href$="/account/delete"]')
    expect(desktop.locator("#kept")).to_contain_text("監査")
    desktop.click("#delete-account")  # not confirmed yet
    expect(desktop.locator("#confirm-error")).to_be_visible()
    desktop.check("#confirm")
    desktop.click("#delete-account")
    expect(desktop.locator("h1")).to_have_text("アカウントを削除しました")
    desktop.goto(account)
    expect(desktop).to_have_url(re.compile(re.escape(stack.idp.url) + r"/login/"))


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_problem_page_in_both_languages(desktop: Page, stack: Stack) -> None:
    desktop.goto(stack.idp.url + "/account/problem/pin_blocked")
    expect(desktop.locator("h1")).to_have_text("暗証番号がロックされています")
    expect(desktop.locator("ol.todo li")).to_have_count(2)
    expect(desktop.locator("ol.todo")).to_contain_text("コンビニエンスストア")
    desktop.click("header .lang a")
    expect(desktop.locator("h1")).to_have_text("Your PIN is locked")
