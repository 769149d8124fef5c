"""Faults, each with its documented behaviour (docs/runbook.md, "Outage playbooks"), recovery
without restarting the provider, and nothing lost. Bounded: every wait has a deadline, every
loop a count.

- PostgreSQL restarted: a throwaway cluster of this test (initdb + pg_ctl on a free port;
  never the shared one).
- OCSP responder down: the real ``openssl ocsp`` behind HTTP, stopped and started again.
- CRL stale: the CRL server stops answering until the held CRLs pass their nextUpdate.
- pcscd restarted under the desktop agent (``idp card login --reader``): the machine's pcscd,
  restarted as scripts/services.sh starts it (marker ``pcsc``; run under
  ``flock /tmp/myna-pcsc.lock``).
- Redis master killed: tests/ops/test_sentinel.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from login_support import (
    Browser,
    LiveServer,
    LoginPki,
    device_login,
    dispose,
    make_login_app,
    virtual_card,
)
from ops_support import free_port, listening, sample, wait_until
from provider_support import RelyingParty, callback_params
from revocation_support import CrlServer, OcspServer, attempt_login
from sqlalchemy import func, select

from idp.card.testpki import TestPki
from idp.handoff.trust import get_revocation_data
from idp.storage.audit import Release
from idp.storage.base import db

pytestmark = pytest.mark.redis

PG_BIN = Path("/usr/lib/postgresql/15/bin")
RECOVERY_SECONDS = 30.0
REVOCATION_TEXT = "電子証明書の失効情報を確認できませんでした"


def _ready(app: Flask) -> tuple[int, dict[str, Any]]:
    response = app.test_client().get("/readyz")
    body = response.get_json()
    assert isinstance(body, dict)
    return response.status_code, body


def _releases(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(Release)) or 0)


# -- PostgreSQL restarted ----------------------------------------------------------------------


@dataclass
class OwnPostgres:
    """A PostgreSQL 15 cluster of this test only, run as the ``postgres`` user."""

    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D",
             str(self.directory / "data"), *args],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("-l", str(self.directory / "log"), "-w", "-o", options, "start")

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "-w", "stop")


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        pytest.skip("PostgreSQL 15 binaries are not installed")
    # Outside pytest's temporary directory: the postgres user must reach it, and other pytest
    # sessions reset the permissions of /tmp/pytest-of-root.
    directory = Path(tempfile.mkdtemp(prefix="myna-faults-pg."))
    shutil.chown(directory, "postgres", "postgres")
    directory.chmod(0o755)
    cluster = OwnPostgres(directory, free_port())
    try:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(PG_BIN / "initdb"), "-D",
             str(directory / "data"), "-A", "trust", "-U", "postgres", "-E", "UTF8",
             "--locale=C.UTF-8", "--no-sync"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        cluster.start()
        yield cluster
    finally:
        if listening(cluster.port):
            cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


def test_postgres_restarted(own_postgres: OwnPostgres, redis_url: str, login_pki: LoginPki) -> None:
    """Documented: while the database is down, pages and the device API answer 503 (never a
    500), /readyz names the database, no code is issued; after the restart the same process
    serves again, the login in flight completes, and everything written before is there."""
    app = make_login_app(own_postgres.url, redis_url, login_pki)
    try:
        rp = RelyingParty(app)
        # a complete login before the outage
        browser = Browser(rp)
        request = rp.authorization_request()
        started = browser.start(request)
        _, card = virtual_card(login_pki, login_pki.credentials("yamada"))
        assert device_login(app, started.handoff_url, card).status == "verified"
        consent = browser.proceed(started)
        assert consent.status_code == 200
        done = browser.consent(started, consent.get_data(as_text=True))
        assert done.status_code == 302
        first = rp.token_request(callback_params(done.headers["Location"])["code"][0],
                                 request.verifier)  # fmt: skip
        assert first.status_code == 200, first.get_data(as_text=True)
        sub = rp.userinfo(first.get_json()["access_token"]).get_json()["sub"]
        assert _releases(app) == 1

        # a second login in flight (a new card login, not the session): card verified,
        # consent not yet given
        browser = Browser(rp)
        request = rp.authorization_request(prompt="login consent")
        started = browser.start(request)
        assert device_login(app, started.handoff_url, card).status == "verified"
        consent = browser.proceed(started)
        assert consent.status_code == 200
        page = consent.get_data(as_text=True)

        own_postgres.stop()
        db_errors = sample("myna_database_errors_total", kind="OperationalError")
        answer = browser.consent(started, page)
        assert answer.status_code == 503, answer.get_data(as_text=True)[:300]
        fresh = rp.authorize(rp.authorization_request(prompt="login"))
        assert fresh.status_code in (302, 303, 503), fresh.get_data(as_text=True)[:300]
        if fresh.status_code != 503:  # an error redirect to the client, never a login
            assert "temporarily_unavailable" in fresh.headers["Location"]
        status, body = _ready(app)
        assert status == 503 and "database" in body["failed"]
        assert sample("myna_database_errors_total", kind="OperationalError") > db_errors

        own_postgres.start()  # same data directory, same port; the provider is not restarted
        assert wait_until(lambda: _ready(app)[0] == 200, timeout=RECOVERY_SECONDS)
        answer = browser.consent(started, page)
        assert answer.status_code == 302, answer.get_data(as_text=True)[:300]
        params = callback_params(answer.headers["Location"])
        second = rp.token_request(params["code"][0], request.verifier)
        assert second.status_code == 200, second.get_data(as_text=True)
        assert rp.userinfo(second.get_json()["access_token"]).get_json()["sub"] == sub
        assert _releases(app) == 2  # one per code: nothing lost, nothing from the failed try
    finally:
        dispose(app)


# -- OCSP responder down -----------------------------------------------------------------------


def test_ocsp_responder_down(
    sqlite_url: str, redis_url: str, login_pki: LoginPki, tmp_path: Path
) -> None:
    """Documented: with OCSP as the only source, a certificate without a cached answer fails
    closed with ``revocation_unavailable`` (the resident's page says the revocation status
    could not be checked; the login is failed, not left open); answers cached within their
    validity still serve. When the responder is back, the next login passes."""
    responder = OcspServer(login_pki, tmp_path / "ocsp")
    responder.register(*(login_pki.credentials(r) for r in ("yamada", "suzuki", "ito")))
    app = make_login_app(
        sqlite_url, redis_url, login_pki, JPKI_CRL_FILES=[], OCSP_URL=responder.url
    )
    try:
        assert attempt_login(app, login_pki, "yamada") == "verified"
        responder.stop()
        closed = sample("myna_revocation_fail_closed_total", reason="revocation_unavailable")
        errors = sample("myna_ocsp_responder_errors_total", kind="revocation_unavailable")
        pages: list[str] = []
        assert attempt_login(app, login_pki, "suzuki", pages=pages) == "revocation_unavailable"
        assert REVOCATION_TEXT in pages[0]
        assert sample("myna_revocation_fail_closed_total", reason="revocation_unavailable") == (
            closed + 1
        )
        assert sample("myna_ocsp_responder_errors_total", kind="revocation_unavailable") > errors
        assert attempt_login(app, login_pki, "yamada") == "verified"  # cached answers
        status, body = _ready(app)
        assert status == 200  # taking instances out would not help: the responder is shared
        assert (
            body["checks"]["revocation"] == "OCSP only; OCSP last query failed "
            "(revocation_unavailable)"
        )

        responder.start()  # the same port
        assert attempt_login(app, login_pki, "suzuki") == "verified"
        assert attempt_login(app, login_pki, "ito") == "verified"
        assert _ready(app)[1]["checks"]["revocation"] == "OCSP only"
    finally:
        responder.stop()
        dispose(app)


# -- CRL stale ------------------------------------------------------------------------------------


def test_crl_stale(sqlite_url: str, redis_url: str, login_pki: LoginPki) -> None:
    """Documented: the CRL server stops answering; the held CRLs stay in use until their
    nextUpdate (+ IDP_CRL_GRACE) passes, then every certificate fails closed with
    ``revocation_stale`` and /readyz is 503 naming the stale CRLs. Once a fresh CRL is
    published, the refresher's next retry fetches it and logins pass again."""
    server = CrlServer()
    soon = datetime.now(UTC) + timedelta(seconds=5)
    server.publish(login_pki, next_update=soon)
    app = make_login_app(
        sqlite_url,
        redis_url,
        login_pki,
        **server.settings(CRL_GRACE=0, CRL_REFRESH_SECONDS=3600, CRL_RETRY_SECONDS=0.5),
    )
    try:
        assert attempt_login(app, login_pki, "yamada") == "verified"
        server.failing = True
        assert wait_until(lambda: datetime.now(UTC) > soon, timeout=10)
        closed = sample("myna_revocation_fail_closed_total", reason="revocation_stale")
        pages: list[str] = []
        assert attempt_login(app, login_pki, "suzuki", pages=pages) == "revocation_stale"
        assert REVOCATION_TEXT in pages[0]  # what the resident reads
        assert sample("myna_revocation_fail_closed_total", reason="revocation_stale") == closed + 1
        status, body = _ready(app)
        assert status == 503 and body["failed"] == ["revocation"]
        assert body["checks"]["revocation"] == "failed: CRL past nextUpdate for 2 anchor(s)"
        # the refresher keeps trying (every IDP_CRL_RETRY_SECONDS)
        assert wait_until(lambda: server.requests >= 4, timeout=10)

        server.publish(login_pki)
        server.failing = False
        assert wait_until(lambda: _ready(app)[0] == 200, timeout=RECOVERY_SECONDS)
        assert attempt_login(app, login_pki, "suzuki") == "verified"
    finally:
        get_revocation_data(app).stop()
        server.stop()
        dispose(app)


