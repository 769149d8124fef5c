"""Test support for the card login: a saved test PKI, an app that trusts it, a device.

Importable from any test (``tests/`` is on ``sys.path``)::

    from login_support import LoginPki, make_login_app, FlaskHttp, Browser, device_login

- :class:`LoginPki` -- a :class:`~idp.card.testpki.TestPki` saved to a directory with the
  anchors and a CRL per CA (``revoke(...)`` rewrites the CRL with more serials).
- :func:`make_login_app` -- ``provider_support.make_app`` configured to trust that PKI.
- :class:`FlaskHttp` -- the device client's HTTP over a cookie-less Flask test client.
- :class:`Browser` -- drives the login pages with the cookie-holding client of a relying party.
- :func:`virtual_card` / :func:`device_login` -- a VirtualCard over InProcessTransport driven
  by the shared device client (:mod:`idp.handoff.device_client`).
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from flask import Flask
from flask.testing import FlaskClient
from provider_support import ISSUER, RelyingParty, callback_params, make_app
from werkzeug.serving import BaseWSGIServer, make_server

from idp.card.challenge import Challenge
from idp.card.jpki import JpkiClient
from idp.card.testpki import RESIDENTS, ResidentCredentials, TestPki
from idp.card.transport import InProcessTransport
from idp.card.virtual import VirtualCard
from idp.handoff.device_client import (
    DeviceClient,
    DeviceOutcome,
    FixedPrompts,
    run_device_login,
)

APP_VERSION = "myna-idp-tests/1"


@dataclass
class LoginPki:
    """A test PKI on disk: anchors and CRLs as the provider's settings name them."""

    pki: TestPki
    directory: Path
    revoked: dict[str, list[int]] = field(default_factory=lambda: {"auth": [], "sign": []})

    @classmethod
    def create(cls, directory: Path, pki: TestPki | None = None) -> LoginPki:
        login_pki = cls(pki or TestPki.generate(), directory)
        directory.mkdir(parents=True, exist_ok=True)
        login_pki.pki.save(directory)
        login_pki.write_crls()
        return login_pki

    @property
    def auth_anchor(self) -> Path:
        return self.directory / "auth-ca.pem"

    @property
    def sign_anchor(self) -> Path:
        return self.directory / "sign-ca.pem"

    def crl_path(self, kind: str) -> Path:
        return self.directory / f"{kind}.crl.pem"

    def write_crls(self, *, next_update: datetime | None = None) -> None:
        now = datetime.now(UTC)
        for kind in ("auth", "sign"):
            crl = self.pki.crl(
                kind,  # type: ignore[arg-type]
                [(serial, now - timedelta(minutes=5), None) for serial in self.revoked[kind]],
                this_update=now - timedelta(minutes=1),
                next_update=next_update or now + timedelta(days=1),
            )
            self.crl_path(kind).write_bytes(crl.public_bytes(Encoding.PEM))

    def revoke(self, kind: str, serial: int) -> None:
        self.revoked[kind].append(serial)
        self.write_crls()

    def settings(self) -> dict[str, Any]:
        return {
            "JPKI_AUTH_ANCHORS": [str(self.auth_anchor)],
            "JPKI_SIGN_ANCHORS": [str(self.sign_anchor)],
            "JPKI_CRL_FILES": [str(self.crl_path("auth")), str(self.crl_path("sign"))],
        }

    def credentials(self, resident: str = "yamada", variant: str = "good") -> ResidentCredentials:
        return self.pki.issue(RESIDENTS[resident], variant=variant)


def make_login_app(
    database_url: str, redis_url: str, login_pki: LoginPki, **overrides: Any
) -> Flask:
    config = login_pki.settings()
    config.update(overrides)
    return make_app(database_url, redis_url, **config)


class FlaskHttp:
    """The device client's HTTP over a Flask test client (no cookies: a separate device)."""

    def __init__(self, app: Flask) -> None:
        self.client = app.test_client(use_cookies=False)

    @staticmethod
    def _path(url: str) -> str:
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == ISSUER, url
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def get(self, url: str) -> tuple[int, Any]:
        response = self.client.get(self._path(url))
        return response.status_code, response.get_json(silent=True)

    def post(self, url: str, body: Mapping[str, Any]) -> tuple[int, Any]:
        response = self.client.post(self._path(url), json=dict(body))
        return response.status_code, response.get_json(silent=True)


def virtual_card(
    login_pki: LoginPki,
    credentials: ResidentCredentials,
    *,
    pin: str = "1234",
    sign_password: str = "ABC123",
) -> tuple[VirtualCard, JpkiClient]:
    card = VirtualCard.from_credentials(
        credentials, login_pki.pki, pin=pin, sign_password=sign_password
    )
    return card, JpkiClient(InProcessTransport(card))


