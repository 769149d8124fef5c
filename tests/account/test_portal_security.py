"""Bad input on the resident portal: forms without their token, cross-site posts, a token or a
session cookie taken from another session, an expired session, and consent withdrawal or
account deletion racing a login. Every case: a clear page, nothing changed, nothing half-done.

Real PostgreSQL (and SQLite) and Redis; the lock race runs on PostgreSQL with two threads.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from login_support import (
    Browser,
    LoginPki,
    device_login,
    full_login,
    software_token,
    virtual_card,
)
from portal_support import PortalBrowser
from provider_support import RelyingParty
from sqlalchemy import func, select, text

from idp.account.portal_actions import DeletionReport, delete_account
from idp.account.portal_locks import lock_resident
from idp.extensions import get_store
from idp.oidc.sessions import sessions_for
from idp.storage.audit import Release, record_release
from idp.storage.base import db
from idp.storage.consents import Consent, get_consent
from idp.storage.residents import Resident, get_resident

pytestmark = [pytest.mark.redis]


def count(app: Flask, model: type) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def resident_ids(app: Flask) -> list[str]:
    with app.app_context():
        return [str(r) for r in db.session.scalars(select(Resident.id).order_by(Resident.name))]


def signed_in_with_a_consent(
    app: Flask, rp: RelyingParty, login_pki: LoginPki
) -> tuple[PortalBrowser, str, str]:
    """A relying party login (consent remembered), then the portal in the same browser:
    (browser, the consents page, the resident id)."""
    _, card = virtual_card(login_pki, login_pki.credentials("yamada"))
    full_login(rp, card)
    browser = PortalBrowser(app, http=rp.http)
    assert browser.login(login_pki, login_pki.credentials("yamada")).status_code == 303
    [resident_id] = resident_ids(app)
    return browser, browser.page("/account/consents"), resident_id


def consent_kept(app: Flask, resident_id: str, client_id: str) -> bool:
    with app.app_context():
        return get_consent(resident_id, client_id) is not None


def test_forms_without_their_token_change_nothing(
    app: Flask, rp: RelyingParty, login_pki: LoginPki
) -> None:
    browser, _, resident_id = signed_in_with_a_consent(app, rp, login_pki)
    for token in (None, "", "x" * 43):
        form = {"client_id": rp.client_id}
        if token is not None:
            form["csrf"] = token
        refused = browser.post("/account/consents/revoke", form)
        html = refused.get_data(as_text=True)
        assert refused.status_code == 403 and 'data-code="request_refused"' in html
        assert "何も変更されていません" in html
    assert browser.post("/account/delete", {"confirm": "yes"}).status_code == 403
    assert browser.post("/account/sessions/end-all", {}).status_code == 403
    assert consent_kept(app, resident_id, rp.client_id)
    with app.app_context():
        assert get_resident(resident_id) is not None
    assert browser.get("/account").status_code == 200


def test_cross_site_posts_are_refused_even_with_the_token(
    app: Flask, rp: RelyingParty, login_pki: LoginPki
) -> None:
    browser, page, resident_id = signed_in_with_a_consent(app, rp, login_pki)
    form = {"csrf": browser.csrf(page), "client_id": rp.client_id}
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://localhost"},
    ):
        refused = browser.post("/account/consents/revoke", form, **headers)
        assert refused.status_code == 403, headers
        assert 'data-code="request_refused"' in refused.get_data(as_text=True)
    assert consent_kept(app, resident_id, rp.client_id)
    # the same form from the portal's own page goes through
    done = browser.post(
        "/account/consents/revoke",
        form,
        Origin="http://localhost",
        **{"Sec-Fetch-Site": "same-origin"},
    )
    assert done.status_code == 200
    assert not consent_kept(app, resident_id, rp.client_id)


def test_a_token_or_a_session_of_another_resident_is_refused(
    app: Flask, rp: RelyingParty, login_pki: LoginPki
) -> None:
    browser, page, resident_id = signed_in_with_a_consent(app, rp, login_pki)
    other = PortalBrowser(app, user_agent="Other/1")
    other.login(login_pki, login_pki.credentials("suzuki"))
    other_page = other.page("/account/sessions")
    other_sid = other_page.split('name="sid" value="', 1)[1].split('"', 1)[0]

    # the other resident's token in this resident's session
    refused = browser.post(
        "/account/consents/revoke", {"csrf": other.csrf(other_page), "client_id": rp.client_id}
    )
    assert refused.status_code == 403
    assert consent_kept(app, resident_id, rp.client_id)
    # ending the other resident's session by its id: not this resident's, nothing happens
    attempt = browser.post("/account/sessions/end", {"csrf": browser.csrf(page), "sid": other_sid})
    assert attempt.status_code == 404
    assert other.get("/account").status_code == 200
    assert "鈴木" in other.page("/account") and "鈴木" not in browser.page("/account")


def test_a_stolen_session_cookie_does_not_open_the_portal_in_another_browser(
    app: Flask, rp: RelyingParty, login_pki: LoginPki
) -> None:
    browser, page, resident_id = signed_in_with_a_consent(app, rp, login_pki)
    thief = PortalBrowser(app, user_agent="Thief/9")
    cookie = browser.http.get_cookie("myna-session")
    assert cookie is not None
    thief.http.set_cookie("myna-session", cookie.value)
    look = thief.get("/account")
    assert look.status_code == 302  # to the card login; nothing shown
    assert "山田" not in look.get_data(as_text=True)
    stolen = thief.post(
        "/account/consents/revoke", {"csrf": browser.csrf(page), "client_id": rp.client_id}
    )
    assert stolen.status_code == 401
    assert 'data-code="session_expired"' in stolen.get_data(as_text=True)
    assert consent_kept(app, resident_id, rp.client_id)
    assert browser.get("/account").status_code == 200  # the resident's own browser goes on


def age_sessions(app: Flask, resident_id: str, seconds: int) -> None:
    """Move the card login of every session of the resident ``seconds`` into the past."""
    with app.test_request_context():
        store = get_store()
        for info in sessions_for(resident_id):
            key = f"session:{info.sid}"
            record: Any = store.get_json(key)
            record["auth_time"] -= seconds
            store.put_json(key, record, ttl=600)


def test_an_expired_session_asks_to_sign_in_again_and_changes_nothing(
    app: Flask, rp: RelyingParty, login_pki: LoginPki
) -> None:
    browser, page, resident_id = signed_in_with_a_consent(app, rp, login_pki)
    age_sessions(app, resident_id, 3600)
    look = browser.get("/account/consents")
    html = look.get_data(as_text=True)
    assert look.status_code == 401 and 'data-code="session_expired"' in html
    assert 'id="signin-again"' in html and "/account/login?next=/account/consents" in html
    late = browser.post(
        "/account/consents/revoke", {"csrf": browser.csrf(page), "client_id": rp.client_id}
    )
    assert late.status_code == 401
    assert consent_kept(app, resident_id, rp.client_id)
    # signing in again with the card opens the portal again
    browser.login(login_pki, login_pki.credentials("yamada"), next_path="/account/consents")
    assert f'data-client="{rp.client_id}"' in browser.page("/account/consents")


def login_in_flight(rp: RelyingParty, login_pki: LoginPki, **overrides: str) -> Any:
    """A relying party login in a fresh browser (no provider session) whose card was verified;
    the browser has not continued yet."""
    fresh = copy.copy(rp)
    fresh.http = rp.app.test_client()
    browser = Browser(fresh)
    started = browser.start(rp.authorization_request(**overrides))
    _, card = virtual_card(login_pki, login_pki.credentials("yamada"))
    device_login(rp.app, started.handoff_url, card)
    assert browser.status(started)["state"] == "card_verified"
    return browser, started


def test_withdrawing_consent_during_a_login_asks_for_consent_again(
    app: Flask, rp: RelyingParty, login_pki: LoginPki
) -> None:
    portal, page, resident_id = signed_in_with_a_consent(app, rp, login_pki)
    releases = count(app, Release)
    browser, started = login_in_flight(rp, login_pki)
    portal.post("/account/consents/revoke", {"csrf": portal.csrf(page), "client_id": rp.client_id})
    answer = browser.proceed(started)
    assert answer.status_code == 200  # the consent page, not a code
    assert 'value="approve"' in answer.get_data(as_text=True)
    assert count(app, Release) == releases
    assert not consent_kept(app, resident_id, rp.client_id)


def test_deleting_the_account_during_a_login_ends_the_login_cleanly(
    app: Flask, rp: RelyingParty, login_pki: LoginPki
) -> None:
    portal, _, resident_id = signed_in_with_a_consent(app, rp, login_pki)
    releases = count(app, Release)
    skipping = login_in_flight(rp, login_pki)  # consent remembered: straight to the code
    asking = login_in_flight(rp, login_pki, prompt="consent")  # on the consent page
    consent_page = asking[0].proceed(asking[1]).get_data(as_text=True)

    delete_page = portal.page("/account/delete")
    deleted = portal.post("/account/delete", {"csrf": portal.csrf(delete_page), "confirm": "yes"})
    assert deleted.status_code == 200

    browser, started = skipping
    answer = browser.proceed(started)
    assert answer.status_code == 409
    assert 'data-code="account_deleted"' in answer.get_data(as_text=True)
    browser, started = asking
    answer = browser.consent(started, consent_page, "approve")
    assert answer.status_code == 409
    assert 'data-code="account_deleted"' in answer.get_data(as_text=True)
    # nothing written for the deleted account
    assert count(app, Release) == releases and count(app, Consent) == 0
    with app.app_context():
        assert get_resident(resident_id) is None


@pytest.mark.postgres
def test_a_delete_waits_for_a_login_holding_the_row_and_then_wins(
    app: Flask, db_url: str, rp: RelyingParty, login_pki: LoginPki
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("row locks: PostgreSQL")
    _, card = virtual_card(login_pki, login_pki.credentials("yamada"))
    full_login(rp, card)
    [resident_id] = resident_ids(app)
    releases = count(app, Release)
    locked, go = threading.Event(), threading.Event()
    result: dict[str, DeletionReport] = {}

    def finishing_login() -> None:
        with app.app_context():
            assert lock_resident(resident_id) is not None
            locked.set()
            go.wait(30)
            record_release(
                resident_id=resident_id, client_id=rp.client_id, items=["name"], request_id="race"
            )

    def deleting() -> None:
        with app.test_request_context():
            result["report"] = delete_account(resident_id)

    login_thread = threading.Thread(target=finishing_login)
    login_thread.start()
    assert locked.wait(30)
    delete_thread = threading.Thread(target=deleting)
    delete_thread.start()
    waiting = False
    deadline = time.monotonic() + 30
    with app.app_context():
        while not waiting and time.monotonic() < deadline:
            waiting = bool(
                db.session.scalar(
                    text(
                        "select count(*) from pg_stat_activity "
                        "where wait_event_type = 'Lock' and datname = current_database()"
                    )
                )
            )
            db.session.rollback()
            time.sleep(0.05)
    assert waiting, "the delete did not wait for the login's row lock"
    assert delete_thread.is_alive()
    go.set()
    login_thread.join(30)
    delete_thread.join(30)
    assert result["report"].deleted
    assert count(app, Release) == releases + 1  # the login's release is kept in the log
    with app.app_context():
        assert get_resident(resident_id) is None
        assert get_consent(resident_id, rp.client_id) is None


def test_deleting_the_account_between_the_card_rounds_fails_the_refresh_cleanly(
    app: Flask, rp: RelyingParty, login_pki: LoginPki
) -> None:
    """The record is due for re-reading, so the login has two rounds (PIN1, then the signature
    certificate); the account is deleted in between: the second round fails with
    ``account_deleted`` and the page says so; nothing is re-created."""
    portal, _, resident_id = signed_in_with_a_consent(app, rp, login_pki)
    refresh_page = portal.page("/account/refresh")
    assert portal.post("/account/refresh", {"csrf": portal.csrf(refresh_page)}).status_code == 303
    fresh = copy.copy(rp)
    fresh.http = rp.app.test_client()
    browser = Browser(fresh)
    started = browser.start(rp.authorization_request())
    device = app.test_client(use_cookies=False)
    path = urlsplit(started.handoff_url).path
    credentials = login_pki.credentials("yamada")
    first = device.post(
        path + "/response", json=software_token(credentials, device.get(path).get_json())
    )
    assert first.status_code == 200 and browser.status(started)["state"] == "enroll_needed"

    delete_page = portal.page("/account/delete")
    portal.post("/account/delete", {"csrf": portal.csrf(delete_page), "confirm": "yes"})

    second = device.post(
        path + "/response", json=software_token(credentials, device.get(path).get_json())
    )
    assert (second.status_code, second.get_json()["error"]) == (422, "account_deleted")
    page = browser.http.get(f"/login/{started.transaction_id}").get_data(as_text=True)
    assert 'data-code="account_deleted"' in page
    with app.app_context():
        assert get_resident(resident_id) is None
    assert resident_ids(app) == [resident_id]  # no new account half-made
