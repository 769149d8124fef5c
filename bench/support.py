"""Shared pieces of the scripts in ``bench/`` (and of ``tests/ops/test_load.py``).

- servers: :class:`Gunicorn` (our ``idp.ops.gunicorn_conf`` on a free loopback port, pinned to
  chosen cores, output to a log file, stopped by its pid), :class:`RedisServer` (a private
  ``redis-server``), :func:`wait_http`;
- the provider's set-up: :func:`write_pki` (a test PKI with anchors and CRLs on disk, so the real
  validation path runs), :func:`provider_env`, :func:`prepare_database` (schema migrated and
  emptied, one signing key, the bench client);
- timing: :class:`Timings` (per step, thread-safe), :func:`percentile`, :func:`summary`;
- CPU accounting: :class:`CpuMeter` (user + system time from ``/proc/<pid>/stat`` of a server's
  processes: the root, every descendant, and what reaped children had used), :func:`pin`;
- the complete card login over HTTP: :class:`BenchClient` and :func:`card_login` (authorize,
  login page, device challenge, the card response signed with the resident's software key,
  status, continue, token, userinfo), optionally started on one instance and finished on another.

Run the scripts as ``.venv/bin/python bench/<script>.py``: ``bench/`` is then on ``sys.path``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding

from idp.card.challenge import Challenge
from idp.card.testpki import ResidentCredentials, TestPki

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
REDIRECT_URI = "https://forms.bench.example.jp/callback"
SCOPE = "openid name address birthdate gender"
CLIENT_ID = "bench"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
HANDOFF = re.compile(r"idp card login ([^\s<]+)")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- small helpers -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def pkce() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def percentile(values: Iterable[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def summary(values: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    if not values:
        return float("nan"), float("nan")
    return statistics.median(values) * 1000, percentile(values, 0.99) * 1000


class Timings:
    """Seconds per step, from many threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: dict[str, list[float]] = defaultdict(list)

    def add(self, step: str, seconds: float) -> None:
        with self.lock:
            self.values[step].append(seconds)

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(step, time.perf_counter() - start)

    def __getitem__(self, step: str) -> list[float]:
        return self.values[step]


# -- cores and CPU time ------------------------------------------------------------------------


def pin(cores: Iterable[int], pid: int = 0) -> set[int]:
    """Pin ``pid`` (0: this process) to ``cores`` that exist here; the set actually used."""
    wanted = {core for core in cores if core < (os.cpu_count() or 1)}
    if wanted:
        os.sched_setaffinity(pid, wanted)
    return wanted


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces: split after its closing parenthesis
    return raw[raw.rindex(")") + 2 :].split()


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants alive now."""
    found = [pid]
    index = 0
    while index < len(found):
        for task in Path(f"/proc/{found[index]}/task").glob("*/children"):
            try:
                found.extend(int(child) for child in task.read_text().split())
            except OSError:
                pass
        index += 1
    return found


def cpu_seconds(pid: int, *, reaped: bool = False) -> float:
    """User + system time of ``pid`` (all its threads); with ``reaped``, also what its
    waited-for children had used (``cutime`` + ``cstime``)."""
    fields = _stat(pid)
    return 0.0 if fields is None else _seconds(fields, reaped)


def _seconds(fields: list[str], reaped: bool) -> float:
    # after the name: state=0, ... utime=11, stime=12, cutime=13, cstime=14
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


class CpuMeter:
    """CPU seconds used by a set of server processes between two readings.

    ``roots``: processes whose whole tree counts (a gunicorn master and its workers; a worker
    that exits is counted through the master's ``cutime``). ``extra``: a callable giving more
    pids at each reading (e.g. the PostgreSQL backends of the server's database); those are
    counted per pid, from 0 for a pid not seen at the first reading, up to their last reading
    (:meth:`sample`: a process that lives between two readings is not seen at all).
    """

    def __init__(
        self, roots: Iterable[int], extra: Callable[[], Iterable[int]] | None = None
    ) -> None:
        self.roots = list(roots)
        self.extra = extra
        self._start: dict[int, float] = {}
        self._last: dict[int, float] = {}

    def _read(self) -> dict[int, float]:
        seen: dict[int, float] = {}
        pids = [(pid, pid == root) for root in self.roots for pid in process_tree(root)]
        if self.extra is not None:
            pids += [(pid, False) for pid in self.extra()]
        for pid, reaped in pids:
            fields = _stat(pid)
            if fields is not None:  # a process gone meanwhile keeps its last reading
                seen.setdefault(pid, _seconds(fields, reaped))
        return seen

    def start(self) -> None:
        self._start = self._read()
        self._last = dict(self._start)

    def sample(self) -> None:
        """Note the processes alive now, so that one that exits before :meth:`used` still
        counts what it had used when last seen (call it often for short-lived processes)."""
        self._last.update(self._read())

    def used(self) -> float:
        """Seconds since :meth:`start`; a process that exited counts its last reading."""
        self.sample()
        return sum(value - self._start.get(pid, 0.0) for pid, value in self._last.items())


def _monitor_engine(database_url: str) -> Any:
    """An engine on the cluster's ``postgres`` database: watching ``database`` from there adds
    no session or transaction to it."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    return create_engine(
        make_url(database_url).set(database="postgres"), pool_size=1, max_overflow=0
    )


def postgres_backends(database_url: str, database: str) -> Callable[[], list[int]]:
    """A callable giving the pids of the PostgreSQL backends connected to ``database``."""
    from sqlalchemy import text

    engine = _monitor_engine(database_url)

    def pids() -> list[int]:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = :d"),
                {"d": database},
            )
            return [int(row[0]) for row in rows]

    return pids


