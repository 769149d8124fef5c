"""The resident portal (/account): sign-in with the card, the data held, releases, consents,
sessions, reading the card again, deleting the account, and the human error pages.

Real PostgreSQL (and SQLite), real Redis, the real login pages and device API with a virtual
card in process; a relying party's back-channel logout endpoint on loopback.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from login_support import Browser, LoginPki, device_login, full_login, virtual_card
from portal_support import LogoutReceiver, PortalBrowser, path_of
from provider_support import RelyingParty
from sqlalchemy import func, select

from idp.account.consent import consent_required
from idp.account.human_errors import PROBLEMS
from idp.account.portal_auth import PORTAL_CLIENT_ID
from idp.storage.audit import Release
from idp.storage.base import db
from idp.storage.clients import get_client
from idp.storage.consents import Consent, get_consent
from idp.storage.residents import CardCredential, Resident, get_resident

pytestmark = [pytest.mark.redis]

NAME = "山田　太郎"
ADDRESS = "石川県加賀市大聖寺南町ニ４１番地"


@pytest.fixture
def receiver() -> Iterator[LogoutReceiver]:
    running = LogoutReceiver()
    yield running
    running.stop()


def count(app: Flask, model: type) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def only_resident(app: Flask) -> str:
    with app.app_context():
        [resident_id] = list(db.session.scalars(select(Resident.id)))
        return str(resident_id)


def rp_login(rp: RelyingParty, login_pki: LoginPki) -> tuple[str, str]:
    """A login at the relying party in the portal browser's cookie jar: (code, verifier)."""
    _, card = virtual_card(login_pki, login_pki.credentials("yamada"))
    request, params, _ = full_login(rp, card)
    return params["code"][0], request.verifier


def test_the_portal_signs_in_with_the_card_and_shows_the_data_and_its_evidence(
    app: Flask, login_pki: LoginPki
) -> None:
    browser = PortalBrowser(app)
    first = browser.get("/account")
    assert first.status_code == 302
    assert path_of(first.headers["Location"]) == "/account/login?next=/account"

    authorize = PortalBrowser(app).get("/account/login")  # the request the portal sends
    query = parse_qs(urlsplit(authorize.headers["Location"]).query)
    assert query["client_id"] == [PORTAL_CLIENT_ID] and query["prompt"] == ["login"]
    assert query["scope"] == ["openid"] and query["code_challenge_method"] == ["S256"]

    transaction_id, handoff = browser.start_login()
    _, card = virtual_card(login_pki, login_pki.credentials("yamada"))
    browser.last_outcome = device_login(app, handoff, card)
    done = browser.finish_login(transaction_id)
    assert done.status_code == 303 and path_of(done.headers["Location"]) == "/account"

    html = browser.page("/account")
    assert NAME in html and ADDRESS in html
    assert "昭和60年4月1日（1985年4月1日）" in html and "男性" in html
    with app.app_context():
        resident = get_resident(only_resident(app))
        assert resident is not None
        serial = resident.evidence["serial_hex"].upper()
        client = get_client(PORTAL_CLIENT_ID)
        assert client is not None and client.redirect_uris == ["http://localhost/account/callback"]
    assert serial in html and "JPKI" in html
    assert 'data-kind="sign"' in html and 'data-kind="auth"' in html
    assert "BEGIN CERTIFICATE" not in html and "cert_sha256" not in html

    english = browser.page("/account?lang=en")
    assert "1 April 1985" in english and "Male" in english and "Your data" in english


def test_the_callback_needs_this_browsers_state(app: Flask, login_pki: LoginPki) -> None:
    browser = PortalBrowser(app)
    transaction_id, handoff = browser.start_login()
    _, card = virtual_card(login_pki, login_pki.credentials("yamada"))
    device_login(app, handoff, card)
    answer = browser.get(f"/login/{transaction_id}/continue")
    callback = urlsplit(answer.headers["Location"])
    forged = callback.query.replace("state=", "state=x")
    refused = browser.get(f"/account/callback?{forged}")
    assert refused.status_code == 403
    assert 'data-code="request_refused"' in refused.get_data(as_text=True)
    # another browser (no login cookie) replaying the genuine callback is not signed in
    other = PortalBrowser(app, user_agent="Other/1")
    replay = other.get(f"/account/callback?{callback.query}")
    assert replay.status_code == 401
    assert other.get("/account").status_code == 302


