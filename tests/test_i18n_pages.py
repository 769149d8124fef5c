"""Every resident page rendered in Japanese and English: the Japanese one shows no English msgid
(an untranslated text), the English one is English; dates in each language's style."""

from __future__ import annotations

import re
from datetime import date

import pytest
from flask import Flask
from i18n_support import assert_translated, english_sentences
from login_support import Browser, LoginPki, app, device_login, login_pki, rp, shared_pki
from login_support import virtual_card as card_for
from provider_support import RelyingParty

from idp.i18n import format_birthdate, format_day, wareki

__all__ = ["app", "login_pki", "rp", "shared_pki"]

pytestmark = pytest.mark.redis


def _verified(rp: RelyingParty, login_pki: LoginPki, **overrides: str) -> tuple[Browser, object]:
    browser = Browser(rp)
    started = browser.start(rp.authorization_request(**overrides))
    _, client = card_for(login_pki, login_pki.credentials("yamada"))
    device_login(rp.app, started.handoff_url, client)
    return browser, started


def test_the_checker_knows_sentences() -> None:
    assert "Time is up. Please start the sign-in again." in english_sentences()
    with pytest.raises(AssertionError):
        assert_translated('<html lang="ja"><p>Time is up. Please start the sign-in again.', "ja")
    assert_translated('<html lang="ja"><p>時間切れです。', "ja")


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_login_page(rp: RelyingParty, locale: str) -> None:
    started = Browser(rp).start(rp.authorization_request(ui_locales=locale, scope="openid name"))
    assert_translated(started.page, locale, "login")


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_consent_page_with_dates(rp: RelyingParty, login_pki: LoginPki, locale: str) -> None:
    browser, started = _verified(
        rp, login_pki, ui_locales=locale, scope="openid name address birthdate gender"
    )
    page = browser.proceed(started).get_data(as_text=True)  # type: ignore[attr-defined]
    assert_translated(page, locale, "consent")
    if locale == "ja":
        assert "昭和60年4月1日（1985年4月1日）" in page
        assert re.search(r"確認日時: \d{4}年\d{1,2}月\d{1,2}日 \d\d:\d\d", page), page
    else:
        assert "1 April 1985" in page
        assert re.search(r"verified at \d{1,2} [A-Z][a-z]+ \d{4}, \d\d:\d\d JST", page), page


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_phone_pages(rp: RelyingParty, locale: str) -> None:
    started = Browser(rp).start(rp.authorization_request())
    frame = re.search(r'<code id="qr-content" lang="en">([^<]+)</code>', started.page)
    assert frame
    path = frame.group(1).replace("&amp;", "&").split("/m/", 1)[1]
    valid = rp.http.get(f"/m/{path}&lang={locale}")
    assert valid.status_code == 200
    assert_translated(valid.get_data(as_text=True), locale, "phone")
    invalid = rp.http.get(f"/m/{'A' * 43}?t=1&c=AAAA&lang={locale}")
    assert invalid.status_code == 400
    assert_translated(invalid.get_data(as_text=True), locale, "phone invalid")


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_message_pages(rp: RelyingParty, app: Flask, locale: str) -> None:
    started = Browser(rp).start(rp.authorization_request(ui_locales=locale))
    stranger = app.test_client()
    refused = stranger.get(f"/login/{started.transaction_id}?lang={locale}")
    assert refused.status_code == 403
    assert_translated(refused.get_data(as_text=True), locale, "not your login")
    cancel = rp.http.post(f"/login/{started.transaction_id}/cancel", data={"csrf": "wrong"})
    assert cancel.status_code == 400
    assert_translated(cancel.get_data(as_text=True), locale, "csrf")


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_oauth_error_page(app: Flask, locale: str) -> None:
    response = app.test_client().get(
        f"/authorize?client_id=unknown&response_type=code&ui_locales={locale}"
    )
    assert response.status_code in (400, 401)
    page = response.get_data(as_text=True)
    assert_translated(page, locale, "oauth error")
    assert ("ログインできませんでした" in page) == (locale == "ja")
    # the switch goes through /language/<locale> (back to this URL with lang): the page never
    # repeats the request it refuses
    assert 'href="/language/' + ("en" if locale == "ja" else "ja") + '"' in page
    assert "client_id=unknown" not in page


def test_date_formats() -> None:
    assert format_day(date(2026, 11, 29), "ja") == "2026年11月29日"
    assert format_day(date(2026, 11, 29), "en") == "29 November 2026"
    assert wareki(date(1985, 4, 1)) == "昭和60年4月1日"
    assert wareki(date(2019, 5, 1)) == "令和元年5月1日"
    assert wareki(date(1989, 1, 7)) == "昭和64年1月7日"
    assert wareki(date(1989, 1, 8)) == "平成元年1月8日"
    assert format_birthdate(date(1985, 4, 1), "ja") == "昭和60年4月1日（1985年4月1日）"
    assert format_birthdate(date(1985, 4, 1), "en") == "1 April 1985"
