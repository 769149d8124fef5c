"""Extending a login (WCAG 2.2.1): POST /login/<id>/extend, bounded, browser-bound, CSRF-checked;
the store's rules (limit, absolute maximum, expired, finished) and the device keys' lifetimes."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask import Flask
from login_support import Browser, LoginPki, device_login, virtual_card
from provider_support import RelyingParty

from idp.extensions import get_settings, get_store
from idp.handoff.transaction import (
    MAX_EXTENSIONS,
    MAX_LIFETIME,
    ExtensionRefusedError,
    LoginTransaction,
    TransactionStore,
)

JSON = {"Accept": "application/json"}


def _store(rp: RelyingParty) -> TransactionStore:
    return TransactionStore(get_store(), ttl=get_settings().login_ttl)


def _transaction(rp: RelyingParty, transaction_id: str) -> LoginTransaction:
    with rp.app.app_context():
        found = _store(rp).get(transaction_id)
    assert found is not None
    return found


def _extend(browser: Browser, started: Any, csrf: str | None = None, **headers: str) -> Any:
    token = csrf if csrf is not None else Browser.csrf(started.page)
    return browser.http.post(
        f"/login/{started.transaction_id}/extend", data={"csrf": token}, headers=headers or JSON
    )


def _age(rp: RelyingParty, transaction_id: str, *, seconds: int) -> None:
    """Pretend the login was created ``seconds`` earlier (and expires that much earlier)."""
    transaction = _transaction(rp, transaction_id)
    with rp.app.app_context():
        _store(rp).update(
            transaction,
            created_at=transaction.created_at - seconds,
            expires_at=transaction.expires_at - seconds,
        )


def test_extend_gives_a_full_ttl_from_now(rp: RelyingParty) -> None:
    browser = Browser(rp)
    started = browser.start(rp.authorization_request())
    _age(rp, started.transaction_id, seconds=250)  # 50 s left of 300
    before = _transaction(rp, started.transaction_id)
    response = _extend(browser, started)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    ttl = rp.app.config["LOGIN_TTL"]
    assert ttl - 5 <= body["expires_in"] <= ttl
    assert body["extensions_left"] == MAX_EXTENSIONS - 1
    assert "延長しました" in body["message"] and "5 分" in body["note"]
    after = _transaction(rp, started.transaction_id)
    assert after.expires_at > before.expires_at and after.extensions == 1
    assert browser.status(started)["expires_in"] > 250


def test_extended_login_still_works_with_the_card(rp: RelyingParty, login_pki: LoginPki) -> None:
    browser = Browser(rp)
    started = browser.start(rp.authorization_request())
    _age(rp, started.transaction_id, seconds=250)
    assert _extend(browser, started).status_code == 200
    _, client = virtual_card(login_pki, login_pki.credentials("yamada"))
    device_login(rp.app, started.handoff_url, client)
    assert browser.status(started)["state"] == "card_verified"


def test_device_keys_live_as_long_as_the_extended_login(rp: RelyingParty) -> None:
    browser = Browser(rp)
    started = browser.start(rp.authorization_request())
    _age(rp, started.transaction_id, seconds=250)
    assert _extend(browser, started).status_code == 200
    transaction = _transaction(rp, started.transaction_id)
    with rp.app.app_context():
        store = get_store()
        ttl = rp.app.config["LOGIN_TTL"]
        assert (store.ttl(f"login-nonce:{transaction.id}") or 0) > ttl - 10
        assert (store.ttl(f"handoff:{transaction.handoff_id}") or 0) > ttl
        assert (store.ttl(f"qr:{transaction.qr_token}") or 0) > ttl


def test_at_most_max_extensions(rp: RelyingParty) -> None:
    browser = Browser(rp)
    started = browser.start(rp.authorization_request())
    for _ in range(MAX_EXTENSIONS):
        _age(rp, started.transaction_id, seconds=60)
        assert _extend(browser, started).status_code == 200
    _age(rp, started.transaction_id, seconds=60)
    refused = _extend(browser, started)
    assert refused.status_code == 409
    assert refused.get_json()["error"] == "limit"
    assert "これ以上は延長できません" in refused.get_json()["message"]
    assert _transaction(rp, started.transaction_id).extensions == MAX_EXTENSIONS


def test_never_past_the_absolute_maximum(rp: RelyingParty, app: Flask) -> None:
    browser = Browser(rp)
    started = browser.start(rp.authorization_request())
    _age(rp, started.transaction_id, seconds=MAX_LIFETIME - 100)
    transaction = _transaction(rp, started.transaction_id)
    with app.app_context():
        store = _store(rp)
        store.update(transaction, expires_at=int(time.time()) + 30)
        transaction = _transaction(rp, started.transaction_id)
        extended = store.extend(transaction)
        assert extended.expires_at == transaction.created_at + MAX_LIFETIME
        with pytest.raises(ExtensionRefusedError) as refused:
            store.extend(extended)
        assert refused.value.reason == "limit"


def test_an_expired_login_is_not_extended(rp: RelyingParty) -> None:
    browser = Browser(rp)
    started = browser.start(rp.authorization_request())
    transaction = _transaction(rp, started.transaction_id)
    with rp.app.app_context():
        _store(rp).update(transaction, expires_at=int(time.time()) - 1)
    refused = _extend(browser, started)
    assert refused.status_code == 410 and refused.get_json()["error"] == "expired"
    assert "時間切れです" in refused.get_json()["message"]
    assert browser.status(started)["state"] == "expired"


def test_a_finished_login_is_not_extended(rp: RelyingParty) -> None:
    browser = Browser(rp)
    started = browser.start(rp.authorization_request())
    cancel = browser.http.post(
        f"/login/{started.transaction_id}/cancel", data={"csrf": Browser.csrf(started.page)}
    )
    assert cancel.status_code == 302
    refused = _extend(browser, started)
    assert refused.status_code == 409 and refused.get_json()["error"] == "finished"


def test_only_the_browser_that_started_it_may_extend(rp: RelyingParty, app: Flask) -> None:
    browser = Browser(rp)
    started = browser.start(rp.authorization_request())
    stranger = app.test_client()
    refused = stranger.post(
        f"/login/{started.transaction_id}/extend",
        data={"csrf": Browser.csrf(started.page)},
        headers=JSON,
    )
    assert refused.status_code == 403 and refused.get_json()["error"] == "forbidden"
    unknown = browser.http.post("/login/" + "A" * 43 + "/extend", data={"csrf": "x"}, headers=JSON)
    assert unknown.status_code == 410
    assert _transaction(rp, started.transaction_id).extensions == 0


def test_a_full_clock_is_not_counted_as_an_extension(rp: RelyingParty) -> None:
    browser = Browser(rp)
    started = browser.start(rp.authorization_request())
    response = _extend(browser, started)
    assert response.status_code == 200
    assert response.get_json()["extensions_left"] == MAX_EXTENSIONS
    assert _transaction(rp, started.transaction_id).extensions == 0


def test_a_second_boundary_does_not_make_an_extension(rp: RelyingParty) -> None:
    """Seconds after the start, an extension would add a second or two: not counted, whatever
    second boundary the request falls on (a slow machine crosses one). Under a tenth of the TTL
    (30 s of 300) is not counted; more is."""
    browser = Browser(rp)
    started = browser.start(rp.authorization_request())
    transaction = _transaction(rp, started.transaction_id)
    with rp.app.app_context():
        for delay in (0.0, 1.0, 2.5, 29.0):
            same = _store(rp).extend(transaction, now=transaction.created_at + delay)
            assert (same.extensions, same.expires_at) == (0, transaction.expires_at)
        counted = _store(rp).extend(transaction, now=transaction.created_at + 45)
    assert counted.extensions == 1 and counted.expires_at > transaction.expires_at


def test_a_wrong_csrf_token_is_refused(rp: RelyingParty) -> None:
    browser = Browser(rp)
    started = browser.start(rp.authorization_request())
    refused = _extend(browser, started, csrf="not-the-token")
    assert refused.status_code == 400 and refused.get_json()["error"] == "csrf_failed"
    assert _transaction(rp, started.transaction_id).extensions == 0


def test_a_plain_form_post_returns_to_the_login_page(rp: RelyingParty) -> None:
    browser = Browser(rp)
    started = browser.start(rp.authorization_request())
    _age(rp, started.transaction_id, seconds=100)
    response = _extend(browser, started, Accept="text/html")
    assert response.status_code == 303
    assert response.headers["Location"].startswith(f"/login/{started.transaction_id}")
    assert _transaction(rp, started.transaction_id).extensions == 1


def test_the_page_offers_the_control_until_the_limit(rp: RelyingParty) -> None:
    browser = Browser(rp)
    started = browser.start(rp.authorization_request())
    assert 'id="extend-button"' in started.page and 'aria-live="assertive"' in started.page
    for _ in range(MAX_EXTENSIONS):
        _age(rp, started.transaction_id, seconds=60)
        assert _extend(browser, started).status_code == 200
    page = browser.http.get(f"/login/{started.transaction_id}").get_data(as_text=True)
    assert 'id="extend-button"' not in page
