"""Picking a login up from its rotating QR code: ``POST /device/v1/pickup`` and the browser side.

Real Redis, the app through Flask's test client (the browser holds the cookie, each phone is a
cookie-less client). Every refusal asserts the exact error code and status, and that the
transaction was left as it was (a refused phone takes nothing).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from flask import Flask
from login_support import (
    Browser,
    LoginPki,
    Started,
    device_login,
    dispose,
    make_login_app,
    software_token,
    virtual_card,
)
from provider_support import ISSUER, RelyingParty, callback_params

from idp.extensions import get_settings, get_store
from idp.handoff.qr import frame_code
from idp.handoff.transaction import LoginTransaction, TransactionStore

pytestmark = pytest.mark.redis


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: nothing here depends on the database."""
    return f"sqlite:///{tmp_path / 'idp.sqlite3'}"


class QrLogin:
    """A login started in the browser, its QR frames, and phones picking it up."""

    def __init__(self, rp: RelyingParty, **overrides: str | None) -> None:
        self.rp = rp
        self.app = rp.app
        self.browser = Browser(rp)
        self.started: Started = self.browser.start(rp.authorization_request(**overrides))
        self.id = self.started.transaction_id

    def frame(self) -> dict[str, Any]:
        response = self.browser.http.get(f"/login/{self.id}/qr")
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.headers["Cache-Control"] == "no-store"
        body = response.get_json()
        assert isinstance(body, dict)
        return body

    def pickup(self, content: Any, phone: Any = None) -> tuple[int, Any]:
        phone = phone or self.app.test_client(use_cookies=False)
        response = phone.post("/device/v1/pickup", json={"qr": content})
        return response.status_code, response.get_json(silent=True)

    def store(self) -> TransactionStore:
        with self.app.app_context():
            return TransactionStore(get_store(), ttl=get_settings().login_ttl)

    def record(self) -> LoginTransaction:
        transaction = self.store().get(self.id)
        assert transaction is not None
        return transaction

    def change(self, **changes: Any) -> None:
        self.store().update(self.record(), **changes)

    def state(self) -> str:
        state = self.browser.status(self.started)["state"]
        assert isinstance(state, str)
        return state


def error(response: tuple[int, Any]) -> tuple[int, str]:
    status, body = response
    assert isinstance(body, dict) and set(body) == {"error", "message"}, body
    return status, body["error"]


def device_path(url: str) -> str:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == ISSUER
    return parts.path


# -- the frame ------------------------------------------------------------------------------------


def test_page_shows_the_first_frame_and_the_verification_code(rp: RelyingParty) -> None:
    login = QrLogin(rp)
    html = login.started.page
    frame = login.frame()
    assert re.fullmatch(
        re.escape(ISSUER) + r"/m/[A-Za-z0-9_-]{22}\?t=(0|[1-9][0-9]*)&c=[0-9a-f]{32}",
        frame["content"],
    )
    record = login.record()
    assert frame["content"].split("/m/")[1].startswith(record.qr_token + "?")
    assert frame["content"].endswith(f"&c={frame_code(record.qr_key, frame['t'])}")
    assert record.qr_token not in (login.id, urlsplit(login.started.handoff_url).path)
    assert re.fullmatch(r"[0-9]{4}", frame["verification_code"])
    assert f'id="verification-code" lang="en">{frame["verification_code"]}<' in html
    # the page embeds the first frame as inline SVG with a text alternative
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in html and "<title>" in html
    assert frame["svg"].startswith("<svg") and frame["verification_code"] in frame["svg"]
    # the same-device button carries the current frame and the way back to this page
    link = frame["app_link"]
    qr, back = re.fullmatch(r"myna-idp://handoff\?qr=([^&]+)&return=([^&]+)", link).groups()  # type: ignore[union-attr]
    assert unquote(qr) == frame["content"] and unquote(back) == f"{ISSUER}/login/{login.id}"
    assert 'id="app-link" href="myna-idp://handoff?qr=' in html
    # qr_start is set once, when the QR is first shown
    start = record.qr_start
    assert start is not None and abs(start - time.time()) < 5
    login.frame()
    assert login.record().qr_start == start