def test_history_and_consents_show_the_services_not_the_portal(
    app: Flask, rp: RelyingParty, login_pki: LoginPki
) -> None:
    rp_login(rp, login_pki)
    browser = PortalBrowser(app, http=rp.http)
    assert browser.login(login_pki, login_pki.credentials("yamada")).status_code == 303

    history = browser.page("/account/history")
    assert history.count('class="release-client"') == 1
    assert "加賀市 電子申請" in history and "氏名" in history and "住所" in history
    assert "マイナンバーカード アカウント" not in history
    english = browser.page("/account/history?lang=en")
    assert "Kaga City e-Application" in english and "Address" in english

    consents = browser.page("/account/consents")
    assert f'data-client="{rp.client_id}"' in consents
    assert f'data-client="{PORTAL_CLIENT_ID}"' not in consents


def test_withdrawing_a_consent_tells_the_service_and_asks_again_next_time(
    app: Flask, rp: RelyingParty, login_pki: LoginPki, receiver: LogoutReceiver
) -> None:
    with app.app_context():
        client = get_client(rp.client_id)
        assert client is not None
        client.backchannel_logout_uri = receiver.uri
        db.session.commit()
    rp_login(rp, login_pki)
    browser = PortalBrowser(app, http=rp.http)
    browser.login(login_pki, login_pki.credentials("yamada"))
    resident_id = only_resident(app)
    page = browser.page("/account/consents")

    done = browser.post(
        "/account/consents/revoke", {"csrf": browser.csrf(page), "client_id": rp.client_id}
    )
    html = done.get_data(as_text=True)
    assert done.status_code == 200, html
    assert 'id="notified"' in html and "加賀市 電子申請" in html
    assert len(receiver.tokens) == 1
    with app.app_context():
        assert get_consent(resident_id, rp.client_id) is None
        assert consent_required(resident_id, rp.client_id, ["name"], ())
    assert f'data-client="{rp.client_id}"' not in browser.page("/account/consents")
    # the portal itself goes on
    assert browser.get("/account").status_code == 200
    # withdrawing it again: nothing to withdraw, nothing sent
    again = browser.post(
        "/account/consents/revoke", {"csrf": browser.csrf(page), "client_id": rp.client_id}
    )
    assert again.status_code == 404 and len(receiver.tokens) == 1


def test_sign_out_one_session_and_everywhere(app: Flask, login_pki: LoginPki) -> None:
    home = PortalBrowser(app, user_agent="Home/1")
    phone = PortalBrowser(app, user_agent="Phone/1")
    home.login(login_pki, login_pki.credentials("yamada"))
    phone.login(login_pki, login_pki.credentials("yamada"))
    page = home.page("/account/sessions")
    assert page.count('name="sid"') == 2 and page.count('data-current="true"') == 1
    assert "Phone/1" in page and "Home/1" in page
    sids = re.findall(r'name="sid" value="([^"]+)"', page)
    current = re.search(r'data-current="true">.*?name="sid" value="([^"]+)"', page, re.S)
    assert current
    other = next(sid for sid in sids if sid != current.group(1))

    ended = home.post("/account/sessions/end", {"csrf": home.csrf(page), "sid": other})
    assert ended.status_code == 200
    assert phone.get("/account").status_code == 401  # seen before: "sign in again"
    assert home.get("/account").status_code == 200

    page = home.page("/account/sessions")
    assert page.count('name="sid"') == 1
    everywhere = home.post("/account/sessions/end-all", {"csrf": home.csrf(page)})
    html = everywhere.get_data(as_text=True)
    assert everywhere.status_code == 200 and 'id="signin-again"' in html
    again = home.get("/account")
    assert again.status_code in (302, 401)


def test_sign_out_ends_this_session(app: Flask, login_pki: LoginPki) -> None:
    browser = PortalBrowser(app)
    browser.login(login_pki, login_pki.credentials("yamada"))
    page = browser.page("/account")
    out = browser.post("/account/signout", {"csrf": browser.csrf(page)})
    assert out.status_code == 200
    follow = browser.get("/account")
    assert follow.status_code == 302  # the "seen" cookie went with the session


def test_reading_the_card_again_asks_for_the_signature_certificate(
    app: Flask, login_pki: LoginPki
) -> None:
    browser = PortalBrowser(app)
    browser.login(login_pki, login_pki.credentials("yamada"))
    assert browser.last_outcome is not None and browser.last_outcome.enrolled  # first login
    resident_id = only_resident(app)
    with app.app_context():
        before = get_resident(resident_id)
        assert before is not None
        verified_before = before.verified_at

    page = browser.page("/account/refresh")
    start = browser.post("/account/refresh", {"csrf": browser.csrf(page)})
    assert start.status_code == 303
    assert path_of(start.headers["Location"]) == "/account/login?next=/account"
    assert 'id="refresh-pending"' in browser.page("/account")

    browser.login(login_pki, login_pki.credentials("yamada"))
    assert browser.last_outcome is not None and browser.last_outcome.enrolled
    with app.app_context():
        after = get_resident(resident_id)
        assert after is not None
        assert after.verified_at > verified_before
        assert "refresh_requested" not in after.evidence
    assert 'id="refresh-pending"' not in browser.page("/account")
    # an ordinary login afterwards needs PIN1 only
    browser.login(login_pki, login_pki.credentials("yamada"))
    assert browser.last_outcome is not None and not browser.last_outcome.enrolled


