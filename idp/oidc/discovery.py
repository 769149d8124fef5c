"""OpenID Provider metadata: only what this provider actually does."""

from __future__ import annotations

from typing import Any

from idp.config import ID_TOKEN_ALGS, Settings
from idp.oidc.assurance import EVIDENCE_TYPES, TRUST_FRAMEWORK, VERIFIABLE_CLAIMS
from idp.oidc.claims import CLAIMS_BY_SCOPE, offered_scopes
from idp.oidc.client_auth import ASSERTION_ALGS
from idp.oidc.dpop import DPOP_ALGS
from idp.oidc.grants import TOKEN_ENDPOINT_AUTH_METHODS
from idp.oidc.introspection import TokenIntrospection
from idp.oidc.request_checks import PROMPTS
from idp.oidc.request_objects import REQUEST_OBJECT_ALGS
from idp.oidc.sessions import ACR_ORDER

__all__ = ["ENDPOINTS", "provider_metadata"]

#: Endpoint paths under the issuer.
ENDPOINTS = {
    "authorization_endpoint": "/authorize",
    "token_endpoint": "/token",
    "userinfo_endpoint": "/userinfo",
    "revocation_endpoint": "/revoke",
    "introspection_endpoint": "/introspect",
    "pushed_authorization_request_endpoint": "/par",
    "end_session_endpoint": "/logout",
    "jwks_uri": "/jwks.json",
}


def provider_metadata(settings: Settings) -> dict[str, Any]:
    """The ``/.well-known/openid-configuration`` document."""
    scopes = offered_scopes(settings.municipalities)
    metadata: dict[str, Any] = {"issuer": settings.issuer}
    metadata.update({name: settings.endpoint(path) for name, path in ENDPOINTS.items()})
    metadata.update(
        {
            "scopes_supported": list(scopes),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": list(ID_TOKEN_ALGS),
            "token_endpoint_auth_methods_supported": list(TOKEN_ENDPOINT_AUTH_METHODS),
            "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
            "revocation_endpoint_auth_methods_supported": list(TOKEN_ENDPOINT_AUTH_METHODS),
            "revocation_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
            "introspection_endpoint_auth_methods_supported": list(
                TokenIntrospection.CLIENT_AUTH_METHODS
            ),
            "introspection_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "acr",
                "amr",
                "at_hash",
                "sid",
                *(claim for scope in scopes for claim in CLAIMS_BY_SCOPE.get(scope, ())),
                "verified_claims",
            ],
            "claim_types_supported": ["normal"],
            # Weakest first (idp.oidc.sessions.ACR_ORDER); docs/sessions.md.
            "acr_values_supported": list(ACR_ORDER),
            "prompt_values_supported": sorted(PROMPTS),
            "ui_locales_supported": ["ja", "en"],
            "claims_locales_supported": ["ja"],
            "authorization_response_iss_parameter_supported": True,
            "claims_parameter_supported": True,
            "request_parameter_supported": True,
            "request_object_signing_alg_values_supported": list(REQUEST_OBJECT_ALGS),
            "require_signed_request_object": False,
            "request_uri_parameter_supported": False,
            "require_request_uri_registration": False,
            "require_pushed_authorization_requests": False,
            "dpop_signing_alg_values_supported": list(DPOP_ALGS),
            # Sessions and logout (docs/sessions.md)
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
            "frontchannel_logout_supported": False,
            "frontchannel_logout_session_supported": False,
            # OpenID Connect for Identity Assurance 1.0
            "verified_claims_supported": True,
            "trust_frameworks_supported": [TRUST_FRAMEWORK],
            "evidence_supported": list(EVIDENCE_TYPES),
            "claims_in_verified_claims_supported": list(VERIFIABLE_CLAIMS),
        }
    )
    return metadata