def test_frames_rotate_every_second(rp: RelyingParty) -> None:
    login = QrLogin(rp)
    first = login.frame()
    time.sleep(1.1)
    second = login.frame()
    assert second["t"] > first["t"] and second["content"] != first["content"]
    assert second["verification_code"] == first["verification_code"]


# -- pickup ---------------------------------------------------------------------------------------


def test_pickup_hands_over_the_login(rp: RelyingParty, login_pki: LoginPki) -> None:
    login = QrLogin(rp, scope="openid name")
    frame = login.frame()
    status, body = login.pickup(frame["content"])
    assert status == 200, body
    assert set(body) == {
        "handoff_url",
        "verification_code",
        "client_name",
        "client_name_en",
        "origin",
        "challenge",
    }
    assert body["handoff_url"] == login.started.handoff_url
    assert body["verification_code"] == frame["verification_code"]
    assert body["client_name"] == "加賀市 電子申請"
    assert body["client_name_en"] == "Kaga City e-Application"
    assert body["origin"] == ISSUER
    challenge = body["challenge"]
    assert challenge["transaction_id"] == login.id and challenge["state"] == "picked_up"
    assert challenge["requested_items"] == ["name"]
    assert login.state() == "picked_up"
    # the QR is no longer served, and the page no longer shows it
    refused = login.browser.http.get(f"/login/{login.id}/qr")
    assert refused.status_code == 409 and refused.get_json() == {
        "state": "picked_up",
        "error": "not_waiting",
    }
    page = login.browser.http.get(f"/login/{login.id}").get_data(as_text=True)
    assert '<div id="qr-area" hidden>' in page and "<svg" not in page
    # the phone goes on with the device API at handoff_url, to the end
    _, card = virtual_card(login_pki, login_pki.credentials("yamada"))
    outcome = device_login(rp.app, body["handoff_url"], card)
    assert outcome.status == "verified"
    assert login.state() == "card_verified"
    # back on this device (same-device flow): the login page goes straight on
    back = login.browser.http.get(f"/login/{login.id}")
    assert back.status_code == 302 and f"/login/{login.id}/continue" in back.headers["Location"]


def test_second_phone_is_already_picked_up(rp: RelyingParty) -> None:
    login = QrLogin(rp)
    content = login.frame()["content"]
    assert login.pickup(content)[0] == 200
    assert error(login.pickup(content)) == (409, "already_picked_up")
    assert login.browser.http.get(f"/login/{login.id}/qr").status_code == 409


def test_pickup_race_has_exactly_one_winner(rp: RelyingParty) -> None:
    login = QrLogin(rp)
    content = login.frame()["content"]
    phones = [rp.app.test_client(use_cookies=False) for _ in range(12)]
    barrier = threading.Barrier(len(phones))
    results: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def race(phone: Any) -> None:
        barrier.wait()
        result = login.pickup(content, phone)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=race, args=(phone,)) for phone in phones]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [409] * (len(phones) - 1), results
    assert {body["error"] for status, body in results if status == 409} == {"already_picked_up"}
    assert login.record().version == 2  # qr shown, picked up: one write each


def test_stale_frame_is_refused(rp: RelyingParty) -> None:
    login = QrLogin(rp)
    content = login.frame()["content"]
    start = login.record().qr_start
    assert start is not None
    login.change(qr_start=start - 6)  # the frame's second began 6 s ago; the window is 5 s
    assert error(login.pickup(content)) == (410, "qr_stale")
    assert login.state() == "created"
    fresh = login.frame()["content"]  # a frame shown now is accepted
    assert fresh != content and login.pickup(fresh)[0] == 200


def test_frame_window_is_a_setting(db_url: str, redis_url: str, login_pki: LoginPki) -> None:
    app = make_login_app(db_url, redis_url, login_pki, QR_FRAME_WINDOW=1)
    try:
        login = QrLogin(RelyingParty(app))
        content = login.frame()["content"]
        start = login.record().qr_start
        assert start is not None
        login.change(qr_start=start - 3)
        assert error(login.pickup(content)) == (410, "qr_stale")
    finally:
        dispose(app)


