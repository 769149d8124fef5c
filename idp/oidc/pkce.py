"""PKCE (RFC 7636), S256 only, required for every client (confidential ones too).

Authlib's ``CodeChallenge`` accepts ``plain``, defaults a missing method to ``plain`` and
insists on a verifier only for public clients. This subclass refuses ``plain`` and a missing
method at the authorization endpoint and requires the verifier for every client at the token
endpoint.
"""

from __future__ import annotations

from typing import Any, ClassVar

from authlib.oauth2.rfc7636 import CodeChallenge

from idp.oidc.errors import oauth_error

__all__ = ["S256CodeChallenge"]


class S256CodeChallenge(CodeChallenge):
    """PKCE with S256 only, required everywhere."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def __init__(self) -> None:
        super().__init__(required=True)

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise oauth_error("invalid_request", "Missing 'code_challenge' (PKCE is required).")
        if data.get("code_challenge_method") != "S256":
            raise oauth_error("invalid_request", "'code_challenge_method' must be S256.")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise oauth_error("invalid_request", "Missing 'code_verifier'.")
        super().validate_code_verifier(grant, result)
