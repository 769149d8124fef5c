"""Checks ``parse`` and ``personal_data``: DER to a certificate we can work with, basic 4."""

from __future__ import annotations

from typing import Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa

from idp.card import certs
from idp.card.validation.context import Inspection
from idp.card.validation.errors import (
    PARSE_ERRORS,
    CertificateKeyUnsupportedError,
    CertificateMalformedError,
)
from idp.card.validation.trust import CertPurpose

__all__ = ["MAX_CERTIFICATE_BYTES", "MIN_RSA_BITS", "parse_certificate", "parse_personal_data"]

MAX_CERTIFICATE_BYTES: Final = 16 * 1024
"""A JPKI certificate is about 1.5 KB; anything past this is refused unparsed."""

MIN_RSA_BITS: Final = 2048
MAX_RSA_BITS: Final = 8192


def parse_certificate(inspection: Inspection) -> None:
    der = inspection.certificate_der
    if not der or len(der) > MAX_CERTIFICATE_BYTES:
        raise CertificateMalformedError("certificate is empty or too large")
    try:
        certificate = x509.load_der_x509_certificate(der)
        # Parse everything lazily parsed now, so later checks meet only a well-formed object.
        if certificate.version is not x509.Version.v3:
            raise CertificateMalformedError("certificate is not X.509 v3")
        certificate.extensions  # noqa: B018
        certificate.not_valid_before_utc  # noqa: B018
        certificate.not_valid_after_utc  # noqa: B018
        certificate.subject  # noqa: B018
        certificate.issuer  # noqa: B018
        serial = certificate.serial_number
    except PARSE_ERRORS as exc:
        raise CertificateMalformedError() from exc
    if serial <= 0:
        raise CertificateMalformedError("certificate serial number is not positive")
    try:
        key = certificate.public_key()
    except (*PARSE_ERRORS, UnsupportedAlgorithm) as exc:
        raise CertificateKeyUnsupportedError() from exc
    if not isinstance(key, rsa.RSAPublicKey) or not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
        raise CertificateKeyUnsupportedError()
    inspection.parsed = certificate


def parse_personal_data(inspection: Inspection) -> None:
    """The basic 4 items, for a signature certificate only (the auth one carries none)."""
    if inspection.purpose is CertPurpose.SIGNATURE:
        inspection.basic4 = certs.parse_basic4(inspection.certificate)
