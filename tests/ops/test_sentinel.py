"""Redis through Sentinel: the master dies, the replica is promoted, the provider follows.

Each test starts its own master, replica and three sentinels on free loopback ports (Debian's
``redis-server`` and ``redis-sentinel``) and stops them by pid. Failover is bounded: the
sentinels declare the master down after 500 ms; the tests give the whole failover 30 s.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from login_support import Browser, LoginPki, device_login, dispose, make_login_app, virtual_card
from ops_support import SentinelSetup, sample, wait_until
from provider_support import RelyingParty, callback_params
from sqlalchemy import func, select

from idp.config import ConfigError
from idp.storage.audit import Release
from idp.storage.base import db
from idp.storage.ephemeral import EphemeralStore, SentinelUrl, StoreUnavailableError

FAILOVER_SECONDS = 30.0


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[SentinelSetup]:
    setup = SentinelSetup(tmp_path / "redis")
    try:
        setup.wait_ready()
        yield setup
    finally:
        setup.stop()


def test_the_store_follows_a_failover(sentinel: SentinelSetup) -> None:
    store = EphemeralStore.from_url(
        sentinel.url(), timeout=0.5, prefix=f"test:sentinel:{uuid.uuid4().hex}:"
    )
    try:
        store.put("before", "kept", ttl=60)
        assert sentinel.client(sentinel.master_port).exists(store.key("before")) == 1
        sentinel.sync_replica()
        sentinel.kill_master()
        killed = time.monotonic()

        failures = 0
        while True:
            try:
                store.put("after", "written", ttl=60)
                break
            except StoreUnavailableError:  # the only way an operation may fail meanwhile
                failures += 1
            assert time.monotonic() - killed < FAILOVER_SECONDS, "no failover"
            time.sleep(0.1)
        assert failures >= 1  # the first write after the kill met the dead master
        # Every sentinel names the replica as the master (the last may learn it a moment later).
        assert wait_until(sentinel.promoted, timeout=10)
        # The store now writes to the promoted replica, and what was replicated is still there.
        promoted = sentinel.client(sentinel.replica_port)
        assert promoted.get(store.key("after")) == b"written"
        assert store.get("before") == b"kept"
        assert store.take("before") == b"kept" and store.get("before") is None
    finally:
        store.close()


def test_all_sentinels_gone_is_unavailable_not_a_crash(sentinel: SentinelSetup) -> None:
    store = EphemeralStore.from_url(sentinel.url(), timeout=0.5, prefix="test:gone:")
    try:
        assert store.ping()
        for child in sentinel.children:
            child.stop()
        with pytest.raises(StoreUnavailableError):
            store.put("x", "1", ttl=5)
        with pytest.raises(StoreUnavailableError):
            store.ping()
    finally:
        store.close()


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://127.0.0.1/myna",
        "redis+sentinel://127.0.0.1:26379/",
        "redis+sentinel://127.0.0.1:26379/myna/zero",
        "redis+sentinel://127.0.0.1:26379,127.0.0.1:70000/myna",
        "redis+sentinel://127.0.0.1:26379/myna?max_connections=0",
        "redis+sentinel://127.0.0.1:26379/myna?ssl=true",
    ],
)
def test_a_bad_sentinel_url_stops_the_start(tmp_path: Path, url: str) -> None:
    from idp.app import create_app

    with pytest.raises(ConfigError) as refused:
        create_app(
            {
                "TESTING": True,
                "DATABASE_URL": f"sqlite:///{tmp_path / 'idp.sqlite3'}",
                "REDIS_URL": url,
            }
        )
    assert any(p.startswith("IDP_REDIS_URL: ") for p in refused.value.problems)


def test_sentinel_url_parts() -> None:
    url = SentinelUrl.parse(
        "redis+sentinel://idp:p%40ss@10.0.0.11:26379,[fd00::12]:26380/myna/3?max_connections=550"
    )
    assert url == SentinelUrl(
        sentinels=(("10.0.0.11", 26379), ("fd00::12", 26380)),
        service="myna",
        db=3,
        username="idp",
        password="p@ss",
        max_connections=550,
    )
    client = url.client(timeout=0.5)
    try:
        assert client.connection_pool.max_connections == 550
        assert client.connection_pool.connection_kwargs["db"] == 3
    finally:
        client.close()
    assert SentinelUrl.parse("redis+sentinel://s1:1/myna").db == 0


def _releases(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(Release)) or 0)


@pytest.mark.postgres
def test_a_login_across_a_failover(
    sentinel: SentinelSetup, database_url: str, login_pki: LoginPki
) -> None:
    """The master dies between the card and the consent. Meanwhile every answer is 503 (never
    a 500); once the replica is promoted the same login completes on it. A code exists for
    every release row, and a release row for every code."""
    app = make_login_app(database_url, sentinel.url(), login_pki, REDIS_TIMEOUT=0.5)
    try:
        rp = RelyingParty(app)
        browser = Browser(rp)
        request = rp.authorization_request()
        started = browser.start(request)
        _, card = virtual_card(login_pki, login_pki.credentials("yamada"))
        assert device_login(app, started.handoff_url, card).status == "verified"
        assert browser.status(started)["state"] == "card_verified"
        consent_page = browser.proceed(started)
        assert consent_page.status_code == 200
        page = consent_page.get_data(as_text=True)
        sentinel.sync_replica()
        errors_before = sample("myna_redis_errors_total", kind="ConnectionError")

        sentinel.kill_master()
        killed = time.monotonic()
        statuses = []
        while True:
            response = browser.consent(started, page)
            statuses.append(response.status_code)
            assert response.status_code in (302, 503), response.get_data(as_text=True)[:500]
            if response.status_code == 302:
                break
            assert time.monotonic() - killed < FAILOVER_SECONDS, statuses
            time.sleep(0.2)
        assert statuses[0] == 503  # the consent met the dead master first
        assert sample("myna_redis_errors_total", kind="ConnectionError") > errors_before
        params = callback_params(response.headers["Location"])
        assert "code" in params, params
        assert _releases(app) == 1  # one code, one release; nothing from the failed tries

        token = rp.token_request(params["code"][0], request.verifier)
        assert token.status_code == 200, token.get_data(as_text=True)
        assert rp.userinfo(token.get_json()["access_token"]).status_code == 200
        assert wait_until(lambda: app.test_client().get("/readyz").status_code == 200, timeout=10)
    finally:
        dispose(app)
