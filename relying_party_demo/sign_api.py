"""The provider's signature back channel, as any relying party calls it (HTTP only).

``POST {issuer}/api/sign-transactions`` registers the SHA-256 of a document and the text the
resident sees on the phone; ``GET {issuer}/api/sign-transactions/<id>/result`` fetches the CMS
once (``POST`` with the assertion as form fields). Both authenticate the client with
``private_key_jwt`` (``aud`` = the URL called, a fresh ``jti``, 60 s).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
from authlib.oauth2.rfc7523 import private_key_jwt_sign
from joserfc.jwk import ECKey, RSAKey

__all__ = ["SignApi", "SignApiError", "SignResult"]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TIMEOUT = 10


class SignApiError(Exception):
    """The provider refused or could not be reached (``error`` as it answered)."""

    def __init__(self, error: str, description: str = "", status: int = 0) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True)
class SignResult:
    cms: bytes
    certificate: bytes
    chain: tuple[bytes, ...]
    signed_at: str


class SignApi:
    def __init__(self, issuer: str, client_id: str, key: ECKey | RSAKey, alg: str) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.key = key
        self.alg = alg

    def _assertion(self, url: str) -> dict[str, str]:
        token = private_key_jwt_sign(
            self.key,
            client_id=self.client_id,
            token_endpoint=url,
            alg=self.alg,
            header={"kid": self.key.kid} if self.key.kid else None,
            expires_in=60,
        )
        return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": str(token)}

    @staticmethod
    def _answer(response: requests.Response, expected: int) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != expected or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            description = body.get("error_description", "") if isinstance(body, dict) else ""
            raise SignApiError(
                str(error or f"http_{response.status_code}"), str(description), response.status_code
            )
        return body

    def create(self, digest: bytes, text: str, expires_in: int = 300) -> str:
        url = f"{self.issuer}/api/sign-transactions"
        body: dict[str, Any] = {
            "digest": base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"),
            "digest_algorithm": "sha-256",
            "text": text,
            "expires_in": expires_in,
        }
        try:
            response = requests.post(url, json={**body, **self._assertion(url)}, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise SignApiError("provider_unreachable", str(exc)) from exc
        answer = self._answer(response, 201)
        transaction_id = answer.get("sign_transaction_id")
        if not isinstance(transaction_id, str) or not transaction_id:
            raise SignApiError("invalid_response", "no sign_transaction_id")
        return transaction_id

    def result(self, transaction_id: str) -> SignResult:
        url = f"{self.issuer}/api/sign-transactions/{quote(transaction_id, safe='')}/result"
        try:
            # POST: the client assertion as form fields, not in a URL that may be logged
            response = requests.post(url, data=self._assertion(url), timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise SignApiError("provider_unreachable", str(exc)) from exc
        answer = self._answer(response, 200)
        try:
            if answer.get("status") != "signed":
                raise SignApiError("invalid_response", "status is not signed")
            return SignResult(
                cms=base64.b64decode(answer["cms"], validate=True),
                certificate=base64.b64decode(answer["certificate"], validate=True),
                chain=tuple(base64.b64decode(c, validate=True) for c in answer.get("chain") or ()),
                signed_at=str(answer.get("signed_at", "")),
            )
        except (KeyError, TypeError, binascii.Error) as exc:
            raise SignApiError("invalid_response", "malformed result") from exc
