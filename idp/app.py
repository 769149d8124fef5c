"""The application factory: ``create_app(test_config=None)``.

Settings come from defaults, then ``IDP_*`` environment variables, then ``test_config``
(:mod:`idp.config`); the app refuses to start on anything missing or unsafe. Creating the app
reads one thing: outside tests, the stored signing keys must open with the configured
key-encryption key (:func:`idp.oidc.keys.prepare_signing_keys`; skipped if the database is not
reachable yet). Otherwise the database and Redis are used on first request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from idp import handoff, i18n, ops
from idp.account import portal
from idp.config import load_settings
from idp.extensions import init_extensions
from idp.oidc import routes as oidc_routes
from idp.oidc.keys import prepare_signing_keys

__all__ = ["create_app"]


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the identity provider's Flask app."""
    app = Flask("idp", instance_relative_config=True)
    settings = load_settings(app, test_config)
    if settings.trusted_proxy_count:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app,
            x_for=settings.trusted_proxy_count,
            x_proto=settings.trusted_proxy_count,
            x_host=settings.trusted_proxy_count,
        )
    init_extensions(app, settings)
    i18n.init_app(app)
    oidc_routes.init_app(app)
    handoff.init_app(app)
    portal.init_app(app)
    ops.init_app(app)
    if not settings.testing:
        prepare_signing_keys(app, settings)
    return app
