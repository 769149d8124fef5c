"""Oversized bodies and a Redis that goes away: clean errors, never a 500."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from provider_support import (
    CapturingLogin,
    RelyingParty,
    callback_params,
    enroll_test_resident,
    install_capturing_login,
)

from idp.extensions import get_store
from idp.storage.audit import list_releases
from idp.storage.ephemeral import StoreUnavailableError


class DisposableRedis:
    """A redis-server of our own on a free loopback port, to be stopped mid-test."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(directory),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def disposable_redis(tmp_path: Path) -> Iterator[DisposableRedis]:
    server = DisposableRedis(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def fragile(
    app_factory: Callable[..., Flask], disposable_redis: DisposableRedis
) -> tuple[Flask, RelyingParty, CapturingLogin, str]:
    app = app_factory(REDIS_URL=disposable_redis.url, REDIS_TIMEOUT=0.5)
    login = install_capturing_login(app)
    with app.app_context():
        resident = enroll_test_resident().id
    return app, RelyingParty(app), login, resident


def test_oversized_token_request_is_413_json(rp: RelyingParty) -> None:
    response = rp.http.post("/token", data={"grant_type": "authorization_code", "x": "a" * 70_000})
    assert response.status_code == 413
    assert response.get_json()["error"] == "invalid_request"


def test_oversized_authorization_post_is_413_page(rp: RelyingParty) -> None:
    response = rp.http.post(
        "/authorize", data={"state": "a" * 70_000}, headers={"Accept": "text/html"}
    )
    assert response.status_code == 413
    assert response.mimetype == "text/html"
    assert 'id="error-code">invalid_request<' in response.get_data(as_text=True)


def test_redis_gone_at_the_token_endpoint_is_503(
    fragile: tuple[Flask, RelyingParty, CapturingLogin, str], disposable_redis: DisposableRedis
) -> None:
    _, rp, login, resident = fragile
    request, params = rp.login(login, resident)
    disposable_redis.stop()
    response = rp.token_request(params["code"][0], request.verifier)
    assert response.status_code == 503
    assert response.get_json()["error"] == "temporarily_unavailable"


def test_redis_gone_at_userinfo_is_503(
    fragile: tuple[Flask, RelyingParty, CapturingLogin, str], disposable_redis: DisposableRedis
) -> None:
    _, rp, login, resident = fragile
    request, params = rp.login(login, resident)
    token = rp.token_request(params["code"][0], request.verifier).get_json()["access_token"]
    disposable_redis.stop()
    response = rp.userinfo(token)
    assert response.status_code == 503
    assert response.get_json()["error"] == "temporarily_unavailable"


def test_redis_gone_when_issuing_the_code_redirects_temporarily_unavailable(
    fragile: tuple[Flask, RelyingParty, CapturingLogin, str], disposable_redis: DisposableRedis
) -> None:
    app, rp, login, resident = fragile
    request = rp.authorization_request()
    assert rp.authorize(request).status_code == 200
    disposable_redis.stop()
    response = rp.finish(login.last, resident)
    params = callback_params(response.headers["Location"])
    assert params["error"] == ["temporarily_unavailable"]
    assert params["state"] == [request.state]
    with app.app_context():
        assert list_releases(resident) == []  # nothing was released, nothing recorded


def test_redis_gone_in_a_browser_request_is_a_503_page(
    fragile: tuple[Flask, RelyingParty, CapturingLogin, str], disposable_redis: DisposableRedis
) -> None:
    app, _, _, _ = fragile
    disposable_redis.stop()

    @app.route("/_test/uses-store")
    def uses_store() -> str:
        get_store().get("anything")
        return "unreachable"

    response = app.test_client().get("/_test/uses-store", headers={"Accept": "text/html"})
    assert response.status_code == 503
    assert 'id="error-code">temporarily_unavailable<' in response.get_data(as_text=True)
    with app.app_context(), pytest.raises(StoreUnavailableError):
        get_store().ping()


def test_discovery_does_not_need_redis(
    fragile: tuple[Flask, RelyingParty, CapturingLogin, str], disposable_redis: DisposableRedis
) -> None:
    _, rp, _, _ = fragile
    disposable_redis.stop()
    assert rp.http.get("/.well-known/openid-configuration").status_code == 200
    assert rp.http.get("/jwks.json").status_code == 200
