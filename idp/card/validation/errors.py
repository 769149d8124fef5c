"""Why a certificate, a revocation answer or a challenge signature was refused.

Exception tree (each class has a stable snake_case ``code`` for logs, metrics and the device
API; messages are fixed text, data lives in attributes)::

    CardError
    └── CertificateValidationError                 certificate_invalid
        ├── CertificateMalformedError              certificate_malformed
        │   ├── CertificateKeyUnsupportedError     certificate_key_unsupported
        │   ├── Basic4MissingError                 basic4_missing
        │   └── Basic4MalformedError               basic4_malformed
        │       └── BirthdateEraMismatchError      basic4_era_mismatch
        ├── CertificateUntrustedError              certificate_untrusted
        │   └── CertificateWrongPurposeError       certificate_wrong_purpose
        ├── CertificateWeakAlgorithmError          certificate_weak_algorithm
        ├── CertificateExpiredError                certificate_expired
        ├── CertificateNotYetValidError            certificate_not_yet_valid
        ├── CertificateUnknownCriticalExtensionError certificate_unknown_critical_extension
        ├── CertificateWrongKeyUsageError          certificate_wrong_key_usage
        ├── CertificateWrongPolicyError            certificate_wrong_policy
        ├── CertificateRevokedError                certificate_revoked
        ├── RevocationUnknownError                 revocation_unknown
        ├── RevocationUnavailableError             revocation_unavailable
        │   ├── RevocationStaleError               revocation_stale
        │   └── OcspResponseInvalidError           ocsp_response_invalid
        ├── RevocationDataInvalidError             revocation_data_invalid
        ├── AlgorithmUnsupportedError              algorithm_unsupported
        └── SignatureInvalidError                  signature_invalid

``RevocationUnavailableError`` and its subclasses are the only failures that
``TrustConfig(revocation_required=False)`` lets through (recorded as ``unchecked``).
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from idp.card.errors import CardError

__all__ = [
    "PARSE_ERRORS",
    "AlgorithmUnsupportedError",
    "Basic4MalformedError",
    "Basic4MissingError",
    "BirthdateEraMismatchError",
    "CertificateExpiredError",
    "CertificateKeyUnsupportedError",
    "CertificateMalformedError",
    "CertificateNotYetValidError",
    "CertificateRevokedError",
    "CertificateUnknownCriticalExtensionError",
    "CertificateUntrustedError",
    "CertificateValidationError",
    "CertificateWeakAlgorithmError",
    "CertificateWrongKeyUsageError",
    "CertificateWrongPolicyError",
    "CertificateWrongPurposeError",
    "OcspResponseInvalidError",
    "RevocationDataInvalidError",
    "RevocationStaleError",
    "RevocationUnavailableError",
    "RevocationUnknownError",
    "SignatureInvalidError",
]

PARSE_ERRORS: Final = (
    ValueError,
    TypeError,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    x509.InvalidVersion,
    UnsupportedAlgorithm,
    UserWarning,
)
"""What ``cryptography`` raises while lazily parsing a hostile certificate's parts: ValueError
for bad DER, TypeError from ``x509.Name`` for odd attribute types, UnsupportedAlgorithm for
unknown algorithm OIDs, InvalidVersion, and its warnings (a non-positive serial, a
two-letter attribute of another length; ``CryptographyDeprecationWarning`` is a UserWarning)
when warnings are turned into errors."""


class CertificateValidationError(CardError):
    """A certificate (or what was signed with its key) is not acceptable."""

    code: ClassVar[str] = "certificate_invalid"
    default_message: ClassVar[str] = "certificate is not acceptable"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)


class CertificateMalformedError(CertificateValidationError):
    """Not a parseable X.509 certificate, or too large to be one from a card."""

    code = "certificate_malformed"
    default_message = "certificate is malformed"


class CertificateKeyUnsupportedError(CertificateMalformedError):
    """The public key is not RSA of at least 2048 bits."""

    code = "certificate_key_unsupported"
    default_message = "certificate key type or size is not supported"


class Basic4MissingError(CertificateMalformedError):
    """The signature certificate holds no (complete) basic-4 otherName entries."""

    code = "basic4_missing"
    default_message = "certificate does not carry the basic 4 items"

    def __init__(self, message: str | None = None, *, missing: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.missing = missing


class Basic4MalformedError(CertificateMalformedError):
    """A basic-4 entry is duplicated, of the wrong type, not UTF-8 or out of range."""

    code = "basic4_malformed"
    default_message = "certificate basic 4 items are malformed"

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class BirthdateEraMismatchError(Basic4MalformedError):
    """The birthdate's era code does not match its Gregorian date."""

    code = "basic4_era_mismatch"
    default_message = "birthdate era code does not match the date"


