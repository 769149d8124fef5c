"""Request hooks: count requests, logins, card verifications and tokens; write the access log.

Everything is derived from the request's endpoint and the response, in one ``after_request``
hook, so the login and OAuth code needs no counting calls of its own:

- every request: ``myna_http_requests_total{endpoint,method,status}`` and
  ``myna_http_request_duration_seconds{endpoint}``;
- ``POST /device/v1/transactions/<id>/response``: ``myna_card_verifications_total{result}``,
  the ``status`` of the answer (``verified``, ``enroll_needed``) or its ``error`` code;
- any redirect that is an authorization response (it carries ``iss`` = the issuer, RFC 9207):
  ``myna_logins_total{result}``, ``code`` or the OAuth ``error``;
- ``POST /token``: ``myna_tokens_issued_total{grant_type}`` or ``myna_token_errors_total{error}``.

Database failures are counted by SQLAlchemy's ``handle_error`` event on the app's engine,
Redis failures by the store itself (:func:`idp.ops.metrics.record_redis_error`).

The access log (logger ``idp.access``, INFO) names method, route (``/login/<transaction_id>``,
not the transaction; the path only when no route matched, and never the query string), endpoint,
status and duration; it goes through redaction like every record. Probes and
scrapes (``/healthz``, ``/readyz``, ``/metrics``) are counted but not logged.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from flask import Flask, Response, current_app, g, request
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext

from idp.extensions import db, get_settings
from idp.ops import metrics
from idp.ops.settings import get_ops_settings

__all__ = ["init_app"]

access_log = logging.getLogger("idp.access")

_METHODS: Final = frozenset({"GET", "POST", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
_GRANT_TYPES: Final = frozenset({"authorization_code", "refresh_token", "client_credentials"})
_CARD_RESPONSE_ENDPOINT: Final = "device.post_response"
_TOKEN_ENDPOINT: Final = "oidc.token"  # noqa: S105 - an endpoint name
#: Probes and scrapes: counted, not access-logged.
_QUIET: Final = "ops."


def _start() -> None:
    g.request_started = time.perf_counter()


def _json_field(response: Response, name: str) -> Any:
    if response.is_streamed or response.mimetype != "application/json":
        return None
    body = response.get_json(silent=True)
    return body.get(name) if isinstance(body, dict) else None


def _authorization_result(response: Response, issuer: str) -> str | None:
    """``code`` or the error of an authorization response redirect; None for other responses."""
    if response.status_code not in (302, 303) or not response.location:
        return None
    parts = urlsplit(response.location)
    params = parse_qs(parts.query) or parse_qs(parts.fragment)
    if params.get("iss") != [issuer]:
        return None
    if "code" in params:
        return "code"
    errors = params.get("error")
    return metrics.label(errors[0] if errors else None)


def _count(response: Response, endpoint: str) -> None:
    status = response.status_code
    if endpoint == _CARD_RESPONSE_ENDPOINT:
        if status == 200:
            result = metrics.label(_json_field(response, "status"))
        else:
            result = metrics.label(_json_field(response, "error"))
        metrics.CARD_VERIFICATIONS.labels(result=result).inc()
    elif endpoint == _TOKEN_ENDPOINT:
        if status == 200:
            grant = metrics.label(request.form.get("grant_type"), allowed=_GRANT_TYPES)
            metrics.TOKENS_ISSUED.labels(grant_type=grant).inc()
        else:
            metrics.TOKEN_ERRORS.labels(error=metrics.label(_json_field(response, "error"))).inc()
    authorization = _authorization_result(response, get_settings().issuer)
    if authorization is not None:
        metrics.AUTHORIZATION_RESPONSES.labels(result=authorization).inc()


def _observe(response: Response) -> Response:
    started = g.get("request_started")
    elapsed = time.perf_counter() - started if isinstance(started, float) else 0.0
    endpoint = request.endpoint or "unmatched"
    method = request.method if request.method in _METHODS else "other"
    metrics.HTTP_REQUESTS.labels(
        endpoint=endpoint, method=method, status=str(response.status_code)
    ).inc()
    metrics.HTTP_REQUEST_SECONDS.labels(endpoint=endpoint).observe(elapsed)
    _count(response, endpoint)
    if get_ops_settings(current_app).access_log and not endpoint.startswith(_QUIET):
        # The route, not the path: /login/<transaction_id> names no transaction.
        path = request.url_rule.rule if request.url_rule is not None else request.path
        access_log.info(
            "%s %s %d %.1fms",
            method,
            path,
            response.status_code,
            elapsed * 1000,
            extra={
                "method": method,
                "path": path,
                "endpoint": endpoint,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 1),
            },
        )
    return response


def _database_error(context: ExceptionContext) -> None:
    metrics.record_database_error(context.original_exception)


def init_app(app: Flask) -> None:
    """Count ``app``'s requests and database errors."""
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_observe)
    with app.app_context():
        for engine in db.engines.values():
            event.listen(engine, "handle_error", _database_error)
