"""Check ``challenge_signature``: the card's RS256 signature over the challenge.

The card signs ``Challenge.to_be_signed()`` with RSASSA-PKCS1-v1_5 and SHA-256 (``RS256``);
no other algorithm is accepted. The challenge's purpose must fit the certificate: ``login``
needs the authentication certificate, ``sign`` the signature certificate, ``enroll`` either.
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from idp.card.challenge import ALGORITHM, Challenge
from idp.card.validation.context import Inspection, ValidatedCertificate
from idp.card.validation.errors import (
    AlgorithmUnsupportedError,
    CertificateWrongPurposeError,
    SignatureInvalidError,
)
from idp.card.validation.trust import CertPurpose

__all__ = ["PURPOSES_BY_CHALLENGE", "check_challenge_signature", "verify_challenge_signature"]

PURPOSES_BY_CHALLENGE: Final = {
    "login": frozenset({CertPurpose.AUTHENTICATION}),
    "enroll": frozenset({CertPurpose.AUTHENTICATION, CertPurpose.SIGNATURE}),
    "sign": frozenset({CertPurpose.SIGNATURE}),
}


def _verify(
    key: object, purpose: CertPurpose, *, challenge: Challenge, algorithm: str, signature: bytes
) -> None:
    if algorithm != ALGORITHM:
        raise AlgorithmUnsupportedError()
    if purpose not in PURPOSES_BY_CHALLENGE.get(challenge.purpose, frozenset()):
        raise CertificateWrongPurposeError("certificate does not fit the challenge purpose")
    if not isinstance(key, rsa.RSAPublicKey):
        raise AlgorithmUnsupportedError("certificate key is not RSA")
    if len(signature) != (key.key_size + 7) // 8:
        raise SignatureInvalidError("signature length does not match the key")
    try:
        key.verify(signature, challenge.to_be_signed(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise SignatureInvalidError() from exc


def verify_challenge_signature(
    validated: ValidatedCertificate, *, challenge: Challenge, algorithm: str, signature: bytes
) -> None:
    """Raise unless ``signature`` is the certificate holder's RS256 signature over ``challenge``."""
    _verify(
        validated.certificate.public_key(),
        validated.purpose,
        challenge=challenge,
        algorithm=algorithm,
        signature=signature,
    )


def check_challenge_signature(inspection: Inspection) -> None:
    """The pipeline step: only when a challenge signature was handed to the validator."""
    proof = inspection.proof
    if proof is None:
        return
    _verify(
        inspection.certificate.public_key(),
        inspection.purpose,
        challenge=proof.challenge,
        algorithm=proof.algorithm,
        signature=proof.signature,
    )
