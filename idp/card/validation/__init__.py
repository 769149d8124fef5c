"""Validation of JPKI certificates: small named checks run in one fixed order.

=====  =====================  ==========================================================
step   check                  refuses with
=====  =====================  ==========================================================
1      parse                  CertificateMalformedError, CertificateKeyUnsupportedError
2      chain                  CertificateWeakAlgorithmError, CertificateWrongPurposeError,
                              CertificateUntrustedError
3      validity               CertificateNotYetValidError, CertificateExpiredError
4      critical_extensions    CertificateUnknownCriticalExtensionError
5      key_usage              CertificateWrongKeyUsageError
6      policy                 CertificateWrongPolicyError
7      personal_data          Basic4MissingError, Basic4MalformedError,
                              BirthdateEraMismatchError (signature certificates only)
8      challenge_signature    AlgorithmUnsupportedError, CertificateWrongPurposeError,
                              SignatureInvalidError (only when a challenge is given)
9      revocation             CertificateRevokedError, RevocationUnknownError,
                              RevocationUnavailableError (and subclasses)
=====  =====================  ==========================================================

The table is ``CHECKS`` below; ``validate_certificate`` runs it in order and stops at the
first failure. Cheap, local checks come first; the challenge signature (when handed in) is
verified before revocation so that an unauthenticated request never causes an OCSP query.
See ``errors`` for the exception tree and codes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final

from idp.card.challenge import Challenge
from idp.card.validation import chain, parse, purpose, revocation, signature, validity
from idp.card.validation.context import (
    ChallengeSignature,
    Inspection,
    RevocationStatus,
    ValidatedCertificate,
)
from idp.card.validation.crl import CrlRevocationChecker
from idp.card.validation.errors import (
    AlgorithmUnsupportedError,
    Basic4MalformedError,
    Basic4MissingError,
    BirthdateEraMismatchError,
    CertificateExpiredError,
    CertificateKeyUnsupportedError,
    CertificateMalformedError,
    CertificateNotYetValidError,
    CertificateRevokedError,
    CertificateUnknownCriticalExtensionError,
    CertificateUntrustedError,
    CertificateValidationError,
    CertificateWeakAlgorithmError,
    CertificateWrongKeyUsageError,
    CertificateWrongPolicyError,
    CertificateWrongPurposeError,
    OcspResponseInvalidError,
    RevocationDataInvalidError,
    RevocationStaleError,
    RevocationUnavailableError,
    RevocationUnknownError,
    SignatureInvalidError,
)
from idp.card.validation.ocsp import OcspAnswer, OcspRevocationChecker
from idp.card.validation.revocation import ChainedRevocationChecker
from idp.card.validation.signature import verify_challenge_signature
from idp.card.validation.trust import CertPurpose, RevocationChecker, TrustConfig

__all__ = [
    "CHECKS",
    "AlgorithmUnsupportedError",
    "Basic4MalformedError",
    "Basic4MissingError",
    "BirthdateEraMismatchError",
    "CertPurpose",
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
    "ChainedRevocationChecker",
    "Check",
    "CrlRevocationChecker",
    "OcspAnswer",
    "OcspResponseInvalidError",
    "OcspRevocationChecker",
    "RevocationChecker",
    "RevocationDataInvalidError",
    "RevocationStaleError",
    "RevocationStatus",
    "RevocationUnavailableError",
    "RevocationUnknownError",
    "SignatureInvalidError",
    "TrustConfig",
    "ValidatedCertificate",
    "validate_certificate",
    "verify_challenge_signature",
]

Check = Callable[[Inspection], None]

CHECKS: Final[tuple[tuple[str, Check], ...]] = (
    ("parse", parse.parse_certificate),
    ("chain", chain.check_issuer),
    ("validity", validity.check_validity),
    ("critical_extensions", purpose.check_critical_extensions),
    ("key_usage", purpose.check_key_usage),
    ("policy", purpose.check_policy),
    ("personal_data", parse.parse_personal_data),
    ("challenge_signature", signature.check_challenge_signature),
    ("revocation", revocation.check_revocation),
)


def validate_certificate(
    certificate_der: bytes,
    *,
    purpose: CertPurpose,
    trust: TrustConfig,
    now: datetime,
    challenge: Challenge | None = None,
    algorithm: str | None = None,
    signature: bytes | None = None,
) -> ValidatedCertificate:
    """Run ``CHECKS`` on a DER certificate; raise the first ``CertificateValidationError``.

    Pass ``challenge``, ``algorithm`` and ``signature`` together to have the card's signature
    verified as step 8 (before any revocation query); otherwise call
    ``verify_challenge_signature`` on the result.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    proof: ChallengeSignature | None = None
    if challenge is not None or algorithm is not None or signature is not None:
        if challenge is None or algorithm is None or signature is None:
            raise ValueError("challenge, algorithm and signature go together")
        proof = ChallengeSignature(challenge=challenge, algorithm=algorithm, signature=signature)
    inspection = Inspection(
        certificate_der=certificate_der, purpose=purpose, trust=trust, now=now, proof=proof
    )
    for _name, check in CHECKS:
        check(inspection)
    return inspection.result()