def postgres_sessions(database_url: str, database: str) -> Callable[[], dict[str, int]]:
    """A callable giving counters of ``database`` since the statistics were reset
    (``pg_stat_database``, PostgreSQL 14+): ``sessions`` opened and ``transactions``
    (backends report them at most about once a second: read them after a pause)."""
    from sqlalchemy import text

    engine = _monitor_engine(database_url)

    def counters() -> dict[str, int]:
        with engine.connect() as connection:
            query = text(
                "SELECT sessions, xact_commit + xact_rollback FROM pg_stat_database"
                " WHERE datname = :d"
            )
            sessions, transactions = connection.execute(query, {"d": database}).one()
            return {"sessions": int(sessions), "transactions": int(transactions)}

    return counters


# -- servers -----------------------------------------------------------------------------------


def wait_http(
    url: str, *, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Until ``url`` answers 2xx; fail early if ``process`` died."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(url, timeout=2).raise_for_status()
            return
        except requests.RequestException:
            if process is not None and process.poll() is not None:
                raise RuntimeError(
                    f"the server exited ({process.returncode}) before {url} answered"
                ) from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """TERM this process by its pid, KILL it if it does not go, reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


class Server:
    """A child process with its output in ``log``, started pinned to ``cores``."""

    def __init__(
        self,
        argv: list[str],
        *,
        env: Mapping[str, str],
        log: Path,
        cores: Iterable[int] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.log = log
        self._out = log.open("wb")
        wanted = set(cores) if cores is not None else None

        def affinity() -> None:
            if wanted:
                pin(wanted)

        self.process = subprocess.Popen(
            argv,
            env=dict(env),
            stdout=self._out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            preexec_fn=affinity if wanted else None,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        self._out.flush()
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> None:
        stop(self.process, timeout)
        self._out.close()


class Gunicorn(Server):
    """The provider under gunicorn with ``idp.ops.gunicorn_conf`` (gthread), on loopback."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        port: int,
        log: Path,
        workers: int | None = None,
        threads: int | None = None,
        cores: Iterable[int] | None = None,
        extra_args: Iterable[str] = (),
    ) -> None:
        argv = [sys.executable, "-m", "gunicorn", "-c", "python:idp.ops.gunicorn_conf",
                "--bind", f"127.0.0.1:{port}", "--backlog", "4096"]  # fmt: skip
        if workers is not None:
            argv += ["--workers", str(workers)]
        if threads is not None:
            argv += ["--threads", str(threads), "--worker-connections", str(2 * threads)]
        argv += list(extra_args)
        base = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}  # noqa: TID251
        super().__init__(argv, env={**base, **env}, log=log, cores=cores, cwd=ROOT)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def wait_ready(self, timeout: float = 60.0) -> None:
        try:
            wait_http(f"{self.url}/jwks.json", timeout=timeout, process=self.process)
        except Exception as exc:
            raise RuntimeError(f"gunicorn did not come up: {exc}\n{self.output()[-3000:]}") from exc


