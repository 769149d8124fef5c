"""The relying party as Authlib sees it, and client registration rules.

:class:`OAuthClient` answers Authlib's questions (``ClientMixin``) from a stored
:class:`~idp.storage.clients.Client`. :func:`new_client` validates registration input (used
by ``idp clients add``) so that only clients this provider can serve safely are stored.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin

from idp.config import ID_TOKEN_ALGS
from idp.extensions import get_settings
from idp.oidc.claims import OFFLINE_ACCESS, SUPPORTED_SCOPES, offered_scopes
from idp.oidc.client_auth import (
    FAPI2_ALGS,
    hash_client_secret,
    public_key_set,
    verify_client_secret,
)
from idp.oidc.subject import SectorError, sector_for
from idp.storage.clients import Client, get_client

__all__ = [
    "AUTH_METHODS",
    "FAPI2",
    "FAPI2_CODE_TTL",
    "PROFILES",
    "ClientRegistrationError",
    "NewClient",
    "OAuthClient",
    "load_client",
    "new_client",
]

AUTH_METHODS = ("private_key_jwt", "client_secret_basic", "none")

#: The FAPI 2.0 Security Profile: PAR + PKCE + private_key_jwt + DPoP, PS256/ES256/Ed25519,
#: codes of at most FAPI2_CODE_TTL seconds.
FAPI2 = "fapi2"
PROFILES = (FAPI2,)
FAPI2_CODE_TTL = 30


class OAuthClient(ClientMixin):
    """A stored client, answering Authlib's ``ClientMixin`` questions."""

    def __init__(self, row: Client) -> None:
        self.row = row
        self.client_id = row.client_id
        self.id_token_signed_response_alg = row.id_token_signed_response_alg
        self.client_metadata: dict[str, Any] = {
            "client_name": row.name,
            "redirect_uris": list(row.redirect_uris),
            "token_endpoint_auth_method": row.token_endpoint_auth_method,
            "id_token_signed_response_alg": row.id_token_signed_response_alg,
        }

    @property
    def name(self) -> str:
        return self.row.name

    @property
    def name_en(self) -> str | None:
        return self.row.name_en

    @property
    def logo_uri(self) -> str | None:
        return self.row.logo_uri

    @property
    def fapi2(self) -> bool:
        """The client has the FAPI 2.0 Security Profile switched on (``profile = "fapi2"``)."""
        return self.row.profile == FAPI2

    @property
    def requires_par(self) -> bool:
        """Authorization requests only through ``/par`` (RFC 9126)."""
        return self.fapi2 or bool(self.row.require_pushed_authorization_requests)

    @property
    def requires_signed_request_object(self) -> bool:
        """Authorization requests only as signed request objects (RFC 9101)."""
        return bool(self.row.require_signed_request_object)

    @property
    def requires_dpop(self) -> bool:
        """Token requests only with a DPoP proof (RFC 9449 ``dpop_bound_access_tokens``)."""
        return self.fapi2 or bool(self.row.dpop_bound_access_tokens)

    @property
    def is_public(self) -> bool:
        """No client authentication (``none``): refresh tokens are bound to its DPoP key."""
        return self.row.token_endpoint_auth_method == "none"  # noqa: S105 (a method name)

    def code_ttl(self, default: int) -> int:
        """Lifetime of this client's codes: shorter for FAPI 2.0 clients."""
        return min(default, FAPI2_CODE_TTL) if self.fapi2 else default

    def signing_algs(self, algs: Sequence[str]) -> list[str]:
        """``algs`` limited to what this client's profile allows."""
        return [alg for alg in algs if not self.fapi2 or alg in FAPI2_ALGS]

    @property
    def sector(self) -> str:
        return sector_for(
            sector_identifier=self.row.sector_identifier, redirect_uris=self.row.redirect_uris
        )

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> str | None:
        # OpenID Connect requires redirect_uri on every request: no default.
        return None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The requested scopes this provider offers, or None if one is not allowed here.

        Unknown scopes are ignored (OpenID Connect Core 3.1.2.1), and so is ``resident_of``
        where no municipality is configured; a scope the client is not registered for is an
        error (``invalid_scope``), never silently granted.
        """
        offered = offered_scopes(get_settings().municipalities)
        requested = [s for s in (scope or "").split() if s in offered]
        if any(s not in self.allowed_items() for s in requested):
            return None
        return " ".join(dict.fromkeys(requested))

    def allowed_items(self) -> set[str]:
        """The scopes this client may ask for here (``openid`` included)."""
        offered = set(offered_scopes(get_settings().municipalities))
        return (set(self.row.allowed_scopes) | {"openid"}) & offered

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.row.redirect_uris

    def check_post_logout_redirect_uri(self, uri: str) -> bool:
        """``uri`` is one of the client's registered post-logout redirect URIs (exact match)."""
        return uri in (self.row.post_logout_redirect_uris or [])

    def check_client_secret(self, client_secret: str) -> bool:
        stored = self.row.client_secret_hash
        return stored is not None and verify_client_secret(stored, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """Every endpoint takes the one method the client registered (token, revocation,
        introspection, pushed authorization requests)."""
        return method == self.row.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == "refresh_token":
            return OFFLINE_ACCESS in self.row.allowed_scopes
        return grant_type == "authorization_code"


def load_client(client_id: Any) -> OAuthClient | None:
    """The client ``client_id`` names, or None (also for ids no client can have: not a string,
    oversized, or not printable ASCII -- PostgreSQL would refuse a NUL outright)."""
    if not isinstance(client_id, str) or not 0 < len(client_id) <= 64:
        return None
    if not (client_id.isascii() and client_id.isprintable()):
        return None
    row = get_client(client_id)
    return OAuthClient(row) if row is not None else None


class ClientRegistrationError(ValueError):
    """Registration input that the provider refuses (message says why)."""


@dataclass(frozen=True)
class NewClient:
    """A client ready to store, and its secret (shown once) for ``client_secret_basic``."""

    client: Client
    client_secret: str | None


def _is_https_url(value: str) -> bool:
    parts = urlsplit(value)
    return (
        parts.scheme == "https"
        and bool(parts.hostname)
        and len(value) <= 2048
        and value.isascii()
        and value.isprintable()
        and '"' not in value
    )


def new_client(
    *,
    name: str,
    redirect_uris: Sequence[str],
    auth_method: str,
    name_en: str | None = None,
    logo_uri: str | None = None,
    jwks: dict[str, Any] | None = None,
    jwks_uri: str | None = None,
    id_token_alg: str = "ES256",  # noqa: S107 (an algorithm name, not a secret)
    sector_identifier: str | None = None,
    scopes: Sequence[str] = ("name", "address", "birthdate", "gender"),
    client_id: str | None = None,
    resource_server: bool = False,
    profile: str | None = None,
    require_pushed_authorization_requests: bool = False,
    require_signed_request_object: bool = False,
    dpop_bound_access_tokens: bool = False,
    post_logout_redirect_uris: Sequence[str] = (),
    backchannel_logout_uri: str | None = None,
    backchannel_logout_session_required: bool = False,
) -> NewClient:
    """Validate registration input and build the client (not yet stored)."""
    if not name.strip():
        raise ClientRegistrationError("a name is required")
    if not redirect_uris:
        raise ClientRegistrationError("at least one redirect URI is required")
    for uri in redirect_uris:
        _check_redirect_uri(uri)
    for uri in post_logout_redirect_uris:
        _check_redirect_uri(uri, "post-logout redirect URI")
    if backchannel_logout_uri is not None:
        _check_redirect_uri(backchannel_logout_uri, "back-channel logout URI")
    if backchannel_logout_session_required and backchannel_logout_uri is None:
        raise ClientRegistrationError("backchannel_logout_session_required needs the URI")
    if auth_method not in AUTH_METHODS:
        raise ClientRegistrationError(f"auth method must be one of {', '.join(AUTH_METHODS)}")
    if id_token_alg not in ID_TOKEN_ALGS:
        raise ClientRegistrationError(f"ID token alg must be one of {', '.join(ID_TOKEN_ALGS)}")
    unknown = [s for s in scopes if s not in SUPPORTED_SCOPES]
    if unknown:
        raise ClientRegistrationError(f"unknown scopes: {', '.join(unknown)}")
    try:
        sector_for(sector_identifier=sector_identifier, redirect_uris=redirect_uris)
    except SectorError as exc:
        raise ClientRegistrationError(str(exc)) from exc
    if profile is not None and profile not in PROFILES:
        raise ClientRegistrationError(f"profile must be one of {', '.join(PROFILES)}")
    if profile == FAPI2:
        if auth_method != "private_key_jwt":
            raise ClientRegistrationError("the fapi2 profile needs private_key_jwt")
        if id_token_alg not in FAPI2_ALGS:
            raise ClientRegistrationError("the fapi2 profile needs an ES256 or PS256 ID token")
    if require_signed_request_object and auth_method != "private_key_jwt":
        raise ClientRegistrationError("signed request objects need the client's keys (jwks)")
    if logo_uri is not None and not _is_https_url(logo_uri):
        raise ClientRegistrationError("logo_uri must be an https URL (shown on the login page)")
    if client_id is not None and not (
        0 < len(client_id) <= 64 and client_id.isascii() and client_id.isprintable()
    ):
        raise ClientRegistrationError("client id must be 1-64 printable ASCII characters")

    secret: str | None = None
    secret_hash: str | None = None
    if auth_method == "private_key_jwt":
        if (jwks is None) == (jwks_uri is None):
            raise ClientRegistrationError("private_key_jwt needs exactly one of jwks or jwks_uri")
        if jwks is not None:
            try:
                public_key_set(jwks)
            except ValueError as exc:
                raise ClientRegistrationError(f"jwks: {exc}") from exc
        if jwks_uri is not None and urlsplit(jwks_uri).scheme != "https":
            raise ClientRegistrationError("jwks_uri must be https")
    elif jwks is not None or jwks_uri is not None:
        raise ClientRegistrationError("jwks / jwks_uri only go with private_key_jwt")
    if auth_method == "client_secret_basic":
        secret = secrets.token_urlsafe(32)
        secret_hash = hash_client_secret(secret)

    client = Client(
        client_id=client_id or secrets.token_urlsafe(16),
        name=name.strip(),
        name_en=name_en,
        logo_uri=logo_uri,
        redirect_uris=list(redirect_uris),
        token_endpoint_auth_method=auth_method,
        client_secret_hash=secret_hash,
        jwks=jwks,
        jwks_uri=jwks_uri,
        id_token_signed_response_alg=id_token_alg,
        sector_identifier=sector_identifier,
        allowed_scopes=list(dict.fromkeys(s for s in scopes if s != "openid")),
        resource_server=resource_server,
        profile=profile,
        require_pushed_authorization_requests=require_pushed_authorization_requests,
        require_signed_request_object=require_signed_request_object,
        dpop_bound_access_tokens=dpop_bound_access_tokens,
        post_logout_redirect_uris=list(dict.fromkeys(post_logout_redirect_uris)),
        backchannel_logout_uri=backchannel_logout_uri,
        backchannel_logout_session_required=backchannel_logout_session_required,
    )
    return NewClient(client=client, client_secret=secret)


def _check_redirect_uri(uri: str, what: str = "redirect URI") -> None:
    parts = urlsplit(uri)
    if parts.fragment:
        raise ClientRegistrationError(f"{what} must not have a fragment: {uri}")
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return
    raise ClientRegistrationError(f"{what} must be https (http only on loopback): {uri}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
