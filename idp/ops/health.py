"""``/healthz`` (the process answers), ``/readyz`` (it can serve logins) and ``/metrics``.

``/healthz`` touches nothing: a load balancer or orchestrator restarts a process only when this
fails. ``/readyz`` checks what a login needs and answers 200, or 503 naming each failed check:

============  ===================================================================================
check         ok when
============  ===================================================================================
database      ``SELECT 1`` succeeds
redis         Redis answers ``PING`` (within ``IDP_REDIS_TIMEOUT``)
trust         the JPKI anchor files are readable and name at least one authentication anchor
revocation    the CRLs load (readable, signed by an anchor, before their nextUpdate) and every
              anchor has one whose nextUpdate has not passed since (``IDP_JPKI_CRL_FILES``);
              with no revocation source, ok only when ``IDP_REVOCATION_REQUIRED`` is off
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
from idp.handoff.trust import TrustUnavailableError, get_trust
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
        raise CheckFailed(
            "CRL unusable (unreadable, not signed by an anchor, or past its nextUpdate)"
        ) from exc
    summaries = getattr(trust.revocation, "summaries", None)
    if summaries is None:
        if trust.revocation_required:
            raise CheckFailed("no revocation source configured (IDP_REVOCATION_REQUIRED is on)")
        return "not required"
    now = datetime.now(UTC)
    anchors = (*trust.auth_anchors, *trust.sign_anchors)
    missing = stale = 0
    for anchor in anchors:
        held = [s for s in summaries if s.issuer == anchor]
        if not held:
            missing += 1
        elif all(s.next_update + trust.clock_skew < now for s in held):
            stale += 1
    if missing or stale:
        problems = []
        if missing:
            problems.append(f"no CRL for {missing} anchor(s)")
        if stale:
            problems.append(f"CRL past nextUpdate for {stale} anchor(s)")
        raise CheckFailed(", ".join(problems))
    return f"{len(summaries)} CRL(s) fresh"


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
    response = Response(generate_latest(_registry()), mimetype=None)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