class RedisServer(Server):
    """A private ``redis-server`` (no persistence) on a free loopback port."""

    def __init__(self, workdir: Path, *, cores: Iterable[int] | None = None) -> None:
        import redis

        binary = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/sbin")
        if binary is None:
            sys.exit("redis-server is not installed")
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(workdir), "--maxclients", "20000"],
            env=os.environ,  # noqa: TID251 - the child's environment
            log=workdir / "redis.log",
            cores=cores,
        )  # fmt: skip
        self.url = f"redis://127.0.0.1:{self.port}/0"
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()


# -- the provider's set-up ---------------------------------------------------------------------


def write_pki(directory: Path, pki: TestPki | None = None) -> tuple[TestPki, dict[str, str]]:
    """A test PKI saved under ``directory`` with a CRL per CA; the ``IDP_JPKI_*`` settings."""
    pki = pki or TestPki.generate()
    pki.save(directory)
    now = datetime.now(UTC)
    crls = []
    for kind in ("auth", "sign"):
        crl = pki.crl(
            kind, [], this_update=now - timedelta(minutes=1), next_update=now + timedelta(days=1)
        )
        path = directory / f"{kind}.crl.pem"
        path.write_bytes(crl.public_bytes(Encoding.PEM))
        crls.append(str(path))
    return pki, {
        "IDP_JPKI_AUTH_ANCHORS": str(directory / "auth-ca.pem"),
        "IDP_JPKI_SIGN_ANCHORS": str(directory / "sign-ca.pem"),
        "IDP_JPKI_CRL_FILES": os.pathsep.join(crls),
    }


def provider_env(
    issuer: str, *, database_url: str, redis_url: str, unlimited: bool = True, **more: str
) -> dict[str, str]:
    """``IDP_*`` settings for a provider at ``issuer``; ``unlimited`` lifts the login rate
    limits (a load generator is one address starting many logins)."""
    env = {
        "IDP_ISSUER": issuer,
        "IDP_SECRET_KEY": secrets.token_urlsafe(40),
        "IDP_PAIRWISE_SECRET": secrets.token_urlsafe(40),
        "IDP_DATABASE_URL": database_url,
        "IDP_REDIS_URL": redis_url,
        "IDP_REDIS_PREFIX": f"bench:{secrets.token_hex(4)}:",
    }
    if unlimited:
        env |= {
            "IDP_RATE_LOGINS_PER_ADDRESS": "0",
            "IDP_RATE_LOGINS_PER_CLIENT": "0",
            "IDP_RATE_PICKUPS_PER_ADDRESS": "0",
        }
    env.update(more)
    return env


def app_config(env: Mapping[str, str]) -> dict[str, str]:
    """``create_app`` settings from ``IDP_*`` variables."""
    return {key.removeprefix("IDP_"): value for key, value in env.items()}


def prepare_database(
    env: Mapping[str, str],
    *,
    client_jwks: Mapping[str, Any] | None = None,
    seed: Callable[[Any], None] | None = None,
) -> Any:
    """Empty and migrate the database, store one ES256 signing key (the runbook's
    ``idp keys rotate``: instances started together must not each make their own) and the
    ``private_key_jwt`` client ``bench`` with ``client_jwks``; ``seed(app)`` runs in the app
    context. Returns the app (its pool disposed)."""
    from flask_migrate import upgrade
    from sqlalchemy import text

    from idp.app import create_app
    from idp.extensions import MIGRATIONS_DIR, get_settings
    from idp.oidc.clients import new_client
    from idp.oidc.keys import rotate_signing_key
    from idp.storage.base import db
    from idp.storage.clients import add_client
    from idp.storage.models import Base

    app = create_app(app_config(env))
    with app.app_context():
        Base.metadata.drop_all(db.engine)
        with db.engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        upgrade(directory=str(MIGRATIONS_DIR))
        rotate_signing_key("ES256", get_settings())  # on an empty table: active + next key
        if client_jwks is not None:
            add_client(
                new_client(
                    name="ベンチマーク",
                    redirect_uris=[REDIRECT_URI],
                    auth_method="private_key_jwt",
                    jwks=dict(client_jwks),
                    client_id=CLIENT_ID,
                ).client
            )
        if seed is not None:
            seed(app)
        db.session.remove()
        db.engine.dispose()
    return app


# -- the relying party and the complete card login ------------------------------------------


