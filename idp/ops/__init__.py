"""Operations: health and readiness, metrics, request ids and logs, security headers, serving.

- ``metrics``: the Prometheus metrics and the counters other modules call (no Flask import).
- ``redaction``: what must never reach a log (PINs, certificates, tokens, personal data).
- ``logs``: request ids, the JSON log formatter and the log record factory that redacts.
- ``observe``: request hooks that count requests, logins and tokens and write the access log.
- ``health``: ``/healthz``, ``/readyz`` and ``/metrics``.
- ``settings``: this package's ``IDP_*`` settings.

Importing this package has no side effects; :func:`init_app` wires it into an app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["init_app"]


def init_app(app: Flask) -> None:
    """Install request ids, redacted logs, metrics, health endpoints and security headers."""
    from idp.ops import health, logs, observe
    from idp.ops.settings import load_ops_settings

    load_ops_settings(app)
    logs.init_app(app)
    observe.init_app(app)
    health.init_app(app)
