"""Signed request objects (JAR, RFC 9101), sent by value (``request=``) to ``/authorize`` or
``/par``.

A request object must be a compact JWS signed by the client with one of its registered keys
(``jwks`` / ``jwks_uri``) and an asymmetric algorithm (:data:`REQUEST_OBJECT_ALGS`;
PS256 / ES256 / Ed25519 for ``fapi2`` clients). ``alg: none`` is refused for every client, and
so are encrypted (JWE) request objects. Its claims:

- ``client_id`` = the client (and the ``client_id`` query parameter); ``iss``, if present, too;
- ``aud`` = the issuer (a string or an array containing it);
- ``exp`` in the future and at most an hour ahead; ``nbf`` / ``iat``, if present, not in the
  future (``IDP_CLOCK_LEEWAY``); no ``request`` / ``request_uri`` inside;
- every other claim is an authorization request parameter (strings; ``max_age`` may be a
  number, ``claims`` an object). Only the request object's parameters are used: parameters
  outside it are ignored (RFC 9101 section 5).

Failures are :class:`RequestObjectError` (``invalid_request_object``) with fixed messages.
"""

from __future__ import annotations

import json
import time
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError

from idp.config import Settings
from idp.oidc.client_auth import ASSERTION_ALGS, ClientKeysError, client_key_set, jose_header
from idp.storage.ephemeral import EphemeralStore

__all__ = ["REQUEST_OBJECT_ALGS", "RequestObjectError", "decode_request_object"]

REQUEST_OBJECT_ALGS: tuple[str, ...] = ASSERTION_ALGS
_MAX_LENGTH = 16 * 1024
_MAX_AHEAD = 3600
_TYPES = (None, "oauth-authz-req+jwt", "JWT")
_JWT_CLAIMS = frozenset({"iss", "aud", "exp", "nbf", "iat", "jti", "sub"})


class RequestObjectError(ValueError):
    """The request object is not acceptable (the message is fixed text, safe to send)."""


def decode_request_object(
    raw: Any, client: Any, *, settings: Settings, store: EphemeralStore
) -> dict[str, str]:
    """Verify ``raw`` for ``client``; the authorization request parameters it carries."""
    if not isinstance(raw, str) or len(raw) > _MAX_LENGTH or raw.count(".") != 2:
        raise RequestObjectError("The request object must be a signed JWT (compact JWS).")
    header = jose_header(raw)
    alg = header.get("alg")
    if alg not in client.signing_algs(REQUEST_OBJECT_ALGS):
        raise RequestObjectError("The request object must be signed with an allowed algorithm.")
    if header.get("typ") not in _TYPES:
        raise RequestObjectError("The request object typ must be oauth-authz-req+jwt.")
    try:
        keys = client_key_set(client, store)
        claims = dict(jwt.decode(raw, keys, algorithms=[str(alg)]).claims)
    except ClientKeysError as exc:
        raise RequestObjectError(str(exc)) from exc
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise RequestObjectError("The request object signature is invalid.") from exc
    _check_claims(claims, client.get_client_id(), settings)
    return _parameters(claims)


def _check_claims(claims: dict[str, Any], client_id: str, settings: Settings) -> None:
    now = time.time()
    leeway = settings.clock_leeway
    if claims.get("client_id") != client_id:
        raise RequestObjectError("The request object client_id must be the client.")
    if "iss" in claims and claims["iss"] != client_id:
        raise RequestObjectError("The request object iss must be the client.")
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if settings.issuer not in audiences:
        raise RequestObjectError("The request object aud must be the issuer.")
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise RequestObjectError("The request object needs an exp.")
    if exp <= now - leeway:
        raise RequestObjectError("The request object has expired.")
    if exp - now > _MAX_AHEAD:
        raise RequestObjectError("The request object exp is more than an hour ahead.")
    for name in ("nbf", "iat"):
        value = claims.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value > now + leeway:
            raise RequestObjectError(f"The request object {name} is in the future.")
    if "request" in claims or "request_uri" in claims:
        raise RequestObjectError("A request object must not contain request or request_uri.")


def _parameters(claims: dict[str, Any]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in claims.items():
        if name in _JWT_CLAIMS:
            continue
        if isinstance(value, str):
            params[name] = value
        elif name == "max_age" and isinstance(value, int) and not isinstance(value, bool):
            params[name] = str(value)
        elif name == "claims" and isinstance(value, dict):
            params[name] = json.dumps(value, ensure_ascii=False)
        else:
            raise RequestObjectError("Request object parameters must be strings.")
    return params
