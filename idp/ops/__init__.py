"""Operations: health and readiness, metrics, request ids and logs, security headers, serving.

- ``metrics``: the Prometheus metrics and the counters other modules call (no Flask import).
- ``redaction``: what must never reach a log (PINs, certificates, tokens, personal data).
- ``logs``: request ids, the JSON log formatter and the log record factory that redacts.
- ``observe``: request hooks that count requests, logins and tokens and write the access log.
- ``health``: ``/healthz``, ``/readyz`` and ``/metrics``.
- ``headers``: the security headers of every response (CSP with nonces, HSTS, ...).
- ``proxies``: forwarded headers honoured only from the configured proxy addresses.
- ``settings``: this package's ``IDP_*`` settings.
- ``gunicorn_conf``: the gunicorn configuration (``gunicorn -c python:idp.ops.gunicorn_conf``).

Importing this package has no side effects; :func:`init_app` wires it into an app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["init_app"]


def init_app(app: Flask) -> None:
    """Install request ids, redacted logs, metrics, health endpoints and security headers."""
    from idp.extensions import get_settings
    from idp.ops import headers, health, logs, observe
    from idp.ops.proxies import TrustedProxies
    from idp.ops.settings import load_ops_settings

    settings = load_ops_settings(app)
    logs.init_app(app)
    observe.init_app(app)
    health.init_app(app)
    headers.init_app(app)
    if get_settings(app).trusted_proxy_count:
        # Outside ProxyFix (idp.app): forwarded headers from anyone else are dropped first.
        app.wsgi_app = TrustedProxies(  # type: ignore[method-assign]
            app.wsgi_app, settings.trusted_proxies
        )
