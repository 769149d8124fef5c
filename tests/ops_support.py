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
from typing import Any

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


# -- Redis with Sentinel on loopback ---------------------------------------------------------


class SentinelSetup:
    """A Redis master, one replica and three sentinels (quorum 2) on free loopback ports.

    Fast failure detection for tests: a master is down after 500 ms without an answer.
    ``url()`` lists a sentinel port where nobody listens first, so clients must skip it.
    """

    SERVICE = "myna"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.server = require_binary("redis-server", "/usr/bin", "/usr/sbin")
        self.sentinel = require_binary("redis-sentinel", "/usr/bin", "/usr/sbin")
        self.master_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.dead_port = free_port()
        self.children: list[Child] = []
        try:
            self.master = self._redis("master", self.master_port)
            self.replica = self._redis(
                "replica", self.replica_port, "--replicaof", "127.0.0.1", str(self.master_port)
            )
            for index, port in enumerate(self.sentinel_ports):
                self._sentinel(index, port)
        except BaseException:
            self.stop()
            raise

    def _redis(self, name: str, port: int, *extra: str) -> Child:
        data = self.directory / name
        data.mkdir()
        child = Child(
            name,
            [
                self.server,
                *("--bind", "127.0.0.1", "--port", str(port), "--save", ""),
                *("--appendonly", "no", "--dir", str(data)),
                *extra,
            ],
            directory=self.directory,
        )
        self.children.append(child)
        child.wait_for(lambda: self._answers(self.client(port).ping), timeout=10, what="PONG")
        return child

    def _sentinel(self, index: int, port: int) -> None:
        config = self.directory / f"sentinel-{index}.conf"
        config.write_text(
            f"bind 127.0.0.1\nport {port}\ndaemonize no\ndir {self.directory}\n"
            f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.master_port} 2\n"
            f"sentinel down-after-milliseconds {self.SERVICE} 500\n"
            f"sentinel failover-timeout {self.SERVICE} 5000\n"
            f"sentinel parallel-syncs {self.SERVICE} 1\n"
        )
        child = Child(f"sentinel-{index}", [self.sentinel, str(config)], directory=self.directory)
        self.children.append(child)
        child.wait_for(lambda: self._answers(self.client(port).ping), timeout=10, what="PONG")

    @staticmethod
    def client(port: int) -> Any:
        import redis

        return redis.Redis(
            host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1, retry=None
        )

    def _answers(self, check: Callable[[], bool]) -> bool:
        import redis

        try:
            return check()
        except redis.RedisError:
            return False

    def url(self, db: int = 0) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in [self.dead_port, *self.sentinel_ports])
        return f"redis+sentinel://{hosts}/{self.SERVICE}/{db}"

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until the replica is in sync and every sentinel knows the replica and the others."""

        def ready() -> bool:
            info = self.client(self.replica_port).info("replication")
            if info.get("master_link_status") != "up":
                return False
            for port in self.sentinel_ports:
                sentinel = self.client(port)
                if len(sentinel.sentinel_slaves(self.SERVICE)) != 1:
                    return False
                if len(sentinel.sentinel_sentinels(self.SERVICE)) != 2:
                    return False
            return True

        if not wait_until(lambda: self._answers(ready), timeout=timeout, interval=0.1):
            logs = "\n".join(c.output()[-1500:] for c in self.children)
            pytest.fail(f"the Sentinel setup did not settle in {timeout} s:\n{logs}")

    def sync_replica(self) -> None:
        """Wait until the replica has every write the master acknowledged so far."""
        assert self.client(self.master_port).wait(1, 5000) == 1

    def kill_master(self) -> None:
        """The master dies without a goodbye (SIGKILL, by its pid)."""
        self.master.process.kill()
        self.master.process.wait(timeout=10)

    def promoted(self) -> bool:
        """True once the sentinels name the replica as master and it acts as one."""

        def check() -> bool:
            for port in self.sentinel_ports:
                address = self.client(port).sentinel_get_master_addr_by_name(self.SERVICE)
                if address is None or int(address[1]) != self.replica_port:
                    return False
            role = self.client(self.replica_port).execute_command("ROLE")
            return bool(role[0] in (b"master", "master"))

        return self._answers(check)

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