# -- pcscd restarted under the desktop agent ------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
PCSCD_PIDFILE = Path("/run/pcscd/pcscd.pid")
PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")
SERVICES_STATE = REPO / "var" / "services"
VPCD_READER = "Virtual PCD 00 00"
VPCD_PORT = 35963


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _vpcd_listening() -> bool:
    """vpcd's port is open. Never connect to it to check: vpcd takes a connection for a card."""
    listing = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=True)
    return any(line.split()[3].endswith(f":{VPCD_PORT}") for line in listing.stdout.splitlines())


def _pcscd_pid() -> int:
    return int("".join(c for c in PCSCD_PIDFILE.read_text() if c.isdigit()))


def stop_pcscd() -> None:
    """Stop the machine's pcscd (by the pid it wrote), as scripts/services.sh does."""
    pid = _pcscd_pid()
    os.kill(pid, signal.SIGTERM)
    assert wait_until(lambda: not _alive(pid), timeout=10), f"pcscd {pid} did not stop"


def start_pcscd() -> int:
    """``pcscd -f -a`` with the vpcd driver, detached and logging where scripts/services.sh
    does; its pid goes where the script looks for it, so that ``services.sh stop`` stops it."""
    SERVICES_STATE.mkdir(parents=True, exist_ok=True)
    log = SERVICES_STATE / "pcscd.log"
    started = subprocess.run(
        ["setsid", "sh", "-c", f'pcscd -f -a >>"{log}" 2>&1 </dev/null & echo $!'],
        capture_output=True, text=True, check=True, timeout=10,
    )  # fmt: skip
    pid = int(started.stdout.strip())
    (SERVICES_STATE / "pcscd.pid").write_text(f"{pid}\n")
    assert wait_until(lambda: PCSCD_SOCKET.exists() and _vpcd_listening(), timeout=10), (
        "pcscd did not come back with the vpcd reader"
    )
    return pid


