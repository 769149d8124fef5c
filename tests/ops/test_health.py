"""/healthz, /readyz and /metrics against real and broken services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from login_support import LoginPki, dispose, make_login_app
from ops_support import free_port, sample
from provider_support import make_app

pytestmark = pytest.mark.redis


def _ready(app: Flask) -> tuple[int, dict[str, Any]]:
    response = app.test_client().get("/readyz")
    body = response.get_json()
    assert isinstance(body, dict)
    assert response.headers["Cache-Control"] == "no-store"
    return response.status_code, body


def test_healthz_answers_without_any_service(tmp_path: Path) -> None:
    broken = make_broken_app(tmp_path)
    try:
        response = broken.test_client().get("/healthz")
        assert response.status_code == 200
        assert response.get_json() == {"status": "alive"}
    finally:
        dispose(broken)


def test_ready_on_real_services(app: Flask) -> None:
    status, body = _ready(app)
    assert status == 200, body
    assert body["status"] == "ready" and body["failed"] == []
    assert set(body["checks"]) == {"database", "redis", "trust", "revocation"}
    assert body["checks"]["database"] == body["checks"]["redis"] == "ok"
    assert body["checks"]["trust"] == "1 authentication, 1 signature anchors"
    assert body["checks"]["revocation"] == "2 CRL(s) fresh"


@pytest.mark.postgres
def test_ready_on_postgres(database_url: str, redis_url: str, login_pki: LoginPki) -> None:
    application = make_login_app(database_url, redis_url, login_pki)
    try:
        status, body = _ready(application)
        assert status == 200, body
    finally:
        dispose(application)


def make_broken_app(tmp_path: Path, **overrides: Any) -> Flask:
    """An app whose PostgreSQL and Redis ports have nobody listening (no schema is made)."""
    from idp.app import create_app

    config: dict[str, Any] = {
        "TESTING": True,
        "ISSUER": "http://localhost",
        "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none",
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "REDIS_TIMEOUT": 0.5,
    }
    config.update(overrides)
    return create_app(config)


def test_not_ready_names_the_database_and_redis(tmp_path: Path, login_pki: LoginPki) -> None:
    broken = make_broken_app(tmp_path, **login_pki.settings())
    db_errors = sample("myna_database_errors_total", kind="OperationalError")
    redis_errors = sample("myna_redis_errors_total", kind="ConnectionError")
    failures = sample("myna_readiness_failures_total", check="redis")
    try:
        status, body = _ready(broken)
    finally:
        dispose(broken)
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["failed"] == ["database", "redis"]
    assert body["checks"]["database"] == "failed: unreachable (OperationalError)"
    assert body["checks"]["redis"] == "failed: unreachable (ConnectionError)"
    assert body["checks"]["trust"].startswith("1 authentication")
    text = str(body)
    assert "127.0.0.1" not in text and "postgres" not in text  # no URL, user or host
    assert sample("myna_database_errors_total", kind="OperationalError") > db_errors
    assert sample("myna_redis_errors_total", kind="ConnectionError") > redis_errors
    assert sample("myna_readiness_failures_total", check="redis") == failures + 1


def test_no_anchors_and_no_revocation_source(sqlite_url: str, redis_url: str) -> None:
    application = make_app(sqlite_url, redis_url)
    try:
        status, body = _ready(application)
    finally:
        dispose(application)
    assert status == 503
    assert body["failed"] == ["trust", "revocation"]
    assert body["checks"]["trust"] == "failed: no authentication anchors configured"
    assert body["checks"]["revocation"].startswith("failed: no revocation source configured")


def test_revocation_waived(sqlite_url: str, redis_url: str, login_pki: LoginPki) -> None:
    settings = login_pki.settings()
    del settings["JPKI_CRL_FILES"]
    application = make_app(sqlite_url, redis_url, REVOCATION_REQUIRED=False, **settings)
    try:
        status, body = _ready(application)
    finally:
        dispose(application)
    assert status == 200, body
    assert body["checks"]["revocation"] == "not required"


def test_missing_crl_for_one_anchor(sqlite_url: str, redis_url: str, login_pki: LoginPki) -> None:
    settings = login_pki.settings()
    settings["JPKI_CRL_FILES"] = [str(login_pki.crl_path("auth"))]
    application = make_app(sqlite_url, redis_url, **settings)
    try:
        status, body = _ready(application)
    finally:
        dispose(application)
    assert status == 503
    assert body["failed"] == ["revocation"]
    assert body["checks"]["revocation"] == "failed: no CRL for 1 anchor(s)"


def test_stale_crl_on_disk_keeps_the_previous_one(app: Flask, login_pki: LoginPki) -> None:
    """A CRL file replaced by an out-of-date one: refused, the previous good CRL is kept."""
    assert _ready(app)[0] == 200
    _write_stale_crls(login_pki)
    _bump_mtime(login_pki)
    status, body = _ready(app)
    assert status == 200, body
    assert body["checks"]["revocation"] == (
        "2 CRL(s) fresh; refresh failing for file 1, file 2, previous CRL kept"
    )
    login_pki.write_crls()
    _bump_mtime(login_pki, seconds=2)
    status, body = _ready(app)
    assert (status, body["checks"]["revocation"]) == (200, "2 CRL(s) fresh")


def test_crl_that_went_stale_while_held(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """A CRL loaded while fresh, whose nextUpdate then passes (the file never changes)."""
    from idp.handoff.trust import get_revocation_data

    assert _ready(app)[0] == 200
    data = get_revocation_data(app)
    assert data.crls is not None
    summaries = data.crls.checker.summaries
    late = max(s.next_update for s in summaries) + timedelta(seconds=301)

    class Later(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return late

    monkeypatch.setattr("idp.ops.health.datetime", Later)
    status, body = _ready(app)
    assert status == 503
    assert body["checks"]["revocation"] == "failed: CRL past nextUpdate for 2 anchor(s)"


def test_unreadable_anchor(sqlite_url: str, redis_url: str, login_pki: LoginPki) -> None:
    application = make_login_app(sqlite_url, redis_url, login_pki)
    try:
        login_pki.auth_anchor.write_bytes(b"not a certificate")
        status, body = _ready(application)
    finally:
        dispose(application)
    assert status == 503
    assert body["failed"] == ["trust", "revocation"]
    assert body["checks"]["trust"] == "failed: anchor files unreadable"
    assert body["checks"]["revocation"] == "failed: anchor files unreadable"


def test_metrics_endpoint(app: Flask) -> None:
    client = app.test_client()
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    text = response.get_data(as_text=True)
    assert 'myna_http_requests_total{endpoint="ops.healthz",method="GET",status="200"}' in text
    assert "myna_http_request_duration_seconds_bucket" in text


def _bump_mtime(login_pki: LoginPki, seconds: float = 1.0) -> None:
    """Make the CRL files look newer and wait out the trust cache's recheck interval."""
    import os
    import time

    for kind in ("auth", "sign"):
        path = login_pki.crl_path(kind)
        stat = path.stat()
        os.utime(path, (stat.st_atime, stat.st_mtime + seconds))
    time.sleep(1.05)


def _write_stale_crls(login_pki: LoginPki) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    now = datetime.now(UTC)
    for kind in ("auth", "sign"):
        crl = login_pki.pki.crl(
            kind,  # type: ignore[arg-type]
            [],
            this_update=now - timedelta(hours=2),
            next_update=now - timedelta(hours=1),
        )
        login_pki.crl_path(kind).write_bytes(crl.public_bytes(Encoding.PEM))
