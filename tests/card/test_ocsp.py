"""OCSP checker against a real, independent responder: ``openssl ocsp`` with an index file.

OpenSSL 3.0's ``ocsp -port`` takes only a port number and listens on every interface, so the
responder runs in its file mode instead (``-reqin``/``-respout``: the same responder code, one
process per request, no socket). A small HTTP server bound to 127.0.0.1 puts it behind a URL
for the default ``urllib`` fetch. Answers that openssl cannot be made to give (no nonce, a
wrong nonce, tryLater) are built with ``cryptography``'s ``OCSPResponseBuilder``.
"""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idp.card.testpki import RESIDENTS, IssuedCa, ResidentCredentials, TestPki
from idp.card.validation import (
    CertificateRevokedError,
    CertPurpose,
    OcspResponseInvalidError,
    OcspRevocationChecker,
    RevocationStaleError,
    RevocationUnavailableError,
    RevocationUnknownError,
    TrustConfig,
    validate_certificate,
)
from idp.card.validation.ocsp import urllib_fetch

OPENSSL_TIMEOUT = 10.0


def _pem(path: Path, certificate: x509.Certificate, key: rsa.RSAPrivateKey) -> tuple[Path, Path]:
    path.with_suffix(".pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path = path.with_suffix(".key")
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path.with_suffix(".pem"), key_path


def _responder_certificate(ca: IssuedCa, *, ocsp_signing: bool) -> IssuedCa:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "JPKI-TEST OCSP responder")])
        )
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
    )
    if ocsp_signing:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False
        )
    return IssuedCa(certificate=builder.sign(ca.private_key, hashes.SHA256()), private_key=key)


def _serial_hex(serial: int) -> str:
    text = format(serial, "X")
    return text if len(text) % 2 == 0 else "0" + text


def _openssl_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%y%m%d%H%M%SZ")


@dataclass
class OpenSslResponder:
    """``openssl ocsp -index`` answering one DER request per process."""

    directory: Path
    ca: Path
    signer: Path
    signer_key: Path
    index: Path
    extra: tuple[str, ...] = ()
    requests: int = field(default=0)

    def fetch(self, url: str, body: bytes, timeout: float) -> bytes:
        self.requests += 1
        request = self.directory / f"request-{self.requests}.der"
        response = self.directory / f"response-{self.requests}.der"
        request.write_bytes(body)
        command = [
            "openssl", "ocsp",
            "-index", str(self.index),
            "-CA", str(self.ca),
            "-rsigner", str(self.signer),
            "-rkey", str(self.signer_key),
            "-reqin", str(request),
            "-respout", str(response),
            "-nmin", "5",
            *self.extra,
        ]  # fmt: skip
        try:
            subprocess.run(
                command, check=True, capture_output=True, timeout=min(timeout, OPENSSL_TIMEOUT)
            )
        except subprocess.TimeoutExpired as exc:
            raise TimeoutError("openssl ocsp timed out") from exc
        except subprocess.CalledProcessError as exc:
            raise OSError(exc.stderr.decode(errors="replace")) from exc
        return response.read_bytes()


@dataclass(frozen=True)
class OcspWorld:
    pki: TestPki
    good: ResidentCredentials
    revoked: ResidentCredentials
    unknown: ResidentCredentials
    revoked_at: datetime
    directory: Path
    index: Path
    ca: tuple[Path, Path]
    delegate: tuple[Path, Path]
    delegate_without_eku: tuple[Path, Path]
    rogue: tuple[Path, Path]

    def responder(self, signer: tuple[Path, Path] | None = None, *extra: str) -> OpenSslResponder:
        cert, key = signer or self.ca
        return OpenSslResponder(self.directory, self.ca[0], cert, key, self.index, extra)

    @property
    def issuer(self) -> x509.Certificate:
        return self.pki.auth_ca.certificate


@pytest.fixture(scope="module")
def world(pki: TestPki, tmp_path_factory: pytest.TempPathFactory) -> OcspWorld:
    directory = tmp_path_factory.mktemp("ocsp")
    good = pki.issue(RESIDENTS["yamada"])
    revoked = pki.issue(RESIDENTS["suzuki"])
    unknown = pki.issue(RESIDENTS["tanaka"])
    revoked_at = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    lines = []
    for creds, status in ((good, "V"), (revoked, "R")):
        cert = creds.auth_certificate
        revocation = f"{_openssl_time(revoked_at)},keyCompromise" if status == "R" else ""
        lines.append(
            "\t".join(
                [
                    status,
                    _openssl_time(cert.not_valid_after_utc),
                    revocation,
                    _serial_hex(cert.serial_number),
                    "unknown",
                    "/C=JP/CN="
                    + str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value),
                ]
            )
        )
    index = directory / "index.txt"
    index.write_text("\n".join(lines) + "\n")
    delegate = _responder_certificate(pki.auth_ca, ocsp_signing=True)
    no_eku = _responder_certificate(pki.auth_ca, ocsp_signing=False)
    rogue = pki.rogue_ca("auth")
    return OcspWorld(
        pki=pki,
        good=good,
        revoked=revoked,
        unknown=unknown,
        revoked_at=revoked_at,
        directory=directory,
        index=index,
        ca=_pem(directory / "ca", pki.auth_ca.certificate, pki.auth_ca.private_key),
        delegate=_pem(directory / "delegate", delegate.certificate, delegate.private_key),
        delegate_without_eku=_pem(directory / "no-eku", no_eku.certificate, no_eku.private_key),
        rogue=_pem(directory / "rogue", rogue.certificate, rogue.private_key),
    )


