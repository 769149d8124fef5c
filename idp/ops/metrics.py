"""Prometheus metrics of the provider, and the small calls other modules use to count.

Every metric is defined here, once per process, on prometheus_client's default registry.
Label values come from bounded sets (Flask endpoint names, HTTP status codes, the error codes
of the device API and of OAuth, exception class names) and never from user input as such:
:func:`label` folds anything that does not look like a code into ``"other"``.

Under gunicorn with several workers, set ``PROMETHEUS_MULTIPROC_DIR`` (the gunicorn config in
:mod:`idp.ops.gunicorn_conf` does) so that ``/metrics`` adds up every worker's values.

This module imports nothing from Flask or the rest of ``idp``: the storage layer may call it.
"""

from __future__ import annotations

import re
from typing import Final

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "AUTHORIZATION_RESPONSES",
    "BACKCHANNEL_LOGOUTS",
    "CARD_VERIFICATIONS",
    "CRL_AGE",
    "CRL_FETCHES",
    "DATABASE_ERRORS",
    "HTTP_REQUESTS",
    "HTTP_REQUEST_SECONDS",
    "OCSP_CACHE",
    "OCSP_RESPONDER_ERRORS",
    "READINESS_FAILURES",
    "REDIS_ERRORS",
    "REVOCATION_FAIL_CLOSED",
    "TOKENS_ISSUED",
    "TOKEN_ERRORS",
    "label",
    "record_database_error",
    "record_redis_error",
]

_CODE: Final = re.compile(r"[a-z][a-z0-9_]{0,47}")
_CLASS_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

HTTP_REQUESTS: Final = Counter(
    "myna_http_requests",
    "HTTP requests answered, by Flask endpoint and status code.",
    ["endpoint", "method", "status"],
)
HTTP_REQUEST_SECONDS: Final = Histogram(
    "myna_http_request_duration_seconds",
    "Time from the request to the response headers, by Flask endpoint (device API latency: "
    'endpoint=~"device\\\\..*"). Event streams count until their headers only.',
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CARD_VERIFICATIONS: Final = Counter(
    "myna_card_verifications",
    "Card responses posted to the device API, by result: verified, enroll_needed, or the "
    "error code of the refusal (certificate_revoked, signature_invalid, nonce_used, ...).",
    ["result"],
)
AUTHORIZATION_RESPONSES: Final = Counter(
    "myna_logins",
    "Authorization responses sent back to relying parties: result=code (a login completed) "
    "or the OAuth error (access_denied, temporarily_unavailable, ...).",
    ["result"],
)
TOKENS_ISSUED: Final = Counter(
    "myna_tokens_issued",
    "Successful token endpoint responses, by grant type.",
    ["grant_type"],
)
TOKEN_ERRORS: Final = Counter(
    "myna_token_errors",
    "Token endpoint refusals, by OAuth error code.",
    ["error"],
)
REDIS_ERRORS: Final = Counter(
    "myna_redis_errors",
    "Redis operations that failed (the request got 503 / temporarily_unavailable).",
    ["kind"],
)
DATABASE_ERRORS: Final = Counter(
    "myna_database_errors",
    "Database statements or connections that failed, by DB-API exception class.",
    ["kind"],
)
BACKCHANNEL_LOGOUTS: Final = Counter(
    "myna_backchannel_logouts",
    "Logout tokens POSTed to relying parties (OpenID Connect Back-Channel Logout), by result: "
    "delivered, or the failure (timeout, unreachable, refused -- a non-2xx answer).",
    ["result"],
)
READINESS_FAILURES: Final = Counter(
    "myna_readiness_failures",
    "Failed /readyz checks, by check (database, redis, trust, revocation).",
    ["check"],
)

# -- revocation data (idp.revocation) ----------------------------------------------------------
CRL_AGE: Final = Gauge(
    "myna_crl_age_seconds",
    "Seconds since the thisUpdate of the CRL held for each issuer (CN#key id of a configured "
    "anchor); set at each refresh and each scrape.",
    ["issuer"],
    multiprocess_mode="livemax",
)
CRL_FETCHES: Final = Counter(
    "myna_crl_fetches",
    "CRL downloads or file reads: result=success (verified and swapped in, or not newer) or "
    "failure (unreachable, unreadable, not signed by an anchor, past its nextUpdate).",
    ["result"],
)
OCSP_CACHE: Final = Counter(
    "myna_ocsp_cache",
    "OCSP answers looked up in the cache: result=hit or miss, store=redis or process (the "
    "per-process fallback while Redis is unavailable).",
    ["result", "store"],
)
OCSP_RESPONDER_ERRORS: Final = Counter(
    "myna_ocsp_responder_errors",
    "OCSP queries without a usable answer, by code (revocation_unavailable, "
    "ocsp_response_invalid, revocation_stale).",
    ["kind"],
)
REVOCATION_FAIL_CLOSED: Final = Counter(
    "myna_revocation_fail_closed",
    "Certificates refused because revocation could not be decided (IDP_REVOCATION_REQUIRED), "
    "by code (revocation_unavailable, revocation_stale, ocsp_response_invalid).",
    ["reason"],
)


def label(value: object, *, allowed: frozenset[str] | None = None) -> str:
    """``value`` if it is a snake_case code (and in ``allowed``, when given), else ``other``."""
    if not isinstance(value, str) or not _CODE.fullmatch(value):
        return "other"
    if allowed is not None and value not in allowed:
        return "other"
    return value


def _class_label(error: BaseException) -> str:
    name = type(error).__name__
    return name if _CLASS_NAME.fullmatch(name) else "other"


def record_redis_error(error: BaseException) -> None:
    """Count one failed Redis operation (called by :mod:`idp.storage.ephemeral`)."""
    REDIS_ERRORS.labels(kind=_class_label(error)).inc()


def record_database_error(error: BaseException) -> None:
    """Count one failed database operation (hooked to SQLAlchemy's ``handle_error``)."""
    DATABASE_ERRORS.labels(kind=_class_label(error)).inc()
