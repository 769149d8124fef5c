"""Check ``chain``: the certificate is signed by a configured anchor for its purpose.

The issuer is found by signature, not by name: J-LIS keeps several CA generations alive under
one DN, so every anchor of the purpose is tried. A certificate signed by an anchor of the other
purpose gives ``CertificateWrongPurposeError`` (a signature certificate offered for login).
The anchor must itself be within its validity (with the clock skew).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.x509.oid import SignatureAlgorithmOID

from idp.card.validation.context import Inspection
from idp.card.validation.errors import (
    CertificateUntrustedError,
    CertificateWeakAlgorithmError,
    CertificateWrongPurposeError,
)

__all__ = ["ACCEPTED_SIGNATURE_ALGORITHMS", "check_issuer", "signed_by"]

ACCEPTED_SIGNATURE_ALGORITHMS: Final = frozenset(
    {
        SignatureAlgorithmOID.RSA_WITH_SHA256,
        SignatureAlgorithmOID.RSA_WITH_SHA384,
        SignatureAlgorithmOID.RSA_WITH_SHA512,
    }
)


def signed_by(
    certificate: x509.Certificate, candidates: Iterable[x509.Certificate]
) -> x509.Certificate | None:
    """The first candidate whose key verifies ``certificate`` (and whose subject is its issuer)."""
    for candidate in candidates:
        try:
            certificate.verify_directly_issued_by(candidate)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            continue
        return candidate
    return None


def check_issuer(inspection: Inspection) -> None:
    certificate = inspection.certificate
    if certificate.signature_algorithm_oid not in ACCEPTED_SIGNATURE_ALGORITHMS:
        raise CertificateWeakAlgorithmError()
    trust = inspection.trust
    issuer = signed_by(certificate, trust.anchors(inspection.purpose))
    if issuer is None:
        if signed_by(certificate, trust.other_anchors(inspection.purpose)) is not None:
            raise CertificateWrongPurposeError()
        raise CertificateUntrustedError()
    now, skew = inspection.now, trust.clock_skew
    if not issuer.not_valid_before_utc - skew <= now <= issuer.not_valid_after_utc + skew:
        raise CertificateUntrustedError("issuing CA is outside its validity period")
    inspection.issuer = issuer