@dataclass
class BenchClient:
    """The ``private_key_jwt`` (ES256) relying party ``bench``: fresh assertions for ``aud``."""

    audience: str
    key: Any = None
    client_id: str = CLIENT_ID

    def __post_init__(self) -> None:
        from joserfc.jwk import ECKey

        if self.key is None:
            self.key = ECKey.generate_key("P-256", parameters={"kid": "bench"}, private=True)

    def jwks(self) -> dict[str, Any]:
        from joserfc.jwk import KeySet

        return dict(KeySet([self.key]).as_dict(private=False))

    def assertion(self) -> str:
        from joserfc import jwt

        now = int(time.time())
        return jwt.encode(
            {"alg": "ES256", "kid": self.key.kid},
            {"iss": self.client_id, "sub": self.client_id, "aud": self.audience,
             "iat": now, "exp": now + 280, "jti": secrets.token_urlsafe(16)},
            self.key,
        )  # fmt: skip

    def token_form(self, code: str, verifier: str) -> dict[str, str]:
        return {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion(),
        }


def card_response(
    creds: ResidentCredentials, document: Mapping[str, Any], *, enroll: bool = False
) -> dict[str, str]:
    """The device's answer to a challenge: RS256 over it with the resident's software key (what
    the card computes), the certificate; on enrollment also the signature key's pair."""
    signed = Challenge(
        origin=document["origin"],
        nonce=document["nonce"],
        transaction_id=document["transaction_id"],
        purpose=document["purpose"],
    ).to_be_signed()
    body = {
        "unverifiedCertificate": b64(creds.auth_certificate.public_bytes(Encoding.DER)),
        "algorithm": "RS256",
        "signature": b64(creds.auth_key.sign(signed, padding.PKCS1v15(), hashes.SHA256())),
        "format": "myna:1",
        "appVersion": "bench/1",
    }
    if enroll:
        assert creds.sign_certificate is not None and creds.sign_key is not None
        body["signingCertificate"] = b64(creds.sign_certificate.public_bytes(Encoding.DER))
        body["signingSignature"] = b64(
            creds.sign_key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
        )
    return body


class Session(requests.Session):
    """A ``requests`` session that drops its kept-alive connections after ``max_idle`` seconds
    without a request. A server closes an idle connection after its keep-alive timeout (5 s for
    gunicorn and node); a request sent on it at that moment is lost with "Remote end closed
    connection", so a client, like nginx with ``keepalive_timeout`` in an upstream, must let
    its idle connections go well before the server does.

    A request whose connection the server closed before answering anything ("Connection
    aborted": a gthread worker closes a connection that has sent nothing for 10 s, which a
    client thread starved of the GIL among hundreds can do between connect and send) is sent
    once more on a new connection, as browsers do. That cannot hide a request the server did
    handle: a card response or a code sent twice is refused the second time."""

    def __init__(self, max_idle: float = 2.0) -> None:
        super().__init__()
        self.max_idle = max_idle
        self._last: float | None = None

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        for attempt in (1, 2):
            if self._last is not None and time.monotonic() - self._last >= self.max_idle:
                self.close()  # the pools empty; the next request connects afresh
            try:
                return super().request(*args, **kwargs)
            except requests.ConnectionError as exc:
                if attempt == 2 or "Connection aborted" not in str(exc):
                    raise
                self.close()
            finally:
                self._last = time.monotonic()
        raise AssertionError("unreachable")


class FlowError(AssertionError):
    """A step of a login flow did not answer as expected."""

    def __init__(self, step: str, response: requests.Response | None, detail: str = "") -> None:
        status = "-" if response is None else str(response.status_code)
        text = "" if response is None else response.text[:300]
        super().__init__(f"{step}: HTTP {status} {detail} {text}".strip())
        self.step = step
        self.status = None if response is None else response.status_code


@dataclass
class FlowResult:
    code: str
    verifier: str
    nonce: str
    tokens: dict[str, Any]
    userinfo: dict[str, Any]
    bases: tuple[str, str]
    steps: list[str] = field(default_factory=list)


CARD_STEPS = ("authorize", "login_page", "device_challenge", "device_response", "status",
              "continue", "token", "userinfo")  # fmt: skip