def test_frame_from_the_future_is_stale(rp: RelyingParty) -> None:
    login = QrLogin(rp)
    record = login.record()
    login.frame()
    t = 30  # a frame for half a minute from now, with a correct code (as if the secret leaked)
    future = f"{ISSUER}/m/{record.qr_token}?t={t}&c={frame_code(record.qr_key, t)}"
    assert error(login.pickup(future)) == (410, "qr_stale")


def test_forged_hmac_is_refused(rp: RelyingParty) -> None:
    login = QrLogin(rp)
    content = login.frame()["content"]
    code = content.rsplit("c=", 1)[1]
    forged = content.rsplit("c=", 1)[0] + "c=" + ("0" if code[0] != "0" else "1") + code[1:]
    assert error(login.pickup(forged)) == (400, "qr_forged")
    other_t = re.sub(r"t=(\d+)", lambda m: f"t={int(m.group(1)) + 1}", content)
    assert error(login.pickup(other_t)) == (400, "qr_forged")
    assert login.state() == "created"


def test_frame_for_another_transaction_is_refused(rp: RelyingParty) -> None:
    mine, other = QrLogin(rp), QrLogin(rp)
    mine_frame, other_frame = mine.frame(), other.frame()
    # my token with the other login's code for the same second: the HMAC key differs
    mixed = mine_frame["content"].split("?")[0] + "?" + other_frame["content"].split("?")[1]
    assert error(mine.pickup(mixed)) == (400, "qr_forged")
    assert mine.state() == "created" and other.state() == "created"
    # each frame picks up its own login only
    status, body = mine.pickup(other_frame["content"])
    assert status == 200 and body["challenge"]["transaction_id"] == other.id
    assert mine.state() == "created"


def test_unknown_and_malformed_qr(rp: RelyingParty) -> None:
    login = QrLogin(rp)
    content = login.frame()["content"]
    unknown = re.sub(r"/m/[^?]+", "/m/" + "B" * 22, content)
    assert error(login.pickup(unknown)) == (404, "qr_unknown")
    for bad in (None, 7, "", "https://evil.example/m/x", content + "&x=1", content + "#f"):
        assert error(login.pickup(bad)) == (400, "qr_malformed"), bad
    phone = rp.app.test_client(use_cookies=False)
    assert phone.post("/device/v1/pickup", json=[content]).get_json()["error"] == "qr_malformed"
    garbage = phone.post("/device/v1/pickup", data=b"\xff{", content_type="application/json")
    assert (garbage.status_code, garbage.get_json()["error"]) == (400, "invalid_json")
    form = phone.post("/device/v1/pickup", data={"qr": content})
    assert (form.status_code, form.get_json()["error"]) == (415, "unsupported_media_type")
    wrong_method = phone.get("/device/v1/pickup")
    assert (wrong_method.status_code, wrong_method.get_json()["error"]) == (
        405,
        "method_not_allowed",
    )
    assert login.state() == "created"


def test_expired_transaction_refuses_pickup_and_response(
    rp: RelyingParty, login_pki: LoginPki
) -> None:
    # pickup after expiry
    login = QrLogin(rp)
    content = login.frame()["content"]
    login.change(expires_at=int(time.time()) - 1)
    assert error(login.pickup(content)) == (410, "transaction_expired")
    expired = login.browser.http.get(f"/login/{login.id}/qr")
    assert expired.status_code == 410 and expired.get_json()["state"] == "expired"
    # a device response after expiry (picked up in time, answered too late)
    late = QrLogin(rp)
    status, body = late.pickup(late.frame()["content"])
    assert status == 200
    late.change(expires_at=int(time.time()) - 1)
    token = software_token(login_pki.credentials("yamada"), body["challenge"])
    phone = rp.app.test_client(use_cookies=False)
    response = phone.post(device_path(body["handoff_url"]) + "/response", json=token)
    assert (response.status_code, response.get_json()["error"]) == (410, "transaction_expired")
    assert late.state() == "expired"


