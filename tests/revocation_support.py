"""Test support for revocation data: CRLs and an OCSP responder over HTTP on 127.0.0.1.

- :class:`CrlServer` -- serves CRL bytes by path (``set``), or 503 (``failing``); it can be
  stopped and started again on the same port.
- :class:`OcspServer` -- the real ``openssl ocsp`` responder (file mode: one process per
  request, as in tests/card/test_ocsp.py) behind HTTP, for both test CAs; ``register`` and
  ``revoke`` write its index files.
- :func:`attempt_login` -- one device login with a virtual card over the device API: the
  outcome ("verified") or the device API's error code.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from flask import Flask
from login_support import Browser, LoginPki, device_login, virtual_card
from provider_support import RelyingParty

from idp.card.testpki import IssuedCa, ResidentCredentials
from idp.handoff.device_client import DeviceApiError

OPENSSL_TIMEOUT = 10.0


class _Server:
    """A ThreadingHTTPServer on 127.0.0.1 that can be stopped and restarted on its port."""

    handler: type[BaseHTTPRequestHandler]

    def __init__(self) -> None:
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.start()

    def start(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), self.handler)
        server.owner = self  # type: ignore[attr-defined]
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join(timeout=5)
        self._server = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class _CrlHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        owner: CrlServer = self.server.owner  # type: ignore[attr-defined]
        owner.requests += 1
        body = owner.bodies.get(self.path)
        if owner.failing or body is None:
            self.send_error(503 if owner.failing else 404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/pkix-crl")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


class CrlServer(_Server):
    handler = _CrlHandler

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}
        self.failing = False
        self.requests = 0
        super().__init__()

    def url(self, kind: str) -> str:
        return f"{self.base}/{kind}.crl"

    def set(self, kind: str, crl: x509.CertificateRevocationList) -> None:
        self.bodies[f"/{kind}.crl"] = crl.public_bytes(Encoding.DER)

    def publish(
        self,
        login_pki: LoginPki,
        *,
        revoked: Iterable[int] = (),
        this_update: datetime | None = None,
        next_update: datetime | None = None,
    ) -> None:
        """Fresh CRLs of both test CAs (``revoked`` serials on the auth CA's)."""
        now = datetime.now(UTC)
        serials = list(revoked)
        for kind in ("auth", "sign"):
            entries = (
                [(s, now - timedelta(minutes=5), None) for s in serials] if kind == "auth" else []
            )
            self.set(
                kind,
                login_pki.pki.crl(
                    kind,  # type: ignore[arg-type]
                    entries,
                    this_update=this_update or now - timedelta(minutes=1),
                    next_update=next_update or now + timedelta(days=1),
                ),
            )

    def settings(self, **overrides: Any) -> dict[str, Any]:
        return {
            "JPKI_CRL_FILES": [],
            "JPKI_CRL_URLS": [self.url("auth"), self.url("sign")],
        } | overrides


def _openssl_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%y%m%d%H%M%SZ")


def _pem(path: Path, ca: IssuedCa) -> tuple[Path, Path]:
    cert = path.with_suffix(".pem")
    key = path.with_suffix(".key")
    cert.write_bytes(ca.certificate.public_bytes(Encoding.PEM))
    key.write_bytes(
        ca.private_key.private_bytes(
            Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert, key


class _OcspHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        owner: OcspServer = self.server.owner  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers["Content-Length"]))
        try:
            answer = owner.answer(body)
        except (ValueError, OSError, subprocess.SubprocessError):
            self.send_error(500)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/ocsp-response")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        return


class OcspServer(_Server):
    """``openssl ocsp -index`` per CA behind HTTP (the CA signs its own answers)."""

    handler = _OcspHandler

    def __init__(self, login_pki: LoginPki, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.requests = 0
        self._lock = threading.Lock()
        self._lines: dict[str, dict[int, str]] = {"auth": {}, "sign": {}}
        self._cas: dict[bytes, tuple[str, Path, Path]] = {}
        for kind, ca in (("auth", login_pki.pki.auth_ca), ("sign", login_pki.pki.sign_ca)):
            cert, key = _pem(directory / f"{kind}-ca", ca)
            key_hash = x509.SubjectKeyIdentifier.from_public_key(ca.certificate.public_key())
            self._cas[key_hash.digest] = (kind, cert, key)
            self._write(kind)
        super().__init__()

    @property
    def url(self) -> str:
        return f"{self.base}/ocsp"

    def _write(self, kind: str) -> None:
        lines = "".join(line + "\n" for line in self._lines[kind].values())
        (self.directory / f"{kind}-index.txt").write_text(lines)

    def _line(self, certificate: x509.Certificate, revoked_at: datetime | None) -> str:
        serial = format(certificate.serial_number, "X")
        serial = serial if len(serial) % 2 == 0 else "0" + serial
        status = "R" if revoked_at else "V"
        revocation = f"{_openssl_time(revoked_at)},keyCompromise" if revoked_at else ""
        expiry = _openssl_time(certificate.not_valid_after_utc)
        return "\t".join([status, expiry, revocation, serial, "unknown", f"/CN={serial}"])

    def register(self, *credentials: ResidentCredentials) -> None:
        """Make the responder answer ``good`` for these residents' certificates."""
        with self._lock:
            for creds in credentials:
                for kind, cert in (
                    ("auth", creds.auth_certificate),
                    ("sign", creds.sign_certificate),
                ):
                    if cert is not None:
                        self._lines[kind][cert.serial_number] = self._line(cert, None)
            self._write("auth")
            self._write("sign")

    def revoke(self, creds: ResidentCredentials) -> None:
        with self._lock:
            cert = creds.auth_certificate
            at = (datetime.now(UTC) - timedelta(minutes=5)).replace(microsecond=0)
            self._lines["auth"][cert.serial_number] = self._line(cert, at)
            self._write("auth")

    def answer(self, body: bytes) -> bytes:
        request = ocsp.load_der_ocsp_request(body)
        kind, cert, key = self._cas[request.issuer_key_hash]
        with self._lock:
            self.requests += 1
            number = self.requests
        request_path = self.directory / f"request-{number}.der"
        response_path = self.directory / f"response-{number}.der"
        request_path.write_bytes(body)
        subprocess.run(
            [
                "openssl", "ocsp",
                "-index", str(self.directory / f"{kind}-index.txt"),
                "-CA", str(cert), "-rsigner", str(cert), "-rkey", str(key),
                "-reqin", str(request_path), "-respout", str(response_path),
                "-nmin", "5",
            ],
            check=True,
            capture_output=True,
            timeout=OPENSSL_TIMEOUT,
        )  # fmt: skip
        return response_path.read_bytes()


def attempt_login(
    app: Flask, login_pki: LoginPki, resident: str = "yamada", *, pages: list[str] | None = None
) -> str:
    """A login from the browser through the device API: "verified" or the refusal's code.
    On a refusal, the login page the resident then sees is appended to ``pages``."""
    rp = RelyingParty(app)
    browser = Browser(rp)
    started = browser.start(rp.authorization_request())
    _, card = virtual_card(login_pki, login_pki.credentials(resident))
    try:
        outcome = device_login(app, started.handoff_url, card)
    except DeviceApiError as error:
        status = browser.status(started)
        assert status["state"] == "failed", status  # never half-done
        assert status["failure"] == error.code, (status, error.code)
        if pages is not None:
            page = browser.http.get(f"/login/{started.transaction_id}")
            pages.append(page.get_data(as_text=True))
        return error.code
    assert browser.status(started)["state"] == "card_verified"
    return outcome.status