@pytest.fixture
def pcscd_restartable() -> Iterator[None]:
    """Whatever happens in the test, pcscd is running and serving vpcd afterwards."""
    if shutil.which("pcscd") is None or not PCSCD_PIDFILE.exists():
        pytest.skip("no pcscd to restart")
    yield
    pid = _pcscd_pid() if PCSCD_PIDFILE.exists() else 0
    if not (pid and _alive(pid) and PCSCD_SOCKET.exists() and _vpcd_listening()):
        start_pcscd()


def _agent(url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(REPO / ".venv" / "bin" / "idp"), "card", "login", url, "--reader", VPCD_READER,
         *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=REPO,
    )  # fmt: skip


@pytest.fixture
def pcsc_live(
    sqlite_url: str, redis_url: str, emulation_pki: TestPki, tmp_path: Path
) -> Iterator[LiveServer]:
    trusted = LoginPki.create(tmp_path / "emulation-pki", emulation_pki)
    server = LiveServer(
        lambda issuer: make_login_app(sqlite_url, redis_url, trusted, ISSUER=issuer)
    )
    yield server
    server.stop()
    dispose(server.app)


@pytest.mark.pcsc
def test_pcscd_restarted_under_the_desktop_agent(
    pcsc_live: LiveServer, emulated_card: Any, pcscd_restartable: None
) -> None:
    """Documented: an agent waiting for the card when pcscd goes away exits with status 3
    ("pcscd is not running") and posts nothing: the sign-in stays open. Once pcscd is back
    (the vpcd card reconnects by itself), running the agent again on the same URL completes it;
    the provider never noticed and lost nothing."""
    from idp.card import pcsc

    rp = RelyingParty(pcsc_live.app)
    emulated = emulated_card("suzuki")
    browser, started, request = _start(rp)
    first = _agent(started.handoff_url)
    out, err = first.communicate("\n1234\nABC123\n", timeout=60)
    assert first.returncode == 0, err
    assert "1234" not in out + err and "ABC123" not in out + err
    sub = _finish(pcsc_live, rp, browser, started, request)["sub"]

    emulated.remove()  # the card is off the reader: the next agent waits for it
    browser, started, request = _start(rp)
    waiting = _agent(started.handoff_url, "--wait", "60")
    try:
        assert wait_until(lambda: browser.status(started)["state"] == "picked_up", timeout=30)
        stop_pcscd()
        out, err = waiting.communicate(timeout=30)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait(timeout=10)
    assert waiting.returncode == 3, (out, err)
    assert "pcscd" in err and "Traceback" not in err
    assert browser.status(started)["state"] == "picked_up"  # not failed, not half-done

    start_pcscd()
    emulated = emulated_card("suzuki")  # a card on the reader of the new pcscd
    assert pcsc.card_present(VPCD_READER)
    again = _agent(started.handoff_url)
    out, err = again.communicate("\n1234\n", timeout=60)
    assert again.returncode == 0, err
    assert browser.status(started)["state"] == "card_verified"
    assert _finish(pcsc_live, rp, browser, started, request)["sub"] == sub
    assert _releases(pcsc_live.app) == 2
    assert _vpcd_listening() and PCSCD_SOCKET.exists()


def _start(rp: RelyingParty) -> tuple[Browser, Any, Any]:
    browser = Browser(rp)
    request = rp.authorization_request(prompt="login")
    return browser, browser.start(request), request


def _finish(
    live: LiveServer, rp: RelyingParty, browser: Browser, started: Any, request: Any
) -> dict[str, Any]:
    response = browser.proceed(started)
    if response.status_code == 200:
        response = browser.consent(started, response.get_data(as_text=True))
    assert response.status_code == 302, response.get_data(as_text=True)
    params = callback_params(response.headers["Location"])
    assertion = rp.assertion(aud=live.url + "/token")
    token = rp.token_request(params["code"][0], request.verifier, assertion=assertion)
    assert token.status_code == 200, token.get_data(as_text=True)
    info = rp.userinfo(token.get_json()["access_token"]).get_json()
    assert isinstance(info, dict)
    return info