def test_ended_transaction_refuses_pickup(rp: RelyingParty) -> None:
    login = QrLogin(rp)
    content = login.frame()["content"]
    page = login.browser.http.get(f"/login/{login.id}").get_data(as_text=True)
    cancelled = login.browser.http.post(
        f"/login/{login.id}/cancel", data={"csrf": Browser.csrf(page)}
    )
    assert cancelled.status_code == 302
    assert error(login.pickup(content)) == (409, "transaction_closed")


def test_phone_abandoning_is_shown_with_a_restart(rp: RelyingParty) -> None:
    login = QrLogin(rp)
    status, body = login.pickup(login.frame()["content"])
    assert status == 200
    phone = rp.app.test_client(use_cookies=False)
    cancel = phone.post(
        device_path(body["handoff_url"]) + "/cancel", json={"reason": "user_cancelled"}
    )
    assert cancel.status_code == 200
    status_doc = login.browser.status(login.started)
    assert status_doc["state"] == "failed" and status_doc["failure"] == "user_cancelled"
    assert status_doc["message"] == "スマートフォンでログインが中止されました。"
    page = login.browser.http.get(f"/login/{login.id}").get_data(as_text=True)
    assert "スマートフォンでログインが中止されました。" in page
    assert "もう一度試す" in page  # the restart button
    retry = login.browser.http.post(f"/login/{login.id}/retry", data={"csrf": Browser.csrf(page)})
    assert retry.status_code == 303
    fresh = retry.headers["Location"].rsplit("/", 1)[1]
    assert fresh != login.id
    frame = login.browser.http.get(f"/login/{fresh}/qr").get_json()
    assert frame["content"] and phone.post("/device/v1/pickup", json={"qr": frame["content"]})


# -- who may see the QR ---------------------------------------------------------------------------


def test_only_the_owner_browser_gets_frames_events_and_status(rp: RelyingParty) -> None:
    login = QrLogin(rp)
    stranger = rp.app.test_client()
    for path in ("qr", "events", "status"):
        response = stranger.get(f"/login/{login.id}/{path}")
        assert response.status_code == 403, path
        assert response.get_json()["error"] == "forbidden"
        assert "svg" not in response.get_data(as_text=True)
    # a browser that owns another login is still a stranger to this one
    other = QrLogin(RelyingParty(rp.app))  # another relying party: another browser
    cookie = other.browser.http.get_cookie("myna-login")
    assert cookie is not None
    stranger.set_cookie("myna-login", cookie.value)
    assert stranger.get(f"/login/{login.id}/qr").status_code == 403
    assert stranger.get(f"/login/{other.id}/qr").status_code == 200
    assert login.state() == "created"


def test_landing_page_explains_and_picks_nothing_up(rp: RelyingParty) -> None:
    login = QrLogin(rp)
    content = login.frame()["content"]
    camera = rp.app.test_client(use_cookies=False)
    page = camera.get(content.removeprefix(ISSUER))
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert '<html lang="ja">' in html and "myna-idp アプリ" in html and "確認コード" in html
    link = re.search(r'id="app-link" href="([^"]+)"', html)
    assert link and link.group(1).replace("&amp;", "&") == (
        "myna-idp://handoff?qr=" + re.sub(r"[:/?=&]", lambda m: f"%{ord(m.group()):02X}", content)
    )
    english = camera.get(content.removeprefix(ISSUER) + "&lang=en").get_data(as_text=True)
    assert '<html lang="en">' in english and "Open the myna-idp app" in english
    assert 'href="?t=' in html  # the language switch keeps the frame
    assert login.state() == "created"
    assert login.pickup(content)[0] == 200  # the landing page took nothing
    bad = camera.get("/m/" + "A" * 22 + "?t=1&c=zz")
    assert bad.status_code == 400 and "正しくありません" in bad.get_data(as_text=True)


# -- Redis losing the flow ------------------------------------------------------------------------


