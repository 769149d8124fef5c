"""The signature transactions back channel (flow E), documented in ``docs/signing.md``.

=======  =========================================  ==========================================
method   path                                       answer
=======  =========================================  ==========================================
POST     /api/sign-transactions                     201 ``{"sign_transaction_id",
                                                    "expires_at"}``
GET      /api/sign-transactions/<id>/result         200 the signed result, once; 404, 409, 410
POST     /api/sign-transactions/<id>/result         the same (for private_key_jwt in a form)
=======  =========================================  ==========================================

The client authenticates exactly as at the token endpoint (``client_secret_basic`` in the
``Authorization`` header, or ``private_key_jwt`` with ``client_assertion`` and
``client_assertion_type`` as members of the JSON body, as form fields, or as query parameters
of the GET), and must be registered for the ``sign`` scope. Errors are
``{"error", "error_description"}`` built by :mod:`idp.oidc.errors`.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from flask import Blueprint, Flask, Response, json, request

from idp.extensions import get_store
from idp.oidc.claims import SIGN
from idp.oidc.clients import OAuthClient
from idp.oidc.errors import OAuth2Error, error_response, json_error, oauth_error
from idp.oidc.grants import TOKEN_ENDPOINT_AUTH_METHODS
from idp.oidc.server import get_server
from idp.oidc.sign_transactions import (
    FetchError,
    SignRequestError,
    SignTransactionStore,
    parse_sign_request,
)

__all__ = ["MAX_BODY", "bp", "init_app", "sign_transactions"]

log = logging.getLogger(__name__)

MAX_BODY: Final = 4096
"""Largest request body: a digest, 200 characters of text and a client assertion fit."""
_AUTH_MEMBERS: Final = ("client_id", "client_assertion", "client_assertion_type")

bp = Blueprint("sign_api", __name__, url_prefix="/api/sign-transactions")


def sign_transactions() -> SignTransactionStore:
    return SignTransactionStore(get_store())


def _json(document: Any, status: int) -> Response:
    response = Response(json.dumps(document), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


class _AuthRequest(OAuth2Request):
    """Authlib's request with the client authentication members taken from a JSON body, a
    form or the query (Authlib's private_key_jwt reads them from ``form``)."""

    def __init__(self, method: str, uri: str, auth: dict[str, str], headers: Any) -> None:
        super().__init__(method, uri, headers=headers)
        self._auth = auth

    @property
    def form(self) -> dict[str, str]:
        return self._auth


def _authenticate(members: dict[str, Any]) -> OAuthClient:
    """The calling client, authenticated like at the token endpoint and registered for sign."""
    server = get_server()
    auth = {k: v for k, v in members.items() if k in _AUTH_MEMBERS and isinstance(v, str)}
    oauth_request = _AuthRequest(request.method, request.url, auth, request.headers)
    oauth_request.payload = BasicOAuth2Payload(auth)
    client: OAuthClient = server.authenticate_client(
        oauth_request, list(TOKEN_ENDPOINT_AUTH_METHODS), "sign_transactions"
    )
    if SIGN not in client.allowed_items():
        raise oauth_error(
            "unauthorized_client", "The client is not registered for 'sign'.", status=403
        )
    return client


def _json_body() -> Any:
    length = request.content_length
    if length is not None and length > MAX_BODY:
        raise oauth_error("invalid_request", "The request body is too large.", status=413)
    raw = request.stream.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise oauth_error("invalid_request", "The request body is too large.", status=413)
    if request.mimetype != "application/json":
        raise oauth_error("invalid_request", "The body must be application/json.")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise oauth_error("invalid_request", "The body is not valid JSON.") from exc


@bp.post("")
def create() -> Response:
    try:
        body = _json_body()
        client = _authenticate(body if isinstance(body, dict) else {})
        members = {k: v for k, v in body.items() if k not in _AUTH_MEMBERS}
        try:
            digest, text, expires_in = parse_sign_request(members)
        except SignRequestError as exc:
            raise oauth_error("invalid_request", str(exc)) from exc
    except OAuth2Error as error:
        return error_response(error)
    transaction = sign_transactions().create(
        client_id=client.get_client_id(), digest=digest, text=text, expires_in=expires_in
    )
    log.info("sign transaction %s created by %s", transaction.id[:8], client.get_client_id())
    return _json({"sign_transaction_id": transaction.id, "expires_at": transaction.expires_at}, 201)


@bp.route("/<transaction_id>/result", methods=["GET", "POST"])
def result(transaction_id: str) -> Response:
    members: dict[str, Any] = dict(request.args)
    if request.method == "POST":
        members.update(request.form)
    try:
        client = _authenticate(members)
    except OAuth2Error as error:
        return error_response(error)
    try:
        signed = sign_transactions().fetch(transaction_id, client.get_client_id(), now=time.time())
    except FetchError as error:
        return json_error(error.code)
    log.info("sign transaction %s fetched", transaction_id[:8])
    return _json(signed.document(), 200)


def init_app(app: Flask) -> None:
    """Register the back channel (part of the OIDC provider)."""
    app.register_blueprint(bp)
