"""The login page's live status: ``GET /login/<id>/events`` (server-sent events over Redis pub/sub).

Real HTTP (werkzeug's threaded server on loopback) and real Redis. The page's instance and the
instance the phone talks to are two ``create_app()`` apps sharing one Redis namespace, one
database and one issuer, as two instances behind a load balancer would: what the phone does on
one reaches the event stream the other serves.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import requests
from flask import Flask
from login_support import (
    HttpBrowser,
    LiveServer,
    LoginPki,
    Started,
    dispose,
    make_login_app,
    software_token,
)
from provider_support import RelyingParty
from test_pickup import PrivateRedis, private_redis

import idp.handoff.events as events_module
from idp.handoff.pages import event_hub

__all__ = ["private_redis"]

pytestmark = pytest.mark.redis


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'idp.sqlite3'}"


@dataclass
class Event:
    kind: str  # "status", "comment", "retry" or "end"
    data: Any
    at: float


class EventReader:
    """Reads a text/event-stream response in a thread; events arrive in a queue."""

    def __init__(self, session: requests.Session, url: str) -> None:
        self.response = session.get(
            url, stream=True, timeout=(5, 60), headers={"Accept": "text/event-stream"}
        )
        self.events: queue.Queue[Event] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        kind, data = "message", ""
        try:
            for raw in self.response.iter_lines(chunk_size=None, decode_unicode=True):
                line = raw if isinstance(raw, str) else raw.decode()
                now = time.monotonic()
                if line.startswith(":"):
                    self.events.put(Event("comment", line[1:].strip(), now))
                elif line.startswith("retry:"):
                    self.events.put(Event("retry", int(line[6:]), now))
                elif line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
                elif line == "" and data:
                    self.events.put(Event(kind, json.loads(data), now))
                    kind, data = "message", ""
        except (requests.RequestException, OSError, AttributeError, ValueError):
            pass  # closed by the test (urllib3 then reads from a released connection)
        self.events.put(Event("end", None, time.monotonic()))

    def next(self, *, timeout: float = 10, skip_comments: bool = True) -> Event:
        deadline = time.monotonic() + timeout
        while True:
            event = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            if event.kind in ("comment", "retry") and skip_comments:
                continue
            return event

    def states(self, count: int, *, timeout: float = 10) -> list[str | None]:
        return [self.next(timeout=timeout).data["state"] for _ in range(count)]

    def close(self) -> None:
        self.response.close()


@dataclass
class TwoInstances:
    page: LiveServer  # serves the browser (real HTTP)
    phone_side: Flask  # another instance: the phone's requests land here
    rp: RelyingParty

    def start(self, browser: HttpBrowser) -> Started:
        request = self.rp.authorization_request()
        return browser.start(self.page.url + "/authorize?" + urlencode(request.params))

    def phone(self) -> Any:
        return self.phone_side.test_client(use_cookies=False)


@pytest.fixture
def instances(
    db_url: str, redis_url: str, login_pki: LoginPki, request: pytest.FixtureRequest
) -> Iterator[TwoInstances]:
    overrides: dict[str, Any] = getattr(request, "param", {})
    prefix = f"test:{time.monotonic_ns()}:"
    page = LiveServer(
        lambda issuer: make_login_app(
            db_url, redis_url, login_pki, ISSUER=issuer, REDIS_PREFIX=prefix, **overrides
        )
    )
    phone_side = make_login_app(
        db_url, redis_url, login_pki, ISSUER=page.url, REDIS_PREFIX=prefix, **overrides
    )
    try:
        yield TwoInstances(page, phone_side, RelyingParty(page.app))
    finally:
        page.stop()
        dispose(page.app)
        dispose(phone_side)


def frame(browser: HttpBrowser, started: Started) -> dict[str, Any]:
    response = browser.session.get(f"{browser.base}/login/{started.transaction_id}/qr", timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


def events_url(browser: HttpBrowser, started: Started) -> str:
    return f"{browser.base}/login/{started.transaction_id}/events"


def test_phone_on_another_instance_moves_the_page(
    instances: TwoInstances, login_pki: LoginPki
) -> None:
    browser = HttpBrowser()
    started = instances.start(browser)
    reader = EventReader(browser.session, events_url(browser, started))
    try:
        assert reader.response.status_code == 200
        assert reader.response.headers["Content-Type"].startswith("text/event-stream")
        assert reader.response.headers["Cache-Control"] == "no-store"
        first = reader.next()
        assert first.kind == "status" and first.data["state"] == "created"
        assert first.data["message"]  # the text the page shows

        phone = instances.phone()
        pickup = phone.post("/device/v1/pickup", json={"qr": frame(browser, started)["content"]})
        assert pickup.status_code == 200, pickup.get_json()
        assert reader.next().data["state"] == "picked_up"

        # an unknown card: checking, then an enrollment round, then checking, then verified
        body = pickup.get_json()
        credentials = login_pki.credentials("suzuki")
        path = urlsplit(body["handoff_url"]).path
        answer = phone.post(path + "/response", json=software_token(credentials, body["challenge"]))
        assert answer.get_json()["status"] == "enroll_needed"
        assert reader.states(2) == ["checking", "enroll_needed"]
        enrolled = phone.post(
            path + "/response", json=software_token(credentials, answer.get_json()["challenge"])
        )
        assert enrolled.get_json() == {"status": "verified"}
        assert reader.states(2) == ["checking", "card_verified"]
        assert reader.next().kind == "end"  # the stream closes: the page moves on
        # and the page's own instance finishes the login
        location = browser.finish(started)
        assert "code=" in location
    finally:
        reader.close()


def test_phone_abandoning_reaches_the_page(instances: TwoInstances) -> None:
    browser = HttpBrowser()
    started = instances.start(browser)
    reader = EventReader(browser.session, events_url(browser, started))
    try:
        assert reader.states(1) == ["created"]
        phone = instances.phone()
        body = phone.post(
            "/device/v1/pickup", json={"qr": frame(browser, started)["content"]}
        ).get_json()
        assert reader.states(1) == ["picked_up"]
        path = urlsplit(body["handoff_url"]).path
        assert phone.post(path + "/cancel", json={"reason": "user_cancelled"}).status_code == 200
        failed = reader.next()
        assert failed.data == {
            "state": "failed",
            "reason": "user_cancelled",
            "message": "スマートフォンでログインが中止されました。",
        }
        assert reader.next().kind == "end"
        page = browser.session.get(f"{browser.base}/login/{started.transaction_id}", timeout=10)
        assert "スマートフォンでログインが中止されました。" in page.text
        assert "もう一度試す" in page.text  # restart
    finally:
        reader.close()


@pytest.mark.parametrize("instances", [{"LOGIN_TTL": 2, "EVENTS_HEARTBEAT": 1}], indirect=True)
def test_expiry_and_heartbeats(instances: TwoInstances) -> None:
    browser = HttpBrowser()
    started = instances.start(browser)
    opened = time.monotonic()
    reader = EventReader(browser.session, events_url(browser, started))
    try:
        assert reader.next(skip_comments=False).kind == "retry"
        assert reader.next(skip_comments=False).data["state"] == "created"
        assert reader.next(skip_comments=False).kind == "comment"  # heartbeat after ~1 s
        expired = reader.next(timeout=5)
        assert expired.data["state"] == "expired"
        assert 1.0 < expired.at - opened < 3.5  # delivered on time, not at a later heartbeat
        assert reader.next().kind == "end"
    finally:
        reader.close()


def test_stream_of_an_ended_login_says_so_and_closes(instances: TwoInstances) -> None:
    browser = HttpBrowser()
    started = instances.start(browser)
    page = browser.session.get(f"{browser.base}/login/{started.transaction_id}", timeout=10)
    from login_support import Browser

    browser.session.post(
        f"{browser.base}/login/{started.transaction_id}/cancel",
        data={"csrf": Browser.csrf(page.text)},
        allow_redirects=False,
        timeout=10,
    )
    reader = EventReader(browser.session, events_url(browser, started))
    try:
        assert reader.states(1) == ["cancelled"]
        assert reader.next().kind == "end"
    finally:
        reader.close()


def test_stranger_gets_no_stream(instances: TwoInstances) -> None:
    browser = HttpBrowser()
    started = instances.start(browser)
    stranger = requests.get(events_url(browser, started), timeout=10)
    assert stranger.status_code == 403 and stranger.json()["error"] == "forbidden"
    assert not stranger.headers["Content-Type"].startswith("text/event-stream")


@pytest.mark.parametrize("instances", [{"EVENTS_HEARTBEAT": 1}], indirect=True)
def test_many_pages_share_one_subscription(
    instances: TwoInstances, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_module, "IDLE_SECONDS", 0.5)
    hub = event_hub(instances.page.app)
    browsers = [HttpBrowser() for _ in range(5)]
    started = [instances.start(b) for b in browsers]
    readers = [
        EventReader(b.session, events_url(b, s)) for b, s in zip(browsers, started, strict=True)
    ]
    try:
        for reader in readers:
            assert reader.states(1) == ["created"]
        assert hub.waiting == 5
        with instances.page.app.app_context():
            from idp.extensions import get_store

            client = get_store().client
            channels = client.execute_command("PUBSUB", "NUMPAT")
        assert int(channels) >= 1
        # one phone moves one page; the others hear nothing
        phone = instances.phone()
        assert (
            phone.post(
                "/device/v1/pickup", json={"qr": frame(browsers[2], started[2])["content"]}
            ).status_code
            == 200
        )
        assert readers[2].states(1) == ["picked_up"]
        for index, reader in enumerate(readers):
            if index != 2:
                with pytest.raises(queue.Empty):
                    reader.next(timeout=0.3)
    finally:
        for reader in readers:
            reader.close()
    # closed pages leave the hub (at their next write), and the idle thread stops
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (hub.waiting or hub._thread is not None):
        time.sleep(0.1)
    assert hub._thread is None


def test_redis_lost_ends_the_stream_with_unavailable(
    db_url: str, private_redis: PrivateRedis, login_pki: LoginPki
) -> None:
    server = LiveServer(
        lambda issuer: make_login_app(
            db_url, private_redis.url, login_pki, ISSUER=issuer, REDIS_TIMEOUT=0.5
        )
    )
    try:
        rp = RelyingParty(server.app)
        browser = HttpBrowser()
        started = browser.start(
            server.url + "/authorize?" + urlencode(rp.authorization_request().params)
        )
        reader = EventReader(browser.session, events_url(browser, started))
        try:
            assert reader.states(1) == ["created"]
            private_redis.stop()
            lost = reader.next(timeout=10)
            assert lost.data == {"state": None, "error": "unavailable"}
            assert reader.next().kind == "end"
        finally:
            reader.close()
        # while Redis is down a new stream is refused with a typed 503, not a 500
        response = browser.session.get(
            events_url(browser, started), timeout=10, headers={"Accept": "application/json"}
        )
        assert response.status_code == 503
        assert response.json()["error"] == "temporarily_unavailable"
    finally:
        server.stop()
        dispose(server.app)


@pytest.mark.parametrize("instances", [{"EVENTS_MAX_STREAMS": 2}], indirect=True)
def test_streams_past_the_cap_are_refused_and_the_page_polls(instances: TwoInstances) -> None:
    browsers = [HttpBrowser() for _ in range(3)]
    started = [instances.start(b) for b in browsers]
    readers = [
        EventReader(b.session, events_url(b, s))
        for b, s in zip(browsers, started[:2], strict=False)
    ]
    try:
        for reader in readers:
            assert reader.states(1) == ["created"]
        busy = browsers[2].session.get(events_url(browsers[2], started[2]), timeout=10)
        assert busy.status_code == 503 and busy.json() == {"error": "busy"}
        assert int(busy.headers["Retry-After"]) >= 1
        status = browsers[2].session.get(
            f"{browsers[2].base}/login/{started[2].transaction_id}/status", timeout=10
        )
        assert status.status_code == 200 and status.json()["state"] == "created"
    finally:
        for reader in readers:
            reader.close()