def _checker(responder: OpenSslResponder, **kwargs: object) -> OcspRevocationChecker:
    return OcspRevocationChecker(url="http://127.0.0.1:1/ocsp", fetch=responder.fetch, **kwargs)  # type: ignore[arg-type]


def _now() -> datetime:
    return datetime.now(UTC)


# -- the responder's three answers -----------------------------------------------------------


def test_good(world: OcspWorld) -> None:
    responder = world.responder()
    _checker(responder).check(world.good.auth_certificate, world.issuer, now=_now())
    assert responder.requests == 1


def test_revoked(world: OcspWorld) -> None:
    with pytest.raises(CertificateRevokedError) as info:
        _checker(world.responder()).check(world.revoked.auth_certificate, world.issuer, now=_now())
    assert info.value.reason == "keyCompromise"
    assert info.value.revoked_at == world.revoked_at


def test_unknown(world: OcspWorld) -> None:
    with pytest.raises(RevocationUnknownError) as info:
        _checker(world.responder()).check(world.unknown.auth_certificate, world.issuer, now=_now())
    assert info.value.code == "revocation_unknown"


def test_responder_of_another_ca_is_not_authorised(world: OcspWorld) -> None:
    """openssl answers ``unknown`` for a certificate of the sign CA, signed with the auth CA's
    key: that answer is not from an authorised responder for the sign CA."""
    sign = world.good.sign_certificate
    assert sign is not None
    with pytest.raises(OcspResponseInvalidError, match="authorised responder"):
        _checker(world.responder()).check(sign, world.pki.sign_ca.certificate, now=_now())


# -- who signed the answer -------------------------------------------------------------------


@pytest.mark.parametrize("by_key", [False, True])
def test_delegated_responder_with_ocsp_signing(world: OcspWorld, by_key: bool) -> None:
    extra = ("-resp_key_id",) if by_key else ()
    responder = world.responder(world.delegate, *extra)
    _checker(responder).check(world.good.auth_certificate, world.issuer, now=_now())
    with pytest.raises(CertificateRevokedError):
        _checker(responder).check(world.revoked.auth_certificate, world.issuer, now=_now())


def test_ca_answer_identified_by_key(world: OcspWorld) -> None:
    _checker(world.responder(None, "-resp_key_id")).check(
        world.good.auth_certificate, world.issuer, now=_now()
    )


@pytest.mark.parametrize("signer", ["delegate_without_eku", "rogue"])
def test_unauthorised_responder(world: OcspWorld, signer: str) -> None:
    responder = world.responder(getattr(world, signer))
    with pytest.raises(OcspResponseInvalidError, match="authorised responder") as info:
        _checker(responder).check(world.good.auth_certificate, world.issuer, now=_now())
    assert info.value.code == "ocsp_response_invalid"


def test_delegate_without_its_certificate_in_the_answer(world: OcspWorld) -> None:
    responder = world.responder(world.delegate, "-resp_no_certs")
    with pytest.raises(OcspResponseInvalidError, match="authorised responder"):
        _checker(responder).check(world.good.auth_certificate, world.issuer, now=_now())


# -- nonce, cert id, freshness ---------------------------------------------------------------


def _built_response(
    world: OcspWorld,
    certificate: x509.Certificate,
    *,
    nonce: bytes | None,
    this_update: datetime | None = None,
) -> bytes:
    now = _now()
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=certificate,
            issuer=world.issuer,
            algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=this_update or now,
            next_update=now + timedelta(minutes=5),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, world.issuer)
    )
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.sign(world.pki.auth_ca.private_key, hashes.SHA256()).public_bytes(
        serialization.Encoding.DER
    )


def test_answer_built_by_cryptography_with_the_nonce_is_accepted(world: OcspWorld) -> None:
    """The control for the two nonce tests below: only the nonce differs."""

    def fetch(url: str, body: bytes, timeout: float) -> bytes:
        request = ocsp.load_der_ocsp_request(body)
        nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        return _built_response(world, world.good.auth_certificate, nonce=nonce)

    OcspRevocationChecker(url="http://127.0.0.1:1/", fetch=fetch).check(
        world.good.auth_certificate, world.issuer, now=_now()
    )


