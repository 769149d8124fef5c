"""Pushed authorization requests (PAR, RFC 9126) and the resolution of ``/authorize`` requests.

``POST /par``, in this order:

1. the client authenticates with its registered method (public clients: ``client_id``);
2. a ``DPoP`` header, if any, is verified (``htu`` = the PAR endpoint): the code will be bound
   to that key (RFC 9449 section 10.1; a ``dpop_jkt`` parameter must then name the same key);
3. ``request_uri`` is refused; a ``request`` (signed request object, :mod:`request_objects`)
   replaces the other parameters; a client that requires signed request objects must send one;
4. the request is validated exactly as ``/authorize`` would (Authlib + :mod:`request_checks`),
   errors answered as JSON (never redirected);
5. the parameters are stored in Redis under a random reference for ``IDP_PAR_TTL`` seconds
   (60): ``201 {"request_uri": "urn:ietf:params:oauth:request_uri:<ref>", "expires_in": 60}``.

At ``/authorize`` (:func:`resolve_authorization_request`) a ``request_uri`` is taken with
``GETDEL`` (single use) and must belong to the ``client_id`` of the query; only the pushed
parameters are used. Other ``request_uri`` values (fetching request objects by reference) are
``request_uri_not_supported``. A client that requires PAR
(``require_pushed_authorization_requests`` or the ``fapi2`` profile) is refused without one; a
client that requires signed request objects is refused a plain request.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from flask import Response, json
from flask import request as flask_request

from idp.oidc.clients import OAuthClient
from idp.oidc.errors import OAuth2Error, error_response, is_valid_state, oauth_error
from idp.oidc.grants import TOKEN_ENDPOINT_AUTH_METHODS
from idp.oidc.request_checks import no_repeated_parameters
from idp.oidc.request_objects import RequestObjectError, decode_request_object

if TYPE_CHECKING:
    from idp.oidc.server import ProviderServer

__all__ = [
    "REQUEST_URI_PREFIX",
    "PushedRequest",
    "push_authorization_request",
    "resolve_authorization_request",
]

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
_CLIENT_AUTH_PARAMS = frozenset({"client_assertion", "client_assertion_type", "client_secret"})
_REF_MAX = 128


@dataclass(frozen=True)
class PushedRequest:
    """A validated authorization request waiting for its ``/authorize``."""

    client_id: str
    params: dict[str, str]


def _key(reference: str) -> str:
    return "par:" + hashlib.sha256(reference.encode()).hexdigest()


def _take(store: Any, request_uri: Any) -> PushedRequest | None:
    if not isinstance(request_uri, str) or not request_uri.startswith(REQUEST_URI_PREFIX):
        return None
    reference = request_uri.removeprefix(REQUEST_URI_PREFIX)
    if not 0 < len(reference) <= _REF_MAX:
        return None
    data = store.take_json(_key(reference))
    if not isinstance(data, dict):
        return None
    return PushedRequest(client_id=str(data["client_id"]), params=dict(data["params"]))


def push_authorization_request(server: ProviderServer) -> Response:
    """The ``POST /par`` view (the request body is Flask's current request)."""
    settings = server.settings
    try:
        oauth_request = server.create_oauth2_request(None)
        client: OAuthClient = server.authenticate_client(
            oauth_request, list(TOKEN_ENDPOINT_AUTH_METHODS), "pushed_authorization"
        )
        proof = server.dpop.check(
            flask_request.headers,
            method="POST",
            url=settings.endpoint("/par"),
            algs=client.signing_algs(server.dpop_algs),
        )
        params = _pushed_parameters(server, client, oauth_request)
        if proof is not None:
            if params.get("dpop_jkt", proof.jkt) != proof.jkt:
                raise oauth_error("invalid_request", "dpop_jkt does not match the DPoP proof key.")
            params["dpop_jkt"] = proof.jkt
        _validate(server, params)
    except OAuth2Error as error:
        error.redirect_uri = None  # PAR errors are answered here, never redirected
        return server.with_dpop_nonce(error_response(error))
    reference = secrets.token_urlsafe(32)
    server.store.put_json(
        _key(reference),
        {"client_id": client.get_client_id(), "params": params},
        ttl=settings.par_ttl,
    )
    body = {"request_uri": REQUEST_URI_PREFIX + reference, "expires_in": settings.par_ttl}
    response = Response(json.dumps(body), status=201, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return server.with_dpop_nonce(response)


def _pushed_parameters(server: ProviderServer, client: Any, oauth_request: Any) -> dict[str, str]:
    form = flask_request.form
    no_repeated_parameters(form, {name: form.getlist(name) for name in form})
    if "request_uri" in form:
        raise oauth_error("invalid_request", "request_uri cannot be pushed.")
    client_id = client.get_client_id()
    if form.get("client_id", client_id) != client_id:
        raise oauth_error("invalid_request", "client_id is not the authenticated client.")
    if "request" in form:
        try:
            params = decode_request_object(
                form["request"], client, settings=server.settings, store=server.store
            )
        except RequestObjectError as exc:
            raise oauth_error("invalid_request_object", str(exc)) from exc
    elif client.requires_signed_request_object:
        raise oauth_error("invalid_request", "This client must send a signed request object.")
    else:
        params = {k: v for k, v in form.items() if k not in _CLIENT_AUTH_PARAMS}
    params["client_id"] = client_id
    return params


def _validate(server: ProviderServer, params: Mapping[str, str]) -> None:
    request = OAuth2Request("POST", server.settings.endpoint("/authorize"))
    request.payload = BasicOAuth2Payload(params)
    server.get_consent_grant(request)


def resolve_authorization_request(server: ProviderServer) -> OAuth2Request:
    """The ``/authorize`` request to validate: the pushed request a ``request_uri`` names, the
    parameters of a signed request object, or the query itself; client policies enforced."""
    request = server.create_oauth2_request(None)
    assert request.payload is not None
    data = request.payload.data
    client = server.query_client(data.get("client_id"))
    if client is None:
        return request  # Authlib answers an unknown client (an error page, no redirect)
    state = data.get("state") if is_valid_state(data.get("state")) else None
    redirect_uri = data.get("redirect_uri")
    safe_uri = redirect_uri if redirect_uri and client.check_redirect_uri(redirect_uri) else None

    def refuse(code: str, description: str | None = None) -> OAuth2Error:
        return oauth_error(code, description, state=state, redirect_uri=safe_uri)

    if "request_uri" in data:
        if "request" in data:
            raise refuse("invalid_request", "request and request_uri are mutually exclusive.")
        if not str(data["request_uri"]).startswith(REQUEST_URI_PREFIX):
            raise refuse("request_uri_not_supported", "Only request_uri values from /par work.")
        pushed = _take(server.store, data["request_uri"])
        if pushed is None or pushed.client_id != client.get_client_id():
            raise refuse("invalid_request_uri")
        request.payload = BasicOAuth2Payload(pushed.params)
        return request
    if client.requires_par:
        raise refuse("invalid_request", "This client must use pushed authorization requests.")
    if "request" in data:
        try:
            params = decode_request_object(
                data["request"], client, settings=server.settings, store=server.store
            )
        except RequestObjectError as exc:
            raise refuse("invalid_request_object", str(exc)) from exc
        request.payload = BasicOAuth2Payload(params)
        return request
    if client.requires_signed_request_object:
        raise refuse("invalid_request", "This client must send a signed request object.")
    return request
