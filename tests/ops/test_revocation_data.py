"""Revocation data (idp.revocation): CRLs fetched over HTTP and refreshed in the background,
verified before they are swapped in, OCSP answers cached in Redis within their validity; their
metrics and /readyz. Real HTTP servers on 127.0.0.1, the real ``openssl ocsp`` responder, the
test Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from login_support import LoginPki, dispose, make_login_app
from ops_support import free_port, sample, wait_until
from revocation_support import CrlServer, OcspServer, attempt_login

from idp.card.validation import (
    CertificateRevokedError,
    OcspRevocationChecker,
    RevocationUnavailableError,
)
from idp.config import ConfigError
from idp.handoff.trust import get_revocation_data
from idp.revocation import RevocationData, RevocationSettings
from idp.revocation.data import JITTER
from idp.revocation.ocsp_cache import CachedOcspChecker
from idp.storage.ephemeral import EphemeralStore

pytestmark = pytest.mark.redis


@pytest.fixture
def crl_server(login_pki: LoginPki) -> Iterator[CrlServer]:
    server = CrlServer()
    server.publish(login_pki)
    yield server
    server.stop()


@pytest.fixture
def ocsp_server(login_pki: LoginPki, tmp_path: Path) -> Iterator[OcspServer]:
    server = OcspServer(login_pki, tmp_path / "ocsp")
    server.register(login_pki.credentials("yamada"), login_pki.credentials("suzuki"))
    yield server
    server.stop()


def _app(sqlite_url: str, redis_url: str, login_pki: LoginPki, **config: Any) -> Flask:
    return make_login_app(sqlite_url, redis_url, login_pki, **config)


def _close(app: Flask) -> None:
    get_revocation_data(app).stop()  # the refresher thread of a URL configuration
    dispose(app)


def _held_revoked(app: Flask) -> int:
    crls = get_revocation_data(app).crls
    assert crls is not None
    return sum(summary.revoked_count for summary in crls.checker.summaries)


def _ready(app: Flask) -> tuple[int, str]:
    response = app.test_client().get("/readyz")
    return response.status_code, response.get_json()["checks"]["revocation"]


# -- settings ------------------------------------------------------------------------------------


def test_settings_are_typed_and_checked(tmp_path: Path) -> None:
    settings = RevocationSettings.from_extra(
        {
            "JPKI_CRL_FILES": f"{tmp_path}/a.crl:{tmp_path}/b.crl",
            "JPKI_CRL_URLS": "http://crl.example/a.crl https://crl.example/b.crl",
            "CRL_REFRESH_SECONDS": "600",
            "CRL_MAX_AGE": 3600,
            "OCSP_URL": "http://ocsp.example/",
            "OCSP_CACHE_MAX_AGE": "0",
        }
    )
    assert settings.crl_files == (tmp_path / "a.crl", tmp_path / "b.crl")
    assert settings.crl_urls == ("http://crl.example/a.crl", "https://crl.example/b.crl")
    assert settings.crl_refresh_seconds == 600.0 and settings.crl_max_age_seconds == 3600.0
    assert settings.ocsp_url == "http://ocsp.example/" and settings.ocsp_cache_max_age == 0.0
    assert settings.crl_grace_seconds == 300.0  # the default
    assert RevocationSettings.from_extra({}).has_source is False

    with pytest.raises(ConfigError) as info:
        RevocationSettings.from_extra(
            {
                "JPKI_CRL_URLS": ["ldap://crl.example/a"],
                "CRL_REFRESH_SECONDS": "soon",
                "CRL_MAX_AGE": 0,
                "CRL_GRACE": True,
                "OCSP_URL": "file:///etc/passwd",
                "JPKI_CRL_FILES": 3,
            }
        )
    assert info.value.problems == (
        "IDP_JPKI_CRL_FILES must be a list of paths",
        "IDP_JPKI_CRL_URLS: each entry must be an http(s) URL",
        "IDP_OCSP_URL: each entry must be an http(s) URL",
        "IDP_CRL_REFRESH_SECONDS must be a number of seconds",
        "IDP_CRL_GRACE must be a number of seconds",
        "IDP_CRL_MAX_AGE must be at least 1 seconds",
    )


def test_a_bad_setting_stops_the_start(
    sqlite_url: str, redis_url: str, login_pki: LoginPki
) -> None:
    with pytest.raises(ConfigError, match="IDP_CRL_FETCH_TIMEOUT"):
        _app(sqlite_url, redis_url, login_pki, CRL_FETCH_TIMEOUT=-1)


# -- CRLs over HTTP ------------------------------------------------------------------------------


def test_crls_are_fetched_and_refreshed_in_the_background(
    sqlite_url: str, redis_url: str, login_pki: LoginPki, crl_server: CrlServer
) -> None:
    app = _app(sqlite_url, redis_url, login_pki, **crl_server.settings(CRL_REFRESH_SECONDS=1))
    successes = sample("myna_crl_fetches_total", result="success")
    try:
        assert attempt_login(app, login_pki, "yamada") == "verified"
        assert sample("myna_crl_fetches_total", result="success") >= successes + 2
        serial = login_pki.credentials("yamada").auth_certificate.serial_number
        crl_server.publish(login_pki, revoked=[serial])
        # nobody asks for a refresh: the refresher thread fetches the new CRL by itself
        assert wait_until(lambda: _held_revoked(app) == 1, timeout=15)
        assert attempt_login(app, login_pki, "yamada") == "certificate_revoked"
        assert _ready(app) == (200, "2 CRL(s) fresh")
    finally:
        _close(app)


def test_a_failed_or_forged_fetch_keeps_the_previous_crl(
    sqlite_url: str, redis_url: str, login_pki: LoginPki, crl_server: CrlServer
) -> None:
    app = _app(sqlite_url, redis_url, login_pki, **crl_server.settings())
    data = get_revocation_data(app)
    try:
        assert attempt_login(app, login_pki, "yamada") == "verified"
        assert data.crls is not None
        held = data.crls.checker.summaries
        failures = sample("myna_crl_fetches_total", result="failure")

        # the auth CRL "signed" by a rogue CA with the same name, revoking yamada
        rogue = login_pki.pki.rogue_ca("auth")
        serial = login_pki.credentials("yamada").auth_certificate.serial_number
        forged = login_pki.pki.crl("auth", [(serial, datetime.now(UTC), None)], signer=rogue)
        crl_server.set("auth", forged)
        crl_server.bodies.pop("/sign.crl")  # 404
        assert data.refresh_now() == 2
        assert data.crls.checker.summaries == held
        assert sample("myna_crl_fetches_total", result="failure") == failures + 2
        assert [s.last_error for s in data.crls.sources] == [
            "revocation_data_invalid",
            "HTTPError",
        ]
        assert attempt_login(app, login_pki, "yamada") == "verified"
        status, detail = _ready(app)
        assert status == 200
        assert detail == "2 CRL(s) fresh; refresh failing for url 1, url 2, previous CRL kept"

        crl_server.publish(login_pki)
        assert data.refresh_now() == 0
        assert _ready(app) == (200, "2 CRL(s) fresh")
    finally:
        _close(app)


def test_staleness_limit_and_age_metric(
    sqlite_url: str, redis_url: str, login_pki: LoginPki, crl_server: CrlServer
) -> None:
    """A CRL older than IDP_CRL_MAX_AGE is stale even before its nextUpdate."""
    now = datetime.now(UTC)
    crl_server.publish(login_pki, this_update=now - timedelta(hours=2))
    app = _app(sqlite_url, redis_url, login_pki, **crl_server.settings(CRL_MAX_AGE=3600))
    fail_closed = sample("myna_revocation_fail_closed_total", reason="revocation_stale")
    try:
        assert attempt_login(app, login_pki, "yamada") == "revocation_stale"
        assert sample("myna_revocation_fail_closed_total", reason="revocation_stale") == (
            fail_closed + 1
        )
        assert _ready(app) == (503, "failed: CRL older than IDP_CRL_MAX_AGE for 2 anchor(s)")
        metrics = app.test_client().get("/metrics").get_data(as_text=True)
        ages = [
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("myna_crl_age_seconds{")
        ]
        assert len(ages) >= 2 and all(age >= 7200 for age in ages[-2:])
        crl_server.publish(login_pki)
        get_revocation_data(app).refresh_now()
        assert _ready(app) == (200, "2 CRL(s) fresh")
        assert attempt_login(app, login_pki, "yamada") == "verified"
    finally:
        _close(app)


def test_crl_files_and_urls_together(
    sqlite_url: str, redis_url: str, login_pki: LoginPki, crl_server: CrlServer
) -> None:
    app = _app(
        sqlite_url,
        redis_url,
        login_pki,
        JPKI_CRL_FILES=[str(login_pki.crl_path("sign"))],
        JPKI_CRL_URLS=[crl_server.url("auth")],
    )
    try:
        assert attempt_login(app, login_pki, "yamada") == "verified"
        data = get_revocation_data(app)
        assert data.crls is not None
        assert [s.name for s in data.crls.sources] == ["file 1", "url 1"]
    finally:
        _close(app)


# -- OCSP ----------------------------------------------------------------------------------------


def test_ocsp_answers_are_cached_in_redis_and_shared_by_instances(
    sqlite_url: str, redis_url: str, login_pki: LoginPki, ocsp_server: OcspServer, tmp_path: Path
) -> None:
    shared = {
        "JPKI_CRL_FILES": [],
        "OCSP_URL": ocsp_server.url,
        "REDIS_PREFIX": f"test:{uuid.uuid4().hex}:",
    }
    first = _app(sqlite_url, redis_url, login_pki, **shared)
    second = _app(f"sqlite:///{tmp_path / 'second.sqlite3'}", redis_url, login_pki, **shared)
    hits = sample("myna_ocsp_cache_total", result="hit", store="redis")
    try:
        assert attempt_login(first, login_pki, "yamada") == "verified"
        asked = ocsp_server.requests
        assert asked == 2  # enrollment: the authentication and the signature certificate
        assert attempt_login(second, login_pki, "yamada") == "verified"
        assert ocsp_server.requests == asked  # the other instance's answers, from Redis
        assert sample("myna_ocsp_cache_total", result="hit", store="redis") >= hits + 2
        assert _ready(second) == (200, "OCSP only")

        ocsp_server.revoke(login_pki.credentials("suzuki"))
        assert attempt_login(first, login_pki, "suzuki") == "certificate_revoked"
        # a revoked answer is cached too: the other instance refuses without asking again
        asked = ocsp_server.requests
        assert attempt_login(second, login_pki, "suzuki") == "certificate_revoked"
        assert ocsp_server.requests == asked
    finally:
        dispose(first)
        dispose(second)


def test_ocsp_cache_within_validity_and_per_process_without_redis(
    login_pki: LoginPki, ocsp_server: OcspServer
) -> None:
    dead_redis = EphemeralStore.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout=0.3)
    checker = CachedOcspChecker(
        OcspRevocationChecker(url=ocsp_server.url, timeout=10),
        store=lambda: dead_redis,
        max_age=timedelta(minutes=10),
    )
    yamada = login_pki.credentials("yamada").auth_certificate
    suzuki = login_pki.credentials("suzuki").auth_certificate
    issuer = login_pki.pki.auth_ca.certificate
    now = datetime.now(UTC)
    process_hits = sample("myna_ocsp_cache_total", result="hit", store="process")
    checker.check(yamada, issuer, now=now)
    assert ocsp_server.requests == 1
    checker.check(yamada, issuer, now=now + timedelta(minutes=1))
    assert ocsp_server.requests == 1
    assert sample("myna_ocsp_cache_total", result="hit", store="process") == process_hits + 1

    ocsp_server.stop()
    errors = sample("myna_ocsp_responder_errors_total", kind="revocation_unavailable")
    checker.check(yamada, issuer, now=now + timedelta(minutes=2))  # the first answer, cached
    with pytest.raises(RevocationUnavailableError) as info:  # nothing cached, nobody answers
        checker.check(suzuki, issuer, now=now + timedelta(minutes=7))
    assert type(info.value) is RevocationUnavailableError
    assert checker.last_error == "revocation_unavailable"
    assert sample("myna_ocsp_responder_errors_total", kind="revocation_unavailable") == errors + 1

    ocsp_server.start()
    ocsp_server.revoke(login_pki.credentials("suzuki"))
    with pytest.raises(CertificateRevokedError):
        checker.check(suzuki, issuer, now=now + timedelta(minutes=7))
    assert checker.last_error is None
    # past the first answer's nextUpdate (openssl -nmin 5): asked again (an answer already past
    # its nextUpdate at that time is used once, not cached)
    asked = ocsp_server.requests
    checker.check(yamada, issuer, now=now + timedelta(minutes=6))
    checker.check(yamada, issuer, now=now + timedelta(minutes=6))
    assert ocsp_server.requests == asked + 2
    uncached = CachedOcspChecker(
        OcspRevocationChecker(url=ocsp_server.url, timeout=10),
        store=lambda: dead_redis,
        max_age=timedelta(0),
    )
    asked = ocsp_server.requests
    uncached.check(yamada, issuer, now=now)
    uncached.check(yamada, issuer, now=now)
    assert ocsp_server.requests == asked + 2


def test_ocsp_first_then_crls(
    sqlite_url: str,
    redis_url: str,
    login_pki: LoginPki,
    ocsp_server: OcspServer,
    crl_server: CrlServer,
) -> None:
    """With both, a responder that is down is covered by fresh CRLs."""
    app = _app(sqlite_url, redis_url, login_pki, **crl_server.settings(OCSP_URL=ocsp_server.url))
    try:
        ocsp_server.stop()
        assert attempt_login(app, login_pki, "ito") == "verified"
        status, detail = _ready(app)
        assert status == 200
        assert detail == "2 CRL(s) fresh; OCSP last query failed (revocation_unavailable)"
    finally:
        _close(app)


def test_refresh_schedule_follows_next_update_and_retries(
    login_pki: LoginPki, crl_server: CrlServer
) -> None:
    """The refresher sleeps the interval, less when a CRL's nextUpdate comes first, the retry
    interval after a failure; jitter only ever shortens the sleep."""
    now = datetime.now(UTC)
    crl_server.publish(login_pki, next_update=now + timedelta(minutes=10))
    data = RevocationData(
        RevocationSettings.from_extra(
            {
                "JPKI_CRL_URLS": [crl_server.url("auth"), crl_server.url("sign")],
                "CRL_REFRESH_SECONDS": 3600,
                "CRL_RETRY_SECONDS": 30,
            }
        ),
        store=lambda: EphemeralStore.from_url(f"redis://127.0.0.1:{free_port()}/0"),
    )
    data.set_anchors([login_pki.pki.auth_ca.certificate, login_pki.pki.sign_ca.certificate])
    assert data.refresh_now() == 0
    assert data.crls is not None
    assert 599 <= data.crls.next_refresh_in(now, interval=3600, retry=30) <= 600
    sleeps = [data.next_sleep(now) for _ in range(50)]
    assert all(600 * (1 - JITTER) - 1 <= s <= 600 for s in sleeps)
    assert len(set(sleeps)) > 1
    crl_server.failing = True
    assert data.refresh_now() == 2
    assert data.crls.next_refresh_in(now, interval=3600, retry=30) == 30
    assert data.crls.next_refresh_in(now + timedelta(minutes=11), interval=3600, retry=30) == 30
