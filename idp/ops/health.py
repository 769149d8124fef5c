"""``/healthz`` (the process answers), ``/readyz`` (it can serve logins) and ``/metrics``.

``/healthz`` touches nothing: a load balancer or orchestrator restarts a process only when this
fails. ``/readyz`` checks what a login needs and answers 200, or 503 naming each failed check:

============  ===================================================================================
check         ok when
============  ===================================================================================
database      ``SELECT 1`` succeeds
redis         Redis answers ``PING`` (within ``IDP_REDIS_TIMEOUT``)
trust         the JPKI anchor files are readable and name at least one authentication anchor
revocation    with CRLs (``IDP_JPKI_CRL_FILES``, ``IDP_JPKI_CRL_URLS``): every anchor has a CRL
              that is fresh (not past nextUpdate + ``IDP_CRL_GRACE``, not older than
              ``IDP_CRL_MAX_AGE``); sources failing while the held CRLs are fresh are named
              but do not fail the check. With only OCSP (``IDP_OCSP_URL``): ok, naming the
              last query's failure if any. With no source: ok only when
              ``IDP_REVOCATION_REQUIRED`` is off
============  ===================================================================================

Reasons are short fixed texts and exception class names: never a URL, password or path.
``/metrics`` is Prometheus' text format; under gunicorn with ``PROMETHEUS_MULTIPROC_DIR`` set it
adds up every worker. Expose ``/readyz`` and ``/metrics`` to the internal network only (the
nginx configuration in docs/deploy does).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from cryptography import x509
from flask import Blueprint, Flask, Response, json
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from idp.extensions import db, get_settings, get_store
from idp.handoff.trust import TrustUnavailableError, get_revocation_data, get_trust
from idp.ops import metrics
from idp.storage.ephemeral import StoreUnavailableError

__all__ = ["CHECKS", "bp", "init_app", "readiness"]

OK: Final = "ok"

bp = Blueprint("ops", __name__)


class CheckFailed(Exception):
    """A readiness check failed; the message is safe to show."""


def _database() -> str:
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise CheckFailed(f"unreachable ({type(exc).__name__})") from exc
    finally:
        db.session.rollback()
    return OK


def _redis() -> str:
    try:
        get_store().ping()
    except StoreUnavailableError as exc:
        cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else "StoreError"
        raise CheckFailed(f"unreachable ({cause})") from exc
    return OK


def _anchors() -> tuple[int, int]:
    """The number of (authentication, signature) anchors in the configured files."""
    settings = get_settings()
    counts = []
    for paths in (settings.jpki_auth_anchors, settings.jpki_sign_anchors):
        count = 0
        for path in paths:
            try:
                data = path.read_bytes()
                if b"-----BEGIN" in data:
                    count += len(x509.load_pem_x509_certificates(data))
                else:
                    x509.load_der_x509_certificate(data)
                    count += 1
            except (OSError, ValueError) as exc:
                raise CheckFailed("anchor files unreadable") from exc
        counts.append(count)
    return counts[0], counts[1]


def _trust() -> str:
    auth, sign = _anchors()
    if not auth:
        raise CheckFailed("no authentication anchors configured")
    return f"{auth} authentication, {sign} signature anchors"


def _revocation() -> str:
    try:
        trust = get_trust()
    except TrustUnavailableError as exc:
        _anchors()  # unreadable anchors are the trust check's failure; name them here too
        raise CheckFailed("anchor files unusable") from exc
    data = get_revocation_data()
    if not data.configured:
        if trust.revocation_required:
            raise CheckFailed("no revocation source configured (IDP_REVOCATION_REQUIRED is on)")
        return "not required"
    notes = []
    if data.ocsp is not None and data.ocsp.last_error is not None:
        notes.append(f"OCSP last query failed ({data.ocsp.last_error})")
    if data.crls is None:
        return "; ".join(["OCSP only", *notes])
    report = data.freshness(datetime.now(UTC))
    problems = []
    missing = sum(1 for item in report if item.summary is None)
    if missing:
        problems.append(f"no CRL for {missing} anchor(s)")
    stale: dict[str, int] = {}
    for item in report:
        if item.stale is not None:
            text = _STALE_TEXTS.get(item.stale, "CRL stale")
            stale[text] = stale.get(text, 0) + 1
    problems.extend(f"{text} for {count} anchor(s)" for text, count in stale.items())
    if problems:
        raise CheckFailed(", ".join(problems + notes))
    failing = [source.name for source in data.crls.sources if source.failures]
    if failing:
        notes.append(f"refresh failing for {', '.join(failing)}, previous CRL kept")
    return "; ".join([f"{len(report)} CRL(s) fresh", *notes])


_STALE_TEXTS: Final = {
    "CRL is past its nextUpdate": "CRL past nextUpdate",
    "CRL is older than the staleness limit": "CRL older than IDP_CRL_MAX_AGE",
    "CRL thisUpdate is in the future": "CRL dated in the future",
}


CHECKS: Final[dict[str, Callable[[], str]]] = {
    "database": _database,
    "redis": _redis,
    "trust": _trust,
    "revocation": _revocation,
}


def readiness() -> tuple[bool, dict[str, str]]:
    """Run every check; (all ok, check -> "ok"/detail or the reason it failed)."""
    results: dict[str, str] = {}
    ready = True
    for name, check in CHECKS.items():
        try:
            results[name] = check()
        except CheckFailed as exc:
            ready = False
            results[name] = f"failed: {exc}"
            metrics.READINESS_FAILURES.labels(check=name).inc()
    return ready, results


def _json(document: object, status: int = 200) -> Response:
    response = Response(json.dumps(document), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/healthz")
def healthz() -> Response:
    return _json({"status": "alive"})


@bp.get("/readyz")
def readyz() -> Response:
    ready, checks = readiness()
    failed = [name for name, result in checks.items() if result.startswith("failed")]
    document = {"status": "ready" if ready else "unavailable", "failed": failed, "checks": checks}
    return _json(document, 200 if ready else 503)


def _registry() -> CollectorRegistry:
    """Every worker's values under gunicorn's multiprocess mode, else this process's."""
    registry = CollectorRegistry()
    try:
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    except ValueError:  # PROMETHEUS_MULTIPROC_DIR is not set: one process
        return REGISTRY
    return registry


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    get_revocation_data().freshness(datetime.now(UTC))  # myna_crl_age_seconds, as of now
    response = Response(generate_latest(_registry()), mimetype=None)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