def _flush_prefix(app: Flask) -> int:
    with app.app_context():
        store = get_store()
        keys = list(store.client.scan_iter(match=store.key("*"), count=1000))
        return int(store.client.delete(*keys)) if keys else 0


def test_redis_flushed_between_pickup_and_response(rp: RelyingParty, login_pki: LoginPki) -> None:
    login = QrLogin(rp)
    status, body = login.pickup(login.frame()["content"])
    assert status == 200
    token = software_token(login_pki.credentials("yamada"), body["challenge"])
    assert _flush_prefix(rp.app) > 0  # Redis lost everything (restart without persistence)
    phone = rp.app.test_client(use_cookies=False)
    path = device_path(body["handoff_url"])
    response = phone.post(path + "/response", json=token)
    assert (response.status_code, response.get_json()["error"]) == (404, "transaction_not_found")
    assert login.browser.http.get(f"/login/{login.id}/status").status_code == 410
    page = login.browser.http.get(f"/login/{login.id}")
    assert page.status_code == 410 and "時間内にログインが終わりませんでした" in page.get_data(
        as_text=True
    )
    # nothing was issued: no continue, and the response cannot be replayed into anything
    assert login.browser.http.get(f"/login/{login.id}/continue").status_code == 410
    assert phone.post(path + "/response", json=token).status_code == 404


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """A redis-server of our own (no persistence) that a test may stop and start again."""

    def __init__(self, directory: Path) -> None:
        self.port = _free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def test_redis_restart_mid_flow(
    db_url: str, private_redis: PrivateRedis, login_pki: LoginPki
) -> None:
    app = make_login_app(db_url, private_redis.url, login_pki, REDIS_TIMEOUT=0.5)
    try:
        rp = RelyingParty(app)
        login = QrLogin(rp)
        status, body = login.pickup(login.frame()["content"])
        assert status == 200
        token = software_token(login_pki.credentials("yamada"), body["challenge"])
        phone = app.test_client(use_cookies=False)
        path = device_path(body["handoff_url"])

        private_redis.stop()
        # while Redis is down: typed 503s, never a 500
        response = phone.post(path + "/response", json=token)
        assert (response.status_code, response.get_json()["error"]) == (
            503,
            "temporarily_unavailable",
        )
        status_response = login.browser.http.get(
            f"/login/{login.id}/status", headers={"Accept": "application/json"}
        )
        assert status_response.status_code == 503
        assert status_response.get_json()["error"] == "temporarily_unavailable"
        assert login.browser.http.get(f"/login/{login.id}/qr").status_code == 503
        assert error(login.pickup(login.started.handoff_url)) == (503, "temporarily_unavailable")

        private_redis.start()  # back, but empty
        response = phone.post(path + "/response", json=token)
        assert (response.status_code, response.get_json()["error"]) == (
            404,
            "transaction_not_found",
        )
        assert login.browser.http.get(f"/login/{login.id}/status").status_code == 410
        page = login.browser.http.get(f"/login/{login.id}")
        assert page.status_code == 410
        assert login.browser.http.get(f"/login/{login.id}/continue").status_code == 410
        # a new login from the relying party works again
        again = QrLogin(rp)
        assert again.pickup(again.frame()["content"])[0] == 200
    finally:
        dispose(app)


def test_full_qr_login_issues_one_code(rp: RelyingParty, login_pki: LoginPki) -> None:
    login = QrLogin(rp)
    status, body = login.pickup(login.frame()["content"])
    assert status == 200
    _, card = virtual_card(login_pki, login_pki.credentials("yamada"))
    assert device_login(rp.app, body["handoff_url"], card).status == "verified"
    response = login.browser.proceed(login.started)
    if response.status_code == 200:
        response = login.browser.consent(login.started, response.get_data(as_text=True))
    assert response.status_code == 302
    assert "code" in callback_params(response.headers["Location"])
    again = login.browser.proceed(login.started)
    assert again.status_code in (200, 409) and "code=" not in again.headers.get("Location", "")
