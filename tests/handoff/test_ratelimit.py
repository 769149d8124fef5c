"""Rate limits: login transactions per client and per address, pickups per address.

Real Redis counters; each app has its own namespace, so counts never leak between tests.
Over a limit the answer is 429 with ``Retry-After`` (an HTML page for the browser, the typed
``rate_limited`` JSON error for the device API), never a 500, and nothing is created.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from login_support import Browser, LoginPki, dispose, make_login_app
from provider_support import RelyingParty

from idp.extensions import get_store
from idp.handoff.ratelimit import RateLimit, RateLimitedError, address_key

pytestmark = pytest.mark.redis


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'idp.sqlite3'}"


@pytest.fixture
def limited(
    db_url: str, redis_url: str, login_pki: LoginPki, request: pytest.FixtureRequest
) -> Iterator[Flask]:
    app = make_login_app(db_url, redis_url, login_pki, **request.param)
    yield app
    dispose(app)


def authorize(rp: RelyingParty, address: str) -> Any:
    query = urlencode(rp.authorization_request().params)
    return rp.http.get("/authorize?" + query, environ_base={"REMOTE_ADDR": address})


def logins(app: Flask) -> int:
    with app.app_context():
        store = get_store()
        return len(list(store.client.scan_iter(match=store.key("login:*"), count=1000)))


@pytest.mark.parametrize("limited", [{"RATE_LOGINS_PER_ADDRESS": 3}], indirect=True)
def test_flood_of_logins_from_one_address(limited: Flask) -> None:
    rp = RelyingParty(limited)
    for _ in range(3):
        assert authorize(rp, "203.0.113.7").status_code == 303
    refused = authorize(rp, "203.0.113.7")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["Cache-Control"] == "no-store"
    html = refused.get_data(as_text=True)
    assert "ログインの要求が多すぎます" in html
    assert logins(limited) == 3  # nothing was created for the refused request
    # another address is not affected
    assert authorize(rp, "198.51.100.1").status_code == 303


@pytest.mark.parametrize(
    "limited", [{"RATE_LOGINS_PER_CLIENT": 2, "RATE_LOGINS_PER_ADDRESS": 0}], indirect=True
)
def test_flood_of_logins_for_one_client(limited: Flask) -> None:
    rp, other = RelyingParty(limited), RelyingParty(limited)
    assert authorize(rp, "203.0.113.1").status_code == 303
    assert authorize(rp, "203.0.113.2").status_code == 303
    assert authorize(rp, "203.0.113.3").status_code == 429  # many addresses, one client
    assert authorize(other, "203.0.113.3").status_code == 303  # another client is fine


@pytest.mark.parametrize("limited", [{"RATE_LOGINS_PER_ADDRESS": 2}], indirect=True)
def test_try_again_counts_as_a_new_login(limited: Flask) -> None:
    rp = RelyingParty(limited)
    browser = Browser(rp)
    started = browser.start(rp.authorization_request())  # 1 (test client address 127.0.0.1)
    browser.start(rp.authorization_request())  # 2
    device = limited.test_client(use_cookies=False)
    challenge = device.get("/device/v1/transactions/" + started.handoff_url.rsplit("/", 1)[1])
    assert challenge.status_code == 200
    cancel = device.post(
        "/device/v1/transactions/" + started.handoff_url.rsplit("/", 1)[1] + "/cancel",
        json={"reason": "user_cancelled"},
    )
    assert cancel.status_code == 200
    page = browser.http.get(f"/login/{started.transaction_id}").get_data(as_text=True)
    retry = browser.http.post(
        f"/login/{started.transaction_id}/retry", data={"csrf": Browser.csrf(page)}
    )
    assert retry.status_code == 429 and "Retry-After" in retry.headers


@pytest.mark.parametrize(
    "limited", [{"RATE_PICKUPS_PER_ADDRESS": 2, "RATE_LIMIT_WINDOW": 2}], indirect=True
)
def test_pickups_per_address(limited: Flask) -> None:
    phone = limited.test_client(use_cookies=False)
    qr = "http://localhost/m/" + "A" * 22 + "?t=1&c=" + "0" * 32

    def pickup(address: str) -> Any:
        return phone.post(
            "/device/v1/pickup", json={"qr": qr}, environ_base={"REMOTE_ADDR": address}
        )

    assert pickup("2001:db8:1:2::10").get_json()["error"] == "qr_unknown"
    assert pickup("2001:db8:1:2::99").get_json()["error"] == "qr_unknown"
    refused = pickup("2001:db8:1:2:ffff::1")  # same /64: the same subscriber
    assert refused.status_code == 429
    assert refused.get_json() == {
        "error": "rate_limited",
        "message": "Too many requests; retry after the time in Retry-After.",
    }
    assert 1 <= int(refused.headers["Retry-After"]) <= 2
    assert pickup("2001:db8:1:3::1").status_code == 404  # another /64
    time.sleep(2.1)  # the window passes
    assert pickup("2001:db8:1:2::10").status_code == 404


def test_address_keys() -> None:
    assert address_key("203.0.113.7") == "203.0.113.7"
    assert address_key("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert address_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert address_key(None) == "unknown" and address_key("") == "unknown"
    assert address_key("not-an-address") == "not-an-address"


def test_limit_counts_per_subject_and_zero_switches_off(
    db_url: str, redis_url: str, login_pki: LoginPki
) -> None:
    app = make_login_app(db_url, redis_url, login_pki)
    try:
        with app.app_context():
            store = get_store()
            limit = RateLimit("unit", 2, 30)
            limit.hit(store, "a")
            limit.hit(store, "a")
            limit.hit(store, "b")
            with pytest.raises(RateLimitedError) as caught:
                limit.hit(store, "a")
            assert caught.value.name == "unit" and 1 <= caught.value.retry_after <= 30
            off = RateLimit("off", 0, 30)
            for _ in range(50):
                off.hit(store, "a")
            assert not list(store.client.scan_iter(match=store.key("rate:off:*")))
    finally:
        dispose(app)


@pytest.mark.parametrize("limited", [{"RATE_LOGINS_PER_ADDRESS": 5}], indirect=True)
def test_rate_limit_with_redis_down_is_a_typed_503(
    db_url: str, login_pki: LoginPki, limited: Flask
) -> None:
    app = make_login_app(db_url, "redis://127.0.0.1:1/0", login_pki, REDIS_TIMEOUT=0.3)
    try:
        rp = RelyingParty(app)
        response = authorize(rp, "203.0.113.9")
        assert response.status_code == 503
    finally:
        dispose(app)
