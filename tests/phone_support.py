"""Test support for the QR flow with the phone simulator: live servers on loopback.

Importable from any test (``tests/`` is on ``sys.path``)::

    from phone_support import Stack, start_stack, Recorder, connect_to

- :func:`start_stack` -- the provider (werkzeug thread, real Redis, the given database), the
  demo relying party (a registered ``private_key_jwt`` client) and the phone simulator, each on
  its own ephemeral port of 127.0.0.1; optionally a second provider instance on the same Redis
  prefix and database, which the phone's device API traffic is routed to (:func:`connect_to`,
  what a load balancer does).
- :class:`Recorder` -- WSGI middleware that records each request (method, path, body), to show
  which instance served what and that no secret ever reached the provider.
- :func:`login_frame` -- the current QR frame of a login, read as its owning browser.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from flask import Flask
from joserfc.jwk import ECKey, KeySet
from login_support import LiveServer, LoginPki, dispose, make_login_app, register_client
from requests.adapters import HTTPAdapter

import phone_simulator
from relying_party_demo import create_app as create_rp_app

CLIENT_ID = "demo-rp"


@dataclass
class Recorded:
    method: str
    path: str
    body: bytes


@dataclass
class Recorder:
    """WSGI middleware: records every request before passing it on."""

    app: Callable[..., Any]
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        import io

        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        with self.lock:
            self.requests.append(Recorded(environ["REQUEST_METHOD"], environ["PATH_INFO"], body))
        return self.app(environ, start_response)

    def paths(self, prefix: str = "") -> list[str]:
        with self.lock:
            return [f"{r.method} {r.path}" for r in self.requests if r.path.startswith(prefix)]

    def bodies(self) -> bytes:
        with self.lock:
            return b"\n".join(r.body for r in self.requests)


class _ConnectTo(HTTPAdapter):
    """Send requests for one origin to another host:port, keeping URL and Host header."""

    def __init__(self, target_netloc: str) -> None:
        super().__init__()
        self.target = target_netloc

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(request.url)
        request.headers["Host"] = parts.netloc
        request.url = urlunsplit(parts._replace(netloc=self.target))
        return super().send(request, *args, **kwargs)


def connect_to(origin: str, target_netloc: str) -> Callable[[], requests.Session]:
    """A session factory whose requests for ``origin`` go to ``target_netloc``."""

    def factory() -> requests.Session:
        session = requests.Session()
        session.mount(origin + "/", _ConnectTo(target_netloc))
        return session

    return factory


@dataclass
class Stack:
    """The servers of one test: provider(s), relying party, phone simulator."""

    idp: LiveServer
    rp: LiveServer
    phone: LiveServer
    idp_requests: Recorder
    second: LiveServer | None = None
    second_requests: Recorder | None = None

    @property
    def phone_app(self) -> phone_simulator.app.Phone:
        return phone_simulator.app.phone_of(self.phone.app)

    def stop(self) -> None:
        for server in (self.phone, self.rp, self.second, self.idp):
            if server is not None:
                server.stop()
        for server in (self.second, self.idp):
            if server is not None:
                dispose(server.app)


def _recorded(app: Flask) -> Recorder:
    recorder = Recorder(app.wsgi_app)
    app.wsgi_app = recorder  # type: ignore[method-assign]
    return recorder


@contextmanager
def start_stack(
    db_url: str,
    redis_url: str,
    login_pki: LoginPki,
    tmp_path: Path,
    *,
    two_instances: bool = False,
    idp_settings: dict[str, Any] | None = None,
    phone_settings: dict[str, Any] | None = None,
) -> Iterator[Stack]:
    settings = dict(idp_settings or {})
    recorders: list[Recorder] = []

    def build_idp(issuer: str) -> Flask:
        app = make_login_app(db_url, redis_url, login_pki, ISSUER=issuer, **settings)
        recorders.append(_recorded(app))
        return app

    idp = LiveServer(build_idp)
    second: LiveServer | None = None
    if two_instances:
        # Same issuer, database, Redis namespace and secrets: one provider, two processes'
        # worth of instances behind an imaginary load balancer.
        shared = {
            **settings,
            "REDIS_PREFIX": idp.app.config["REDIS_PREFIX"],
            "SECRET_KEY": idp.app.config["SECRET_KEY"],
        }

        def build_second(_url: str) -> Flask:
            app = make_login_app(db_url, redis_url, login_pki, ISSUER=idp.url, **shared)
            recorders.append(_recorded(app))
            return app

        second = LiveServer(build_second)

    key = ECKey.generate_key("P-256", parameters={"kid": "demo-rp-1"}, private=True)
    key_file = tmp_path / "rp-key.json"
    key_file.write_text(json.dumps(key.as_dict(private=True)))

    def build_rp(url: str) -> Flask:
        register_client(
            idp.app,
            client_id=CLIENT_ID,
            redirect_uri=f"{url}/callback",
            jwks=KeySet([key]).as_dict(private=False),
        )
        return create_rp_app(
            {
                "ISSUER": idp.url,
                "CLIENT_ID": CLIENT_ID,
                "KEY_FILE": str(key_file),
                "REDIRECT_URI": f"{url}/callback",
                "SECRET_KEY": "rp-test-secret-key-rp-test-secret-key",
            }
        )

    rp = LiveServer(build_rp)
    phone_config: dict[str, Any] = {
        "PROVIDERS": [idp.url],
        "PKI": login_pki.pki,
        "SECRET_KEY": "phone-test-secret-key-phone-test",
    }
    if second is not None:
        phone_config["SESSION_FACTORY"] = connect_to(idp.url, urlsplit(second.url).netloc)
    phone_config.update(phone_settings or {})
    phone = LiveServer(lambda _url: phone_simulator.create_app(phone_config))
    stack = Stack(
        idp=idp,
        rp=rp,
        phone=phone,
        idp_requests=recorders[0],
        second=second,
        second_requests=recorders[1] if second is not None else None,
    )
    try:
        yield stack
    finally:
        stack.stop()


def login_frame(session: requests.Session, idp_url: str, transaction_id: str) -> dict[str, Any]:
    """``GET /login/<id>/qr`` as the browser that owns the login."""
    response = session.get(f"{idp_url}/login/{transaction_id}/qr", timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


def no_secret_in(data: bytes, secrets: Iterable[str]) -> bool:
    return not any(secret.encode() in data for secret in secrets)
