"""Checks on an authorization request beyond Authlib's, in one fixed order (:data:`CHECKS`).

Authlib has already found the client and matched the redirect URI exactly (unknown client or
unregistered redirect URI -> an error page, never a redirect) and validated ``response_type``
and scope. These checks run first inside the grant's payload validation, so every failure here is
redirected to the (registered) redirect URI with ``state`` and ``iss``. PKCE (S256) and the
nonce are also enforced by the Authlib extensions (:mod:`idp.oidc.pkce`, ``OpenIDCode``);
checking them here too makes the order, and so the reported error, deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from idp.oidc.claims_request import ClaimsRequestError, parse_claims
from idp.oidc.errors import is_valid_state, oauth_error

__all__ = ["CHECKS", "PROMPTS", "RequestChecks", "run_checks"]

PROMPTS = frozenset({"none", "login", "consent", "select_account"})
_SINGLE = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
    "acr_values",
    "ui_locales",
    "response_mode",
    "claims",
    "dpop_jkt",
    "sign_transaction_id",
    "request",
    "request_uri",
)
_NONCE_MAX = 255
_HINT_MAX = 255
_LIST_MAX = 512
_THUMBPRINT = re.compile(r"^[A-Za-z0-9_-]{43}$")
_LOCALE = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")

Params = Mapping[str, Any]
Lists = Mapping[str, list[Any]]


def no_repeated_parameters(data: Params, lists: Lists) -> None:
    for name in _SINGLE:
        if len(lists.get(name, [])) > 1:
            raise oauth_error("invalid_request", f"Parameter '{name}' is repeated.")


def no_request_objects(data: Params, lists: Lists) -> None:
    if data.get("request"):
        raise oauth_error("request_not_supported")
    if data.get("request_uri"):
        raise oauth_error("request_uri_not_supported")
    if data.get("registration"):
        raise oauth_error("registration_not_supported")


def query_response_mode(data: Params, lists: Lists) -> None:
    mode = data.get("response_mode")
    if mode not in (None, "", "query"):
        raise oauth_error("invalid_request", "Only response_mode=query is supported.")


def openid_scope(data: Params, lists: Lists) -> None:
    if "openid" not in str(data.get("scope") or "").split():
        raise oauth_error("invalid_scope", "The 'openid' scope is required.")


def state_present(data: Params, lists: Lists) -> None:
    state = data.get("state")
    if not state:
        raise oauth_error("invalid_request", "Missing 'state'.")
    if not is_valid_state(state):
        raise oauth_error("invalid_request", "'state' must be 1-255 printable ASCII characters.")


def nonce_present(data: Params, lists: Lists) -> None:
    nonce = data.get("nonce")
    if not nonce:
        raise oauth_error("invalid_request", "Missing 'nonce'.")
    if len(nonce) > _NONCE_MAX or not nonce.isascii() or not nonce.isprintable():
        raise oauth_error("invalid_request", "'nonce' must be 1-255 printable ASCII characters.")


def pkce_s256(data: Params, lists: Lists) -> None:
    if not data.get("code_challenge"):
        raise oauth_error("invalid_request", "Missing 'code_challenge' (PKCE is required).")
    if data.get("code_challenge_method") != "S256":
        raise oauth_error("invalid_request", "'code_challenge_method' must be S256.")


def prompt_values(data: Params, lists: Lists) -> None:
    prompts = str(data.get("prompt") or "").split()
    if any(p not in PROMPTS for p in prompts):
        raise oauth_error("invalid_request", "Unknown 'prompt' value.")
    if "none" in prompts and len(prompts) > 1:
        raise oauth_error("invalid_request", "'prompt=none' cannot be combined.")


def max_age_number(data: Params, lists: Lists) -> None:
    max_age = data.get("max_age")
    if max_age in (None, ""):
        return
    if not str(max_age).isdigit() or len(str(max_age)) > 10:
        raise oauth_error("invalid_request", "'max_age' must be a non-negative integer.")


def short_hints(data: Params, lists: Lists) -> None:
    if len(str(data.get("login_hint") or "")) > _HINT_MAX:
        raise oauth_error("invalid_request", "'login_hint' is too long.")
    for name in ("acr_values", "ui_locales"):
        if len(str(data.get(name) or "")) > _LIST_MAX:
            raise oauth_error("invalid_request", f"'{name}' is too long.")
    if any(not _LOCALE.match(tag) for tag in str(data.get("ui_locales") or "").split()):
        raise oauth_error("invalid_request", "'ui_locales' must be BCP 47 language tags.")


def dpop_jkt_format(data: Params, lists: Lists) -> None:
    jkt = data.get("dpop_jkt")
    if jkt in (None, ""):
        return
    if not isinstance(jkt, str) or not _THUMBPRINT.match(jkt):
        raise oauth_error("invalid_request", "'dpop_jkt' must be a base64url SHA-256 thumbprint.")


def claims_parameter(data: Params, lists: Lists) -> None:
    raw = data.get("claims")
    if raw in (None, ""):
        return
    try:
        parse_claims(raw)
    except ClaimsRequestError as exc:
        raise oauth_error("invalid_request", str(exc)) from exc


#: The pipeline, in order. Each check raises an OAuth error or returns.
CHECKS: tuple[Callable[[Params, Lists], None], ...] = (
    no_repeated_parameters,
    no_request_objects,
    query_response_mode,
    openid_scope,
    state_present,
    nonce_present,
    pkce_s256,
    prompt_values,
    max_age_number,
    short_hints,
    claims_parameter,
    dpop_jkt_format,
)


def run_checks(data: Params, lists: Lists) -> None:
    """Run :data:`CHECKS` in order."""
    for check in CHECKS:
        check(data, lists)


class RequestChecks:
    """Grant extension: runs :data:`CHECKS` before Authlib validates the request payload
    (and so before the PKCE and nonce hooks, whose order Authlib leaves unspecified)."""

    def __call__(self, grant: Any) -> None:
        grant.register_hook("before_validate_authorization_request_payload", self.validate)

    def validate(self, grant: Any, redirect_uri: str) -> None:
        payload = grant.request.payload
        run_checks(payload.data, payload.datalist)
