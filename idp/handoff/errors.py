"""Device API errors: one table, one JSON shape ``{"error": <code>, "message": <text>}``.

Every failure the device API reports is a :class:`DeviceError` with a stable snake_case code
from :data:`DEVICE_ERRORS` (HTTP status + a fixed English message for developers). Certificate
and signature failures from :mod:`idp.card.validation` keep their own ``code`` and are answered
with 422. Whether an error also ends the login (the browser then shows why) is decided by the
verification code, not here.
"""

from __future__ import annotations

from typing import Final

from flask import Response, json

from idp.card.validation import CertificateValidationError

__all__ = ["DEVICE_ERRORS", "VALIDATION_STATUS", "DeviceError", "error_response"]

VALIDATION_STATUS: Final = 422
"""HTTP status of every certificate or signature validation failure."""

#: code -> (HTTP status, message). Validation codes come from the card layer (422).
DEVICE_ERRORS: Final[dict[str, tuple[int, str]]] = {
    "invalid_json": (400, "The body must be a JSON object."),
    "invalid_token": (400, "The card response is missing a field or a field is malformed."),
    "unsupported_format": (400, "The card response format must be myna:1."),
    "algorithm_unsupported": (400, "The signature algorithm must be RS256."),
    "signing_certificate_required": (
        400,
        "This challenge's purpose is enroll: send signingCertificate and signingSignature.",
    ),
    "signing_certificate_unexpected": (
        400,
        "signingCertificate and signingSignature are only sent for purpose enroll.",
    ),
    "qr_malformed": (400, "'qr' must be a QR code URL of this provider."),
    "qr_forged": (400, "The QR code's check value is wrong."),
    "qr_unknown": (404, "No login transaction has this QR code."),
    "already_picked_up": (409, "Another device has already picked up this login."),
    "qr_stale": (410, "This QR code frame is too old; scan the code again."),
    "rate_limited": (429, "Too many requests; retry after the time in Retry-After."),
    "transaction_not_found": (404, "No login transaction has this handoff id."),
    "not_found": (404, "No such device API resource."),
    "method_not_allowed": (405, "This method is not allowed on this resource."),
    "transaction_closed": (409, "The login transaction has already ended."),
    "nonce_used": (409, "The challenge was already answered; a response is accepted once."),
    "transaction_conflict": (409, "The login transaction changed meanwhile; fetch it again."),
    "transaction_expired": (410, "The login transaction has expired."),
    "request_too_large": (413, "The request body is too large."),
    "unsupported_media_type": (415, "The body must be application/json."),
    "card_mismatch": (
        422,
        "The authentication certificate differs from the one verified earlier in this login.",
    ),
    "sign_transaction_unavailable": (
        410,
        "The signature transaction has expired or was already signed.",
    ),
    "sign_certificate_revoked": (
        410,
        "The signature certificate is revoked: the registered details (name, address, ...) "
        "changed. Renew the certificate at the municipal office.",
    ),
    "signer_mismatch": (
        422,
        "The signature certificate belongs to another resident than the one who logged in.",
    ),
    "temporarily_unavailable": (503, "The service is temporarily unavailable; retry later."),
    "trust_unavailable": (503, "The provider cannot read its trust configuration; retry later."),
}


class DeviceError(Exception):
    """A device API failure with its code, HTTP status and message."""

    def __init__(self, code: str, message: str | None = None, *, status: int | None = None) -> None:
        default_status, default_message = DEVICE_ERRORS.get(code, (VALIDATION_STATUS, code))
        super().__init__(message or default_message)
        self.code = code
        self.status = status or default_status
        self.message = message or default_message

    @classmethod
    def from_validation(cls, error: CertificateValidationError) -> DeviceError:
        """The device error for a card-layer validation failure (its own code, 422)."""
        return cls(error.code, str(error), status=VALIDATION_STATUS)


def error_response(error: DeviceError) -> Response:
    """The JSON response for ``error`` (never cached)."""
    body = json.dumps({"error": error.code, "message": error.message})
    response = Response(body, status=error.status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response
