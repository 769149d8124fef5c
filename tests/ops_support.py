"""Test support for operations: Prometheus samples, free loopback ports, child processes.

Importable from any test (``tests/`` is on ``sys.path``).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY


def sample(name: str, **labels: str) -> float:
    """The current value of a metric sample in this process (0 before it was first counted)."""
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def free_port() -> int:
    """A loopback TCP port nobody listens on (at the time of the call)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], bool], *, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def listening(port: int) -> bool:
    """True if something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def stop_process(process: subprocess.Popen[bytes], *, timeout: float = 10.0) -> None:
    """TERM the process (this one only, by its pid), KILL it if it ignores that, reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


# -- binaries, TLS, gunicorn and nginx on loopback --------------------------------------------


def require_binary(name: str, *extra_dirs: str) -> str:
    """The path of ``name`` (also looked up in ``extra_dirs``); skip, or fail under CI."""
    path = shutil.which(name) or shutil.which(name, path=":".join(extra_dirs) or None)
    if path is None:
        message = f"{name} is not installed (apt-get install it; .ci/run does)"
        if os.environ.get("CI"):  # noqa: TID251 - tests read the service variables
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


@dataclass(frozen=True)
class LoopbackTls:
    """A test CA and a server certificate for 127.0.0.1 / localhost, as PEM files."""

    ca: Path
    certificate: Path
    key: Path

    @classmethod
    def create(cls, directory: Path) -> LoopbackTls:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        now = datetime.now(UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "myna-idp test TLS CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        server = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        tls = cls(directory / "ca.pem", directory / "server.pem", directory / "server.key")
        tls.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        tls.certificate.write_bytes(server.public_bytes(serialization.Encoding.PEM))
        tls.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        tls.key.chmod(0o600)
        return tls


def base_environment() -> dict[str, str]:
    """This process's environment without any IDP_* setting (child processes add theirs)."""
    environment = dict(os.environ)  # noqa: TID251 - the children's environment
    return {k: v for k, v in environment.items() if not k.startswith("IDP_")}


class Child:
    """A child process with its output in a file; stopped by its own pid."""

    def __init__(
        self, name: str, argv: list[str], *, directory: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.log = directory / f"{name}.log"
        self._output = self.log.open("wb")
        self.process = subprocess.Popen(
            argv, stdout=self._output, stderr=subprocess.STDOUT, env=env, cwd=directory
        )

    def output(self) -> str:
        self._output.flush()
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_for(self, condition: Callable[[], bool], *, timeout: float, what: str) -> None:
        """Wait for ``condition``; fail with the child's output if it dies or times out."""
        deadline = time.monotonic() + timeout
        while not condition():
            if not self.alive():
                pytest.fail(f"{self.name} exited ({self.process.returncode}):\n{self.output()}")
            if time.monotonic() >= deadline:
                pytest.fail(f"{self.name}: no {what} after {timeout} s:\n{self.output()[-4000:]}")
            time.sleep(0.05)

    def stop(self, *, timeout: float = 10.0) -> None:
        stop_process(self.process, timeout=timeout)
        self._output.close()