def test_missing_nonce(world: OcspWorld) -> None:
    def fetch(url: str, body: bytes, timeout: float) -> bytes:
        return _built_response(world, world.good.auth_certificate, nonce=None)

    checker = OcspRevocationChecker(url="http://127.0.0.1:1/", fetch=fetch)
    with pytest.raises(OcspResponseInvalidError, match="nonce"):
        checker.check(world.good.auth_certificate, world.issuer, now=_now())


def test_wrong_nonce(world: OcspWorld) -> None:
    def fetch(url: str, body: bytes, timeout: float) -> bytes:
        return _built_response(world, world.good.auth_certificate, nonce=b"\x00" * 32)

    checker = OcspRevocationChecker(url="http://127.0.0.1:1/", fetch=fetch)
    with pytest.raises(OcspResponseInvalidError, match="nonce does not match"):
        checker.check(world.good.auth_certificate, world.issuer, now=_now())


def test_replayed_answer_for_another_certificate(world: OcspWorld) -> None:
    responder = world.responder()
    other = OcspRevocationChecker(url="http://127.0.0.1:1/")
    request, _nonce = other.build_request(world.good.auth_certificate, world.issuer)
    recorded = responder.fetch(
        "", request.public_bytes(serialization.Encoding.DER), OPENSSL_TIMEOUT
    )

    def replay(url: str, body: bytes, timeout: float) -> bytes:
        return recorded

    checker = OcspRevocationChecker(url="http://127.0.0.1:1/", fetch=replay)
    with pytest.raises(OcspResponseInvalidError, match="exactly one"):
        checker.check(world.revoked.auth_certificate, world.issuer, now=_now())
    with pytest.raises(OcspResponseInvalidError, match="nonce"):  # same cert: the nonce differs
        checker.check(world.good.auth_certificate, world.issuer, now=_now())


def test_stale_answer(world: OcspWorld) -> None:
    checker = _checker(world.responder())
    with pytest.raises(RevocationStaleError, match="too old") as info:
        checker.check(world.good.auth_certificate, world.issuer, now=_now() + timedelta(minutes=30))
    assert isinstance(info.value, RevocationUnavailableError)
    with pytest.raises(RevocationStaleError, match="future"):
        checker.check(world.good.auth_certificate, world.issuer, now=_now() - timedelta(minutes=20))
    # Within the window: up to 2 min + 15 min skew old, 15 min ahead.
    checker.check(world.good.auth_certificate, world.issuer, now=_now() + timedelta(minutes=16))
    checker.check(world.good.auth_certificate, world.issuer, now=_now() - timedelta(minutes=14))


def test_next_update_in_the_past(world: OcspWorld) -> None:
    responder = OpenSslResponder(
        world.directory, world.ca[0], world.ca[0], world.ca[1], world.index
    )
    strict = OcspRevocationChecker(
        url="http://127.0.0.1:1/",
        fetch=responder.fetch,
        allowed_time_skew=timedelta(minutes=1),
        max_this_update_age=timedelta(minutes=10),
    )
    # openssl sets nextUpdate = thisUpdate + 5 min (-nmin 5).
    with pytest.raises(RevocationStaleError, match="nextUpdate"):
        strict.check(world.good.auth_certificate, world.issuer, now=_now() + timedelta(minutes=7))


# -- no usable answer ------------------------------------------------------------------------


def test_try_later(world: OcspWorld) -> None:
    def fetch(url: str, body: bytes, timeout: float) -> bytes:
        unsuccessful = ocsp.OCSPResponseBuilder.build_unsuccessful(
            ocsp.OCSPResponseStatus.TRY_LATER
        )
        return unsuccessful.public_bytes(serialization.Encoding.DER)

    checker = OcspRevocationChecker(url="http://127.0.0.1:1/", fetch=fetch)
    with pytest.raises(RevocationUnavailableError, match="TRY_LATER") as info:
        checker.check(world.good.auth_certificate, world.issuer, now=_now())
    assert type(info.value) is RevocationUnavailableError


@pytest.mark.parametrize("answer", [b"", b"garbage", b"\x30\x03\x0a\x01\x00", b"\x30" * 70_000])
def test_garbage_answer(world: OcspWorld, answer: bytes) -> None:
    def fetch(url: str, body: bytes, timeout: float) -> bytes:
        return answer

    checker = OcspRevocationChecker(url="http://127.0.0.1:1/", fetch=fetch)
    with pytest.raises(RevocationUnavailableError):
        checker.check(world.good.auth_certificate, world.issuer, now=_now())


