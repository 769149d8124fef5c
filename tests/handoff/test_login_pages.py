"""The browser side: the login page, its cookie, status, consent, cancel and retry."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from login_support import (
    Browser,
    LoginPki,
    device_login,
    dispose,
    make_login_app,
    software_token,
    virtual_card,
)
from provider_support import ISSUER, RelyingParty, callback_params

from idp.extensions import get_settings, get_store
from idp.handoff.device_client import FixedPrompts
from idp.handoff.transaction import TransactionStore


def verified_login(
    rp: RelyingParty, login_pki: LoginPki, resident: str = "yamada", **overrides: str | None
) -> tuple[Browser, Any]:
    browser = Browser(rp)
    started = browser.start(rp.authorization_request(**overrides))
    _, client = virtual_card(login_pki, login_pki.credentials(resident))
    device_login(rp.app, started.handoff_url, client)
    return browser, started


def lang_of(html: str) -> str:
    match = re.search(r'<html lang="([a-z]+)">', html)
    assert match, html[:200]
    return match.group(1)


# -- starting -------------------------------------------------------------------------------------


def test_authorize_redirects_to_the_login_page_with_a_binding_cookie(rp: RelyingParty) -> None:
    response = rp.authorize(rp.authorization_request())
    assert response.status_code == 303
    assert re.fullmatch(r"/login/[A-Za-z0-9_-]{43}", response.headers["Location"])
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("myna-login=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # http loopback development issuer


def test_https_issuer_uses_a_host_prefixed_secure_cookie(
    db_url: str, redis_url: str, login_pki: LoginPki
) -> None:
    app = make_login_app(db_url, redis_url, login_pki, ISSUER="https://idp.example.jp")
    try:
        rp = RelyingParty(app)
        request = rp.authorization_request()
        response = rp.http.get(
            "/authorize", query_string=request.params, base_url="https://idp.example.jp"
        )
        assert response.status_code == 303
        cookie = response.headers["Set-Cookie"]
        assert cookie.startswith("__Host-myna-login=")
        assert "Secure" in cookie and "Path=/" in cookie and "Domain" not in cookie
        page = rp.http.get(response.headers["Location"], base_url="https://idp.example.jp")
        assert page.status_code == 200
        assert "idp card login https://idp.example.jp/device/v1/transactions/" in page.get_data(
            as_text=True
        )
    finally:
        dispose(app)


def test_a_second_login_in_the_same_browser_reuses_the_browser_key(rp: RelyingParty) -> None:
    browser = Browser(rp)
    first = browser.start(rp.authorization_request())
    second = browser.start(rp.authorization_request())
    assert first.transaction_id != second.transaction_id
    assert browser.status(first)["state"] == "created"
    assert browser.status(second)["state"] == "created"


def test_page_is_japanese_and_shows_who_asks_and_the_command(rp: RelyingParty) -> None:
    started = Browser(rp).start(rp.authorization_request(scope="openid name address"))
    html = started.page
    assert lang_of(html) == "ja"
    assert "加賀市 電子申請 がマイナンバーカードでのログインを求めています。" in html
    assert "<li>氏名</li>" in html and "<li>住所</li>" in html
    assert "生年月日" not in html and "性別" not in html
    assert f"idp card login {ISSUER}/device/v1/transactions/" in html
    assert 'role="status" aria-live="polite"' in html
    assert 'lang="en" hreflang="en"' in html  # the English toggle
    assert '<script src="/static/login.js" defer></script>' in html


def test_page_shows_the_registered_logo_only_when_there_is_one(
    app: Flask, rp: RelyingParty
) -> None:
    from idp.storage.base import db
    from idp.storage.clients import get_client

    without = Browser(rp).start(rp.authorization_request(scope="openid name")).page
    assert 'class="client-logo"' not in without
    with app.app_context():
        client = get_client(rp.client_id)
        assert client is not None
        client.logo_uri = "https://city.kaga.example/logo.png"
        db.session.commit()
    html = Browser(rp).start(rp.authorization_request(scope="openid name")).page
    assert '<img class="client-logo" src="https://city.kaga.example/logo.png" alt=""' in html


def test_logo_must_be_https() -> None:
    from idp.oidc.clients import ClientRegistrationError, new_client

    for bad in ("http://city.example/logo.png", "javascript:alert(1)", 'https://x.example/"a'):
        with pytest.raises(ClientRegistrationError, match="logo_uri"):
            new_client(
                name="RP",
                redirect_uris=["https://rp.example/cb"],
                auth_method="none",
                logo_uri=bad,
            )


def test_english_by_toggle_or_ui_locales(rp: RelyingParty) -> None:
    browser = Browser(rp)
    started = browser.start(rp.authorization_request())
    html = browser.http.get(f"/login/{started.transaction_id}?lang=en").get_data(as_text=True)
    assert lang_of(html) == "en"
    assert "Kaga City e-Application asks you to sign in" in html
    assert browser.status(started)["message"] == "Waiting for the card."
    other = browser.start(rp.authorization_request(ui_locales="en-US ja"))
    assert lang_of(other.page) == "en"


def test_security_headers(rp: RelyingParty) -> None:
    browser = Browser(rp)
    started = browser.start(rp.authorization_request())
    response = browser.http.get(f"/login/{started.transaction_id}")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_static_assets_are_served_locally(rp: RelyingParty) -> None:
    for name in ("login.js", "myna.css"):
        response = rp.http.get(f"/static/{name}")
        assert response.status_code == 200
        response.close()


# -- binding --------------------------------------------------------------------------------------


def test_another_browser_gets_nothing(rp: RelyingParty) -> None:
    started = Browser(rp).start(rp.authorization_request())
    stranger = rp.app.test_client()
    page = stranger.get(f"/login/{started.transaction_id}")
    assert page.status_code == 403
    assert "このブラウザで開始されたものではありません" in page.get_data(as_text=True)
    status = stranger.get(started.status_path)
    assert status.status_code == 403 and status.get_json()["error"] == "forbidden"
    stranger.set_cookie("myna-login", "x" * 43)
    assert stranger.get(started.status_path).status_code == 403
    assert stranger.get(started.continue_path).status_code == 403


def test_unknown_transaction_says_expired(rp: RelyingParty) -> None:
    response = rp.http.get("/login/" + "A" * 43 + "/status")
    assert response.status_code == 410 and response.get_json()["state"] == "expired"
    page = rp.http.get("/login/" + "A" * 43)
    assert page.status_code == 410
    assert "時間切れです" in page.get_data(as_text=True)


# -- continuing, consent --------------------------------------------------------------------------


def test_continue_before_the_card_goes_back_to_the_page(rp: RelyingParty) -> None:
    browser = Browser(rp)
    started = browser.start(rp.authorization_request())
    response = browser.proceed(started)
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == f"/login/{started.transaction_id}"


def test_consent_lists_exactly_the_requested_items(rp: RelyingParty, login_pki: LoginPki) -> None:
    browser, started = verified_login(rp, login_pki, scope="openid name birthdate")
    assert browser.status(started)["state"] == "card_verified"
    page = browser.proceed(started)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert re.findall(r'data-scope="([a-z]+)"', html) == ["name", "birthdate"]
    assert "山田　太郎" in html and "1985年4月1日" in html
    assert "石川県加賀市" not in html and "男性" not in html
    english = browser.http.get(started.continue_path + "?lang=en").get_data(as_text=True)
    assert "1 April 1985" in english and "Date of birth" in english


def test_consent_needs_the_csrf_token(rp: RelyingParty, login_pki: LoginPki) -> None:
    browser, started = verified_login(rp, login_pki)
    browser.proceed(started)
    path = f"/login/{started.transaction_id}/consent"
    for form in ({"decision": "approve"}, {"decision": "approve", "csrf": "forged"}):
        response = browser.http.post(path, data=form)
        assert response.status_code == 400
    assert browser.status(started)["state"] == "card_verified"


def test_consent_token_of_another_browser_is_refused(rp: RelyingParty, login_pki: LoginPki) -> None:
    browser, started = verified_login(rp, login_pki)
    token = Browser.csrf(browser.proceed(started).get_data(as_text=True))
    stranger = rp.app.test_client()
    response = stranger.post(
        f"/login/{started.transaction_id}/consent", data={"csrf": token, "decision": "approve"}
    )
    assert response.status_code == 403


def test_denying_consent_returns_access_denied(rp: RelyingParty, login_pki: LoginPki) -> None:
    request = rp.authorization_request()
    browser = Browser(rp)
    started = browser.start(request)
    _, client = virtual_card(login_pki, login_pki.credentials("yamada"))
    device_login(rp.app, started.handoff_url, client)
    page = browser.proceed(started).get_data(as_text=True)
    response = browser.consent(started, page, "deny")
    assert response.status_code == 302
    params = callback_params(response.headers["Location"])
    assert params["error"] == ["access_denied"]
    assert params["state"] == [request.state]
    assert params["iss"] == [ISSUER]
    assert browser.status(started)["state"] == "cancelled"


def test_approving_issues_one_code_only(rp: RelyingParty, login_pki: LoginPki) -> None:
    request = rp.authorization_request()
    browser = Browser(rp)
    started = browser.start(request)
    _, client = virtual_card(login_pki, login_pki.credentials("yamada"))
    device_login(rp.app, started.handoff_url, client)
    page = browser.proceed(started).get_data(as_text=True)
    first = browser.consent(started, page)
    assert first.status_code == 302
    params = callback_params(first.headers["Location"])
    assert params["state"] == [request.state] and params["iss"] == [ISSUER] and params["code"]
    again = browser.consent(started, page)
    assert again.status_code == 409
    assert browser.proceed(started).status_code == 200  # the "finished" page, no new code
    assert "code=" not in (browser.proceed(started).headers.get("Location") or "")
    assert browser.status(started)["state"] == "finished"


def test_remembered_consent_skips_the_page_unless_prompt_consent(
    rp: RelyingParty, login_pki: LoginPki
) -> None:
    browser, started = verified_login(rp, login_pki, scope="openid name address")
    browser.consent(started, browser.proceed(started).get_data(as_text=True))
    # the same items again (a new card login): straight back to the relying party
    browser, started = verified_login(rp, login_pki, scope="openid name", prompt="login")
    response = browser.proceed(started)
    assert response.status_code == 302 and "code=" in response.headers["Location"]
    # prompt=consent shows the page anyway
    browser, started = verified_login(rp, login_pki, scope="openid name", prompt="consent")
    assert browser.proceed(started).status_code == 200
    # a new item needs consent again
    browser, started = verified_login(rp, login_pki, scope="openid name gender")
    page = browser.proceed(started)
    assert page.status_code == 200
    assert re.findall(r'data-scope="([a-z]+)"', page.get_data(as_text=True)) == ["name", "gender"]


def test_openid_only_needs_no_consent_page(rp: RelyingParty, login_pki: LoginPki) -> None:
    browser, started = verified_login(rp, login_pki, scope="openid")
    response = browser.proceed(started)
    assert response.status_code == 302 and "code=" in response.headers["Location"]


# -- cancel, failure, retry -----------------------------------------------------------------------


def test_cancel_from_the_login_page(rp: RelyingParty) -> None:
    request = rp.authorization_request()
    browser = Browser(rp)
    started = browser.start(request)
    response = browser.http.post(
        f"/login/{started.transaction_id}/cancel", data={"csrf": Browser.csrf(started.page)}
    )
    assert response.status_code == 302
    params = callback_params(response.headers["Location"])
    assert params["error"] == ["access_denied"] and params["state"] == [request.state]
    # the device can no longer answer
    answer = rp.app.test_client().get(urlsplit(started.handoff_url).path)
    assert (answer.status_code, answer.get_json()["error"]) == (409, "transaction_closed")


def test_failed_card_shows_why_and_retry_starts_a_fresh_login(
    rp: RelyingParty, login_pki: LoginPki
) -> None:
    browser = Browser(rp)
    started = browser.start(rp.authorization_request())
    device = rp.app.test_client(use_cookies=False)
    path = urlsplit(started.handoff_url).path
    doc = device.get(path).get_json()
    expired = login_pki.credentials("yamada", "expired")
    assert device.post(path + "/response", json=software_token(expired, doc)).status_code == 422
    page = browser.http.get(f"/login/{started.transaction_id}")
    html = page.get_data(as_text=True)
    assert "カードの電子証明書の有効期限が切れています。" in html
    assert 'data-code="certificate_expired"' in html
    retry = browser.http.post(
        f"/login/{started.transaction_id}/retry", data={"csrf": Browser.csrf(html)}
    )
    assert retry.status_code == 303
    fresh = urlsplit(retry.headers["Location"]).path.rsplit("/", 1)[1]
    assert fresh != started.transaction_id
    html = browser.http.get(retry.headers["Location"]).get_data(as_text=True)
    assert "idp card login" in html
    # the fresh login finishes normally with a good card
    handoff = re.search(r"idp card login ([^\s<]+)", html)
    assert handoff
    _, client = virtual_card(login_pki, login_pki.credentials("yamada"))
    device_login(rp.app, handoff.group(1), client)
    assert browser.http.get(f"/login/{fresh}/status").get_json()["state"] == "card_verified"


def test_retries_are_limited(rp: RelyingParty, login_pki: LoginPki) -> None:
    browser = Browser(rp)
    started = browser.start(rp.authorization_request())
    transaction_id = started.transaction_id
    handoff = started.handoff_url
    for attempt in range(4):
        device = rp.app.test_client(use_cookies=False)
        path = urlsplit(handoff).path
        device.post(path + "/cancel", json={"reason": "user_cancelled"})
        html = browser.http.get(f"/login/{transaction_id}").get_data(as_text=True)
        if attempt == 3:
            assert "もう一度試す" not in html
            break
        retry = browser.http.post(
            f"/login/{transaction_id}/retry", data={"csrf": Browser.csrf(html)}
        )
        assert retry.status_code == 303
        transaction_id = retry.headers["Location"].rsplit("/", 1)[1]
        page = browser.http.get(retry.headers["Location"]).get_data(as_text=True)
        match = re.search(r"idp card login ([^\s<]+)", page)
        assert match
        handoff = match.group(1)


def test_expired_login_page(rp: RelyingParty) -> None:
    browser = Browser(rp)
    started = browser.start(rp.authorization_request())
    with rp.app.app_context():
        store = TransactionStore(get_store(), ttl=get_settings().login_ttl)
        transaction = store.get(started.transaction_id)
        assert transaction is not None
        store.update(transaction, expires_at=int(time.time()) - 1)
    html = browser.http.get(f"/login/{started.transaction_id}").get_data(as_text=True)
    assert "時間切れです" in html and "もう一度試す" in html
    assert browser.status(started)["state"] == "expired"


def test_minor_without_signature_certificate_cannot_enroll(
    rp: RelyingParty, login_pki: LoginPki
) -> None:
    from idp.handoff.device_client import EnrollmentUnavailableError

    browser = Browser(rp)
    started = browser.start(rp.authorization_request())
    creds = login_pki.credentials("kobayashi")
    assert creds.sign_certificate is None
    _, client = virtual_card(login_pki, creds)
    prompts = FixedPrompts()
    try:
        device_login(rp.app, started.handoff_url, client, prompts)
    except EnrollmentUnavailableError:
        pass
    else:
        raise AssertionError("enrollment should be impossible")
    status = browser.status(started)
    assert (status["state"], status["failure"]) == ("failed", "enrollment_unavailable")
    assert "secret:sign:5" not in prompts.asked  # the password was never asked for
    html = browser.http.get(f"/login/{started.transaction_id}").get_data(as_text=True)
    assert "署名用電子証明書がないため" in html


def test_status_json_is_small_and_uncached(rp: RelyingParty, app: Flask) -> None:
    browser = Browser(rp)
    started = browser.start(rp.authorization_request())
    response = browser.http.get(started.status_path)
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert set(body) == {"state", "message", "failure", "expires_in", "continue_url"}
    assert body["continue_url"] == f"/login/{started.transaction_id}/continue?lang=ja"