def card_login(
    issuer: str,
    creds: ResidentCredentials,
    client: BenchClient,
    *,
    start: str | None = None,
    finish: str | None = None,
    timings: Timings | None = None,
    consent: bool = False,
    started: Callable[[], None] | None = None,
    timeout: float = 60.0,
    max_idle: float = 2.0,
) -> FlowResult:
    """One complete login: the browser starts on ``start`` (authorize, login page), the device
    API, status, continue, token and userinfo go to ``finish`` (both default to ``issuer``; two
    instances of one provider share the issuer, the load balancer's part is played here).
    ``started`` is called between the login page and the device (a barrier, to hold many
    flows in flight). ``consent`` approves the consent page if one is shown. ``max_idle``: see
    :class:`Session` (0: a new connection for every request)."""
    start = start or issuer
    finish = finish or issuer
    times = timings or Timings()
    browser = Session(max_idle)
    device = Session(max_idle)
    current = ["authorize"]

    @contextmanager
    def step(name: str) -> Iterator[None]:
        current[0] = name
        with times.timed(name):
            yield

    try:
        verifier, challenge = pkce()
        nonce = secrets.token_urlsafe(12)
        state = secrets.token_urlsafe(12)
        query = urlencode(
            {"response_type": "code", "client_id": client.client_id, "redirect_uri": REDIRECT_URI,
             "scope": SCOPE, "state": state, "nonce": nonce, "code_challenge": challenge,
             "code_challenge_method": "S256"}
        )  # fmt: skip
        with step("authorize"):
            response = browser.get(
                f"{start}/authorize?{query}", allow_redirects=False, timeout=timeout
            )
        if response.status_code != 303:
            raise FlowError("authorize", response)
        page_path = urlsplit(response.headers["Location"]).path
        with step("login_page"):
            page = browser.get(start + page_path, timeout=timeout)
        handoff = HANDOFF.search(page.text) if page.status_code == 200 else None
        if handoff is None:
            raise FlowError("login_page", page)
        if started is not None:
            started()
        url = finish + urlsplit(handoff.group(1)).path
        with step("device_challenge"):
            fetched = device.get(url, timeout=timeout)
        if fetched.status_code != 200:
            raise FlowError("device_challenge", fetched)
        with step("device_response"):
            answer = device.post(
                url + "/response", json=card_response(creds, fetched.json()), timeout=timeout
            )
        if answer.status_code != 200:
            raise FlowError("device_response", answer)
        if answer.json()["status"] == "enroll_needed":
            following = answer.json()["challenge"]
            answer = device.post(
                url + "/response",
                json=card_response(creds, following, enroll=True),
                timeout=timeout,
            )
        if answer.status_code != 200 or answer.json() != {"status": "verified"}:
            raise FlowError("device_response", answer)
        with step("status"):
            status = browser.get(f"{finish}{page_path}/status", timeout=timeout)
        if status.status_code != 200 or status.json().get("state") != "card_verified":
            raise FlowError("status", status)
        with step("continue"):
            done = browser.get(
                f"{finish}{page_path}/continue", allow_redirects=False, timeout=timeout
            )
        if consent and done.status_code == 200:
            csrf = re.search(r'name="csrf" value="([^"]+)"', done.text)
            if csrf is None:
                raise FlowError("consent", done)
            done = browser.post(
                f"{finish}{page_path}/consent",
                data={"csrf": csrf.group(1), "decision": "approve"},
                allow_redirects=False,
                timeout=timeout,
            )
        if done.status_code != 302:
            raise FlowError("continue", done)
        params = parse_qs(urlsplit(done.headers["Location"]).query)
        if params.get("state") != [state] or "code" not in params:
            raise FlowError("continue", done, "no code or wrong state")
        code = params["code"][0]
        with step("token"):
            token = device.post(
                f"{finish}/token", data=client.token_form(code, verifier), timeout=timeout
            )
        if token.status_code != 200:
            raise FlowError("token", token)
        tokens = token.json()
        with step("userinfo"):
            info = device.get(
                f"{finish}/userinfo",
                headers={"Authorization": f"Bearer {tokens['access_token']}"},
                timeout=timeout,
            )
        if info.status_code != 200:
            raise FlowError("userinfo", info)
        return FlowResult(code, verifier, nonce, tokens, info.json(), (start, finish))
    except requests.RequestException as exc:
        raise FlowError(current[0], None, f"{type(exc).__name__}: {exc}") from exc
    finally:
        browser.close()
        device.close()