def test_bad_configuration() -> None:
    with pytest.raises(ValueError, match="http"):
        OcspRevocationChecker(url="ldap://ocsp.example/")
    with pytest.raises(ValueError, match="timeout"):
        OcspRevocationChecker(url="http://ocsp.example/", timeout=0)


# -- over HTTP on 127.0.0.1 ------------------------------------------------------------------


@pytest.fixture
def http_responder(world: OcspWorld) -> Iterator[str]:
    responder = world.responder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers["Content-Type"] != "application/ocsp-request":
                self.send_error(415)
                return
            answer = responder.fetch(self.path, body, OPENSSL_TIMEOUT)
            self.send_response(200)
            self.send_header("Content-Type", "application/ocsp-response")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/ocsp"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _trust(world: OcspWorld, checker: OcspRevocationChecker, *, required: bool) -> TrustConfig:
    return TrustConfig(
        auth_anchors=(world.issuer,),
        sign_anchors=(world.pki.sign_ca.certificate,),
        revocation=checker,
        revocation_required=required,
    )


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def test_over_http_in_the_pipeline(world: OcspWorld, http_responder: str) -> None:
    checker = OcspRevocationChecker(url=http_responder, timeout=OPENSSL_TIMEOUT)
    trust = _trust(world, checker, required=True)
    result = validate_certificate(
        _der(world.good.auth_certificate),
        purpose=CertPurpose.AUTHENTICATION,
        trust=trust,
        now=_now(),
    )
    assert result.revocation_status == "good"
    with pytest.raises(CertificateRevokedError):
        validate_certificate(
            _der(world.revoked.auth_certificate),
            purpose=CertPurpose.AUTHENTICATION,
            trust=trust,
            now=_now(),
        )
    lenient = _trust(world, checker, required=False)
    with pytest.raises(RevocationUnknownError):  # unknown is never let through
        validate_certificate(
            _der(world.unknown.auth_certificate),
            purpose=CertPurpose.AUTHENTICATION,
            trust=lenient,
            now=_now(),
        )


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_down_responder_fails_closed_or_is_let_through(world: OcspWorld) -> None:
    checker = OcspRevocationChecker(url=f"http://127.0.0.1:{_closed_port()}/ocsp", timeout=2.0)
    with pytest.raises(RevocationUnavailableError) as info:
        validate_certificate(
            _der(world.good.auth_certificate),
            purpose=CertPurpose.AUTHENTICATION,
            trust=_trust(world, checker, required=True),
            now=_now(),
        )
    assert type(info.value) is RevocationUnavailableError
    result = validate_certificate(
        _der(world.good.auth_certificate),
        purpose=CertPurpose.AUTHENTICATION,
        trust=_trust(world, checker, required=False),
        now=_now(),
    )
    assert result.revocation_status == "unchecked"


def test_silent_responder_times_out(world: OcspWorld) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/ocsp"
        checker = OcspRevocationChecker(url=url, timeout=0.5)
        with pytest.raises(RevocationUnavailableError, match="reached"):
            checker.check(world.good.auth_certificate, world.issuer, now=_now())


def test_http_error_status(world: OcspWorld) -> None:
    class Failing(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_error(503)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/ocsp"
        with pytest.raises(OSError):
            urllib_fetch(url, b"request", 2.0)
        with pytest.raises(RevocationUnavailableError, match="reached"):
            OcspRevocationChecker(url=url, timeout=2.0).check(
                world.good.auth_certificate, world.issuer, now=_now()
            )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- hostile answers -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recorded(world: OcspWorld) -> tuple[ocsp.OCSPRequest, bytes, bytes]:
    """One real openssl answer (from the delegated responder, so it carries a certificate)."""
    checker = OcspRevocationChecker(url="http://127.0.0.1:1/")
    request, nonce = checker.build_request(world.good.auth_certificate, world.issuer)
    responder = world.responder(world.delegate)
    answer = responder.fetch("", request.public_bytes(serialization.Encoding.DER), OPENSSL_TIMEOUT)
    checker.check_response(answer, request=request, nonce=nonce, issuer=world.issuer, now=_now())
    return request, nonce, answer


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_answers_give_only_typed_errors(
    world: OcspWorld, recorded: tuple[ocsp.OCSPRequest, bytes, bytes], data: st.DataObject
) -> None:
    request, nonce, answer = recorded
    raw = bytearray(answer)
    for _ in range(data.draw(st.integers(1, 3))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    checker = OcspRevocationChecker(url="http://127.0.0.1:1/")
    try:
        checker.check_response(
            bytes(raw[:cut]), request=request, nonce=nonce, issuer=world.issuer, now=_now()
        )
    except (RevocationUnavailableError, RevocationUnknownError, CertificateRevokedError):
        pass
