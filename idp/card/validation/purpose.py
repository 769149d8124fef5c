"""Checks ``critical_extensions``, ``key_usage`` and ``policy``: is this the right kind of cert.

- Every critical extension must be one this validator acts on (RFC 5280 §4.2).
- keyUsage must be present with digitalSignature (and nonRepudiation for a signature
  certificate), and must not allow certificate or CRL signing; basicConstraints must not say CA.
- certificatePolicies must hold a policy accepted for the purpose (``TrustConfig.policies``); for
  a signature certificate the extension must be critical, as J-LIS issues it.
"""

from __future__ import annotations

from typing import Final

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from idp.card.validation.context import Inspection
from idp.card.validation.errors import (
    CertificateUnknownCriticalExtensionError,
    CertificateWrongKeyUsageError,
    CertificateWrongPolicyError,
)
from idp.card.validation.trust import CertPurpose

__all__ = [
    "UNDERSTOOD_CRITICAL_EXTENSIONS",
    "check_critical_extensions",
    "check_key_usage",
    "check_policy",
]

UNDERSTOOD_CRITICAL_EXTENSIONS: Final = frozenset(
    {
        ExtensionOID.KEY_USAGE,
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.CERTIFICATE_POLICIES,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.ISSUER_ALTERNATIVE_NAME,
    }
)


def check_critical_extensions(inspection: Inspection) -> None:
    for extension in inspection.certificate.extensions:
        if extension.critical and extension.oid not in UNDERSTOOD_CRITICAL_EXTENSIONS:
            raise CertificateUnknownCriticalExtensionError(oid=extension.oid.dotted_string)


def check_key_usage(inspection: Inspection) -> None:
    extensions = inspection.certificate.extensions
    try:
        usage = extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise CertificateWrongKeyUsageError("certificate has no keyUsage") from exc
    if not usage.digital_signature:
        raise CertificateWrongKeyUsageError("keyUsage lacks digitalSignature")
    if inspection.purpose is CertPurpose.SIGNATURE and not usage.content_commitment:
        raise CertificateWrongKeyUsageError("keyUsage lacks nonRepudiation")
    if usage.key_cert_sign or usage.crl_sign:
        raise CertificateWrongKeyUsageError("keyUsage allows certificate or CRL signing")
    try:
        constraints = extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return
    if constraints.ca:
        raise CertificateWrongKeyUsageError("certificate is a CA certificate")


def check_policy(inspection: Inspection) -> None:
    trust = inspection.trust
    try:
        extension = inspection.certificate.extensions.get_extension_for_class(
            x509.CertificatePolicies
        )
    except x509.ExtensionNotFound as exc:
        raise CertificateWrongPolicyError("certificate has no certificatePolicies") from exc
    held = [policy.policy_identifier.dotted_string for policy in extension.value]
    accepted = trust.policies(inspection.purpose)
    chosen = next((oid for oid in held if oid in accepted), None)
    if chosen is None:
        if any(oid in trust.other_policies(inspection.purpose) for oid in held):
            raise CertificateWrongPolicyError("certificate policy is for the other JPKI purpose")
        raise CertificateWrongPolicyError()
    if inspection.purpose is CertPurpose.SIGNATURE and not extension.critical:
        raise CertificateWrongPolicyError("signature certificate policies are not critical")
    inspection.policy_oid = chosen