_HANDOFF = re.compile(r"idp card login ([^\s<]+)")


@dataclass
class Started:
    """A login started in the browser: the page, its transaction id and the handoff URL."""

    page: str
    transaction_id: str
    handoff_url: str

    @property
    def status_path(self) -> str:
        return f"/login/{self.transaction_id}/status"

    @property
    def continue_path(self) -> str:
        return f"/login/{self.transaction_id}/continue"


class Browser:
    """The resident's browser: the relying party's test client (it holds the cookie)."""

    def __init__(self, rp: RelyingParty) -> None:
        self.rp = rp
        self.http: FlaskClient = rp.http

    def start(self, request: Any) -> Started:
        response = self.rp.authorize(request)
        assert response.status_code == 303, response.get_data(as_text=True)
        location = response.headers["Location"]
        match = re.fullmatch(r"/login/([A-Za-z0-9_-]+)", urlsplit(location).path)
        assert match, location
        page = self.http.get(location)
        assert page.status_code == 200, page.get_data(as_text=True)
        html = page.get_data(as_text=True)
        handoff = _HANDOFF.search(html)
        assert handoff, html
        return Started(html, match.group(1), handoff.group(1))

    def status(self, started: Started) -> dict[str, Any]:
        body = self.http.get(started.status_path).get_json()
        assert isinstance(body, dict)
        return body

    def proceed(self, started: Started) -> Any:
        return self.http.get(started.continue_path)

    @staticmethod
    def csrf(html: str) -> str:
        match = re.search(r'name="csrf" value="([^"]+)"', html)
        assert match, html
        return match.group(1)

    def consent(self, started: Started, page: str, decision: str = "approve") -> Any:
        return self.http.post(
            f"/login/{started.transaction_id}/consent",
            data={"csrf": self.csrf(page), "decision": decision},
        )


def device_login(
    app: Flask,
    handoff_url: str,
    card: JpkiClient,
    prompts: FixedPrompts | None = None,
) -> DeviceOutcome:
    client = DeviceClient(FlaskHttp(app), handoff_url, app_version=APP_VERSION)
    return run_device_login(client, card, prompts or FixedPrompts())


def full_login(
    rp: RelyingParty,
    card: JpkiClient,
    *,
    approve: bool = True,
    prompts: FixedPrompts | None = None,
    **overrides: str | None,
) -> tuple[Any, dict[str, list[str]], DeviceOutcome]:
    """authorize -> page -> device -> continue -> (consent) -> callback parameters."""
    browser = Browser(rp)
    request = rp.authorization_request(**overrides)
    started = browser.start(request)
    outcome = device_login(rp.app, started.handoff_url, card, prompts)
    assert browser.status(started)["state"] == "card_verified"
    response = browser.proceed(started)
    if response.status_code == 200:
        response = browser.consent(
            started, response.get_data(as_text=True), "approve" if approve else "deny"
        )
    assert response.status_code == 302, response.get_data(as_text=True)
    return request, callback_params(response.headers["Location"]), outcome


def certificate_der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


def serials(credentials: Iterable[ResidentCredentials]) -> list[int]:
    return [c.auth_certificate.serial_number for c in credentials]


# -- software signing (the real validation path without a card) ---------------------------------


def sign_challenge(key: rsa.RSAPrivateKey, challenge: Challenge) -> bytes:
    """What the card computes: RS256 over ``Challenge.to_be_signed()``."""
    return key.sign(challenge.to_be_signed(), padding.PKCS1v15(), hashes.SHA256())


