"""The ``oidc`` blueprint: authorization, pushed authorization requests, token, revocation,
introspection, userinfo, discovery and JWKS endpoints; logout (:mod:`idp.oidc.logout`)."""

from __future__ import annotations

import hashlib

from flask import Blueprint, Flask, Response, json, request

from idp.extensions import get_settings
from idp.oidc import errors
from idp.oidc.authorize import begin_authorization
from idp.oidc.discovery import ENDPOINTS, provider_metadata
from idp.oidc.errors import OAuth2Error
from idp.oidc.logout import bp as logout_bp
from idp.oidc.pushed import push_authorization_request
from idp.oidc.server import build_server, get_keyring, get_server
from idp.oidc.sign_api import init_app as init_sign_api

__all__ = ["bp", "init_app"]

bp = Blueprint("oidc", __name__)


@bp.route(ENDPOINTS["authorization_endpoint"], methods=["GET", "POST"])
def authorize() -> Response:
    return begin_authorization()


@bp.route(ENDPOINTS["token_endpoint"], methods=["POST"])
def token() -> Response:
    server = get_server()
    try:
        server.dpop.check(request.headers, method="POST", url=get_settings().endpoint("/token"))
    except OAuth2Error as error:
        return server.with_dpop_nonce(errors.error_response(error))
    response = server.create_token_response()
    assert isinstance(response, Response)
    return server.with_dpop_nonce(response)


@bp.route(ENDPOINTS["pushed_authorization_request_endpoint"], methods=["POST"])
def par() -> Response:
    return push_authorization_request(get_server())


@bp.route(ENDPOINTS["revocation_endpoint"], methods=["POST"])
def revoke() -> Response:
    return _endpoint("revocation")


@bp.route(ENDPOINTS["introspection_endpoint"], methods=["POST"])
def introspect() -> Response:
    return _endpoint("introspection")


def _endpoint(name: str) -> Response:
    response = get_server().create_endpoint_response(name)
    assert isinstance(response, Response)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route(ENDPOINTS["userinfo_endpoint"], methods=["GET", "POST"])
def userinfo() -> Response:
    server = get_server()
    response = server.create_endpoint_response("userinfo")
    assert isinstance(response, Response)
    response.headers["Cache-Control"] = "no-store"
    return server.with_dpop_nonce(response)


@bp.route("/.well-known/openid-configuration")
def discovery() -> Response:
    settings = get_settings()
    return _cacheable(provider_metadata(settings), settings.discovery_max_age)


@bp.route(ENDPOINTS["jwks_uri"])
def jwks() -> Response:
    settings = get_settings()
    return _cacheable(get_keyring().jwks(), settings.jwks_max_age)


def _cacheable(document: object, max_age: int) -> Response:
    """A public JSON document with ``Cache-Control`` and a strong ``ETag`` (the SHA-256 of the
    body); ``If-None-Match`` with that tag is answered ``304 Not Modified``."""
    body = json.dumps(document, sort_keys=True)
    response = Response(body, mimetype="application/json")
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Expose-Headers"] = "ETag"
    response.set_etag(hashlib.sha256(body.encode()).hexdigest())
    conditional = response.make_conditional(request)
    assert isinstance(conditional, Response)
    return conditional


def init_app(app: Flask) -> None:
    """Compose the authorization server, register the blueprint and the error handlers."""
    build_server(app, get_settings(app))
    errors.init_app(app)
    app.register_blueprint(bp)
    app.register_blueprint(logout_bp)
    init_sign_api(app)
