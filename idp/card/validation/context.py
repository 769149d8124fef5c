"""The state one validation run carries from check to check, and what it returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from cryptography import x509

from idp.card.validation.trust import CertPurpose, TrustConfig

if TYPE_CHECKING:  # idp.card.certs imports the errors of this package
    from idp.card.certs import Basic4
    from idp.card.challenge import Challenge

__all__ = ["ChallengeSignature", "Inspection", "RevocationStatus", "ValidatedCertificate"]

RevocationStatus = Literal["good", "unchecked", "not_configured"]
"""``good``: a revocation source said so. ``unchecked``: the source had no answer and
``revocation_required`` is off. ``not_configured``: no revocation source at all."""


@dataclass(frozen=True)
class ValidatedCertificate:
    """A certificate that passed every check for ``purpose``."""

    certificate: x509.Certificate
    issuer: x509.Certificate
    purpose: CertPurpose
    serial_number: int
    policy_oid: str
    not_after: datetime
    basic4: Basic4 | None = None
    revocation_status: RevocationStatus = "good"


@dataclass(frozen=True)
class ChallengeSignature:
    """A challenge and the card's signature over it, checked before revocation when given."""

    challenge: Challenge
    algorithm: str
    signature: bytes


@dataclass
class Inspection:
    """Mutable working state: each check reads what earlier ones set and adds its own part."""

    certificate_der: bytes
    purpose: CertPurpose
    trust: TrustConfig
    now: datetime
    proof: ChallengeSignature | None = None
    parsed: x509.Certificate | None = None
    issuer: x509.Certificate | None = None
    policy_oid: str | None = None
    basic4: Basic4 | None = None
    revocation_status: RevocationStatus | None = None

    @property
    def certificate(self) -> x509.Certificate:
        if self.parsed is None:
            raise RuntimeError("validation checks ran out of order: certificate not parsed")
        return self.parsed

    @property
    def issuer_certificate(self) -> x509.Certificate:
        if self.issuer is None:
            raise RuntimeError("validation checks ran out of order: issuer not resolved")
        return self.issuer

    def result(self) -> ValidatedCertificate:
        if self.policy_oid is None or self.revocation_status is None:
            raise RuntimeError("validation checks ran out of order: result is incomplete")
        certificate = self.certificate
        return ValidatedCertificate(
            certificate=certificate,
            issuer=self.issuer_certificate,
            purpose=self.purpose,
            serial_number=certificate.serial_number,
            policy_oid=self.policy_oid,
            not_after=certificate.not_valid_after_utc,
            basic4=self.basic4,
            revocation_status=self.revocation_status,
        )