def challenge_of(document: Mapping[str, Any]) -> Challenge:
    return Challenge(
        origin=document["origin"],
        nonce=document["nonce"],
        transaction_id=document["transaction_id"],
        purpose=document["purpose"],
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def software_token(
    credentials: ResidentCredentials,
    document: Mapping[str, Any],
    *,
    certificate: x509.Certificate | None = None,
    key: rsa.RSAPrivateKey | None = None,
    with_signing: bool | None = None,
) -> dict[str, str]:
    """The token a card holding ``credentials`` would send for the challenge ``document``."""
    challenge = challenge_of(document)
    token = {
        "unverifiedCertificate": b64(certificate_der(certificate or credentials.auth_certificate)),
        "algorithm": "RS256",
        "signature": b64(sign_challenge(key or credentials.auth_key, challenge)),
        "format": "myna:1",
        "appVersion": APP_VERSION,
    }
    if with_signing if with_signing is not None else document["purpose"] == "enroll":
        assert credentials.sign_certificate is not None and credentials.sign_key is not None
        token["signingCertificate"] = b64(certificate_der(credentials.sign_certificate))
        token["signingSignature"] = b64(sign_challenge(credentials.sign_key, challenge))
    return token


# -- a real HTTP server on loopback ---------------------------------------------------------------


class LiveServer:
    """The app behind werkzeug's threaded server on 127.0.0.1 (an ephemeral port).

    ``build(issuer)`` makes the app once the port (and so the issuer URL) is known.
    """

    def __init__(self, build: Callable[[str], Flask]) -> None:
        self._app: Flask | None = None

        def dispatch(environ: Any, start_response: Any) -> Any:
            assert self._app is not None
            return self._app(environ, start_response)

        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, dispatch, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._app = build(self.url)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def app(self) -> Flask:
        assert self._app is not None
        return self._app

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


# -- fixtures (imported by the conftest files of tests/e2e, tests/handoff, tests/account, ...) --


@pytest.fixture(scope="session")
def shared_pki() -> TestPki:
    return TestPki.generate()


@pytest.fixture
def login_pki(shared_pki: TestPki, tmp_path: Path) -> LoginPki:
    return LoginPki.create(tmp_path / "pki", shared_pki)


@pytest.fixture
def app(db_url: str, redis_url: str, login_pki: LoginPki) -> Iterator[Flask]:
    application = make_login_app(db_url, redis_url, login_pki)
    yield application
    dispose(application)


def dispose(application: Flask) -> None:
    with application.app_context():
        from idp.storage.base import db

        db.engine.dispose()


@pytest.fixture
def rp(app: Flask) -> RelyingParty:
    return RelyingParty(app)


# -- a browser over real HTTP ----------------------------------------------------------------------


class HttpBrowser:
    """The resident's browser against a live provider (``requests``, cookies kept)."""

    def __init__(self) -> None:
        import requests

        self.session = requests.Session()

    def start(self, authorize_url: str) -> Started:
        response = self.session.get(authorize_url, allow_redirects=False, timeout=10)
        assert response.status_code == 303, response.text
        page_url = requests_join(authorize_url, response.headers["Location"])
        page = self.session.get(page_url, timeout=10)
        assert page.status_code == 200, page.text
        match = re.fullmatch(r"/login/([A-Za-z0-9_-]+)", urlsplit(page_url).path)
        handoff = _HANDOFF.search(page.text)
        assert match and handoff, page.text
        self.base = f"{urlsplit(page_url).scheme}://{urlsplit(page_url).netloc}"
        return Started(page.text, match.group(1), handoff.group(1))

    def finish(self, started: Started, *, approve: bool = True) -> str:
        """Continue after the card; consent if asked; the redirect back to the client."""
        response = self.session.get(
            self.base + started.continue_path, allow_redirects=False, timeout=10
        )
        if response.status_code == 200:
            response = self.session.post(
                self.base + f"/login/{started.transaction_id}/consent",
                data={
                    "csrf": Browser.csrf(response.text),
                    "decision": "approve" if approve else "deny",
                },
                allow_redirects=False,
                timeout=10,
            )
        assert response.status_code == 302, response.text
        return str(response.headers["Location"])


def requests_join(base: str, location: str) -> str:
    from urllib.parse import urljoin

    return urljoin(base, location)


def virtual_device_login(
    handoff_url: str, login_pki: LoginPki, resident: str = "yamada"
) -> DeviceOutcome:
    """The device side over real HTTP with a virtual card."""
    from idp.handoff.device_client import RequestsHttp

    _, card = virtual_card(login_pki, login_pki.credentials(resident))
    http = RequestsHttp()
    try:
        client = DeviceClient(http, handoff_url, app_version=APP_VERSION)
        return run_device_login(client, card, FixedPrompts())
    finally:
        http.close()


@pytest.fixture
def live(db_url: str, redis_url: str, login_pki: LoginPki) -> Iterator[LiveServer]:
    """The provider behind a real HTTP server on loopback, trusting ``login_pki``."""
    server = LiveServer(lambda issuer: make_login_app(db_url, redis_url, login_pki, ISSUER=issuer))
    yield server
    server.stop()
    dispose(server.app)


def register_client(
    app: Flask,
    *,
    client_id: str,
    redirect_uri: str,
    jwks: Mapping[str, Any],
    name: str = "加賀市 電子申請（デモ）",
    alg: str = "ES256",
) -> None:
    """Register a private_key_jwt client with its public JWKS."""
    from idp.oidc.clients import new_client
    from idp.storage.clients import add_client

    with app.app_context():
        created = new_client(
            name=name,
            name_en="Kaga City e-Application (demo)",
            redirect_uris=[redirect_uri],
            auth_method="private_key_jwt",
            jwks=dict(jwks),
            id_token_alg=alg,
            client_id=client_id,
        )
        add_client(created.client)