def test_delete_erases_the_account_and_keeps_the_release_log(
    app: Flask, rp: RelyingParty, login_pki: LoginPki
) -> None:
    code, verifier = rp_login(rp, login_pki)
    token = rp.token_request(code, verifier).get_json()
    browser = PortalBrowser(app, http=rp.http)
    browser.login(login_pki, login_pki.credentials("yamada"))
    resident_id = only_resident(app)
    releases = count(app, Release)
    assert releases == 2  # the relying party's and the portal's

    page = browser.page("/account/delete")
    assert 'id="kept"' in page and "監査" in page
    unconfirmed = browser.post("/account/delete", {"csrf": browser.csrf(page)})
    assert unconfirmed.status_code == 400
    assert 'id="confirm-error"' in unconfirmed.get_data(as_text=True)
    assert count(app, CardCredential) == 2

    deleted = browser.post("/account/delete", {"csrf": browser.csrf(page), "confirm": "yes"})
    assert deleted.status_code == 200, deleted.get_data(as_text=True)
    with app.app_context():
        assert get_resident(resident_id) is None
        row = db.session.get(Resident, resident_id)
        assert row is not None and row.name == "" and row.address == ""
        assert row.evidence["type"] == "erased" and "serial_hex" not in row.evidence
    assert count(app, CardCredential) == 0 and count(app, Consent) == 0
    assert count(app, Release) == releases  # the audit log is kept
    # signed out, and the service's access token no longer reads anything
    assert browser.get("/account").status_code == 302
    assert rp.userinfo(token["access_token"]).status_code == 401

    # the same card later makes a new, empty account
    browser.login(login_pki, login_pki.credentials("yamada"))
    with app.app_context():
        ids = set(db.session.scalars(select(Resident.id)))
    assert len(ids) == 2 and resident_id in ids
    assert 'data-client="' not in browser.page("/account/consents")


@pytest.mark.parametrize("code", sorted(PROBLEMS))
def test_every_problem_page_says_what_happened_and_what_to_do(app: Flask, code: str) -> None:
    browser = PortalBrowser(app)
    problem = PROBLEMS[code]
    response = browser.get(f"/account/problem/{code}")
    html = response.get_data(as_text=True)
    assert response.status_code == problem.status
    assert f'data-code="{code}"' in html and '<html lang="ja">' in html
    assert html.count("<li>") >= len(problem.todo)
    english = browser.get(f"/account/problem/{code}?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in english
    with app.test_request_context("/?lang=en"):
        assert str(problem.title) in english
    with app.test_request_context("/?lang=ja"):
        japanese_title = str(problem.title)
    assert japanese_title in html and not japanese_title.isascii()
    assert browser.get("/account/problem/no_such_code").status_code == 404


def test_login_failures_show_the_human_pages(rp: RelyingParty, login_pki: LoginPki) -> None:
    # PIN1 blocked: the phone gives up with pin_blocked
    browser = Browser(rp)
    started = browser.start(rp.authorization_request())
    device = rp.app.test_client(use_cookies=False)
    path = urlsplit(started.handoff_url).path
    assert device.post(path + "/cancel", json={"reason": "pin_blocked"}).status_code == 200
    html = browser.http.get(f"/login/{started.transaction_id}").get_data(as_text=True)
    assert 'data-code="pin_blocked"' in html
    assert "窓口" in html and "コンビニエンスストア" in html
    assert "/retry" not in html  # trying again cannot help
    assert "/cancel" in html


def test_an_outage_says_try_again_in_a_few_minutes(db_url: str, login_pki: LoginPki) -> None:
    from login_support import dispose, make_login_app

    # nothing listens on port 1: every Redis call fails at once
    broken = make_login_app(db_url, "redis://127.0.0.1:1/0", login_pki)
    try:
        browser = PortalBrowser(broken)
        browser.http.set_cookie("myna-session", "s" * 43)  # a session to look up
        response = browser.get("/account/history")
        html = response.get_data(as_text=True)
        assert response.status_code == 503 and response.headers["Retry-After"] == "120"
        assert 'data-code="service_unavailable"' in html and "数分後" in html
    finally:
        dispose(broken)
