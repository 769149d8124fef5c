"""The security headers of every response, set in one place (an app-wide ``after_request``).

=============================  ==================================================================
header                         value
=============================  ==================================================================
Content-Security-Policy        ``default-src 'none'``; scripts, styles, images, fonts and
                               connections from the provider itself; inline ``<script>`` and
                               ``<style>`` only with this response's nonce (``csp_nonce()`` in
                               templates); ``base-uri 'none'``; ``frame-ancestors 'none'``.
                               ``IDP_CSP_REPORT_ONLY`` sends it as ``...-Report-Only`` instead.
X-Frame-Options                ``DENY`` (``frame-ancestors`` for old browsers)
Strict-Transport-Security      ``max-age=IDP_HSTS_MAX_AGE`` when the issuer is ``https://``
Referrer-Policy                ``no-referrer``
X-Content-Type-Options         ``nosniff``
Cache-Control                  ``no-store`` (and ``Pragma: no-cache``) on token, userinfo,
                               revocation, introspection, authorization, login, device API and
                               probe responses whatever they set; ``no-store`` on any other
                               response that did not choose its own caching (discovery and
                               JWKS are public, static files revalidate)
=============================  ==================================================================

``form-action`` is left out on purpose: browsers apply it to the redirect that follows the
consent form, which goes to the relying party's ``redirect_uri`` on another origin.
"""

from __future__ import annotations

import secrets
from typing import Final

from flask import Flask, Response, current_app, g, request

from idp.extensions import get_settings
from idp.ops.settings import OpsSettings, get_ops_settings

__all__ = ["content_security_policy", "csp_nonce", "init_app"]

_NO_STORE_BLUEPRINTS: Final = frozenset({"device", "handoff", "ops"})
_NO_STORE_ENDPOINTS: Final = frozenset(
    {"oidc.token", "oidc.userinfo", "oidc.revoke", "oidc.introspect", "oidc.authorize"}
)


def csp_nonce() -> str:
    """This response's CSP nonce (made on first use): ``<script nonce="{{ csp_nonce() }}">``."""
    nonce = g.get("csp_nonce")
    if not isinstance(nonce, str):
        nonce = g.csp_nonce = secrets.token_urlsafe(16)
    return nonce


def content_security_policy(nonce: str | None, report_uri: str | None = None) -> str:
    """The policy; inline code is allowed only with ``nonce`` (when the response used one)."""
    inline = f" 'nonce-{nonce}'" if nonce else ""
    directives = [
        "default-src 'none'",
        f"script-src 'self'{inline}",
        f"style-src 'self'{inline}",
        # https: for the relying parties' registered logos (https only, checked at registration).
        "img-src 'self' data: https:",
        "font-src 'self'",
        "connect-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
    if report_uri:
        directives.append(f"report-uri {report_uri}")
    return "; ".join(directives)


def _no_store(response: Response) -> bool:
    if request.blueprint in _NO_STORE_BLUEPRINTS or request.endpoint in _NO_STORE_ENDPOINTS:
        return True
    return "Cache-Control" not in response.headers


def _apply(response: Response) -> Response:
    settings: OpsSettings = get_ops_settings(current_app)
    headers = response.headers
    nonce = g.get("csp_nonce")
    policy = content_security_policy(
        nonce if isinstance(nonce, str) else None, settings.csp_report_uri
    )
    if settings.csp_report_only:
        headers["Content-Security-Policy-Report-Only"] = policy
    else:
        headers["Content-Security-Policy"] = policy
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    if settings.hsts_max_age and get_settings().issuer.startswith("https://"):
        headers["Strict-Transport-Security"] = f"max-age={settings.hsts_max_age}"
    if _no_store(response):
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"
    return response


def init_app(app: Flask) -> None:
    """Security headers on every response of ``app``; ``csp_nonce()`` in its templates."""
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.after_request(_apply)