class CertificateUntrustedError(CertificateValidationError):
    """No configured trust anchor for the purpose signed the certificate."""

    code = "certificate_untrusted"
    default_message = "certificate is not issued by a trusted JPKI CA"


class CertificateWrongPurposeError(CertificateUntrustedError):
    """Issued by the other JPKI CA: a signature certificate where an auth one is needed, or back."""

    code = "certificate_wrong_purpose"
    default_message = "certificate is for the other JPKI purpose"


class CertificateWeakAlgorithmError(CertificateValidationError):
    """Signed with a hash or algorithm that is no longer accepted (SHA-1, MD5, ...)."""

    code = "certificate_weak_algorithm"
    default_message = "certificate signature algorithm is not accepted"


class CertificateExpiredError(CertificateValidationError):
    code = "certificate_expired"
    default_message = "certificate has expired"

    def __init__(self, message: str | None = None, *, not_after: datetime | None = None) -> None:
        super().__init__(message)
        self.not_after = not_after


class CertificateNotYetValidError(CertificateValidationError):
    code = "certificate_not_yet_valid"
    default_message = "certificate is not yet valid"

    def __init__(self, message: str | None = None, *, not_before: datetime | None = None) -> None:
        super().__init__(message)
        self.not_before = not_before


class CertificateUnknownCriticalExtensionError(CertificateValidationError):
    """A critical extension this validator does not understand (RFC 5280 §4.2)."""

    code = "certificate_unknown_critical_extension"
    default_message = "certificate has an unsupported critical extension"

    def __init__(self, message: str | None = None, *, oid: str | None = None) -> None:
        super().__init__(message)
        self.oid = oid


class CertificateWrongKeyUsageError(CertificateValidationError):
    code = "certificate_wrong_key_usage"
    default_message = "certificate key usage does not allow this use"


class CertificateWrongPolicyError(CertificateValidationError):
    code = "certificate_wrong_policy"
    default_message = "certificate policy is not the one required for this use"


class CertificateRevokedError(CertificateValidationError):
    code = "certificate_revoked"
    default_message = "certificate has been revoked"

    def __init__(
        self,
        message: str | None = None,
        *,
        revoked_at: datetime | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.revoked_at = revoked_at
        self.reason = reason


class RevocationUnknownError(CertificateValidationError):
    """The revocation source does not know the certificate (OCSP ``unknown``)."""

    code = "revocation_unknown"
    default_message = "revocation status of the certificate is unknown"


class RevocationUnavailableError(CertificateValidationError):
    """No usable revocation answer: unreachable, timed out, no data for the issuer."""

    code = "revocation_unavailable"
    default_message = "revocation status could not be obtained"


class RevocationStaleError(RevocationUnavailableError):
    """The revocation data is too old (or dated in the future): CRL or OCSP freshness."""

    code = "revocation_stale"
    default_message = "revocation data is not fresh"


class OcspResponseInvalidError(RevocationUnavailableError):
    """An OCSP answer that cannot be relied on (garbage, bad signature, nonce, cert id)."""

    code = "ocsp_response_invalid"
    default_message = "OCSP response is not acceptable"


class RevocationDataInvalidError(CertificateValidationError):
    """A CRL handed to the checker is unsigned by any known issuer or unusable (load time)."""

    code = "revocation_data_invalid"
    default_message = "revocation list is not acceptable"


class AlgorithmUnsupportedError(CertificateValidationError):
    code = "algorithm_unsupported"
    default_message = "signature algorithm is not supported"


class SignatureInvalidError(CertificateValidationError):
    code = "signature_invalid"
    default_message = "signature does not verify"
