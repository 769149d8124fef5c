"""What the validator trusts: anchors per purpose, clock skew, accepted policies, revocation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Protocol

from cryptography import x509

from idp.card import oids

__all__ = ["CertPurpose", "RevocationChecker", "TrustConfig"]


class CertPurpose(Enum):
    """Which JPKI certificate: 利用者証明用 (authentication) or 署名用 (signature)."""

    AUTHENTICATION = "authentication"
    SIGNATURE = "signature"


class RevocationChecker(Protocol):
    """A revocation source. ``check`` returns if the certificate is good and raises otherwise:
    ``CertificateRevokedError``, ``RevocationUnknownError``, or ``RevocationUnavailableError``
    (or a subclass) when it has no usable answer."""

    def check(
        self, certificate: x509.Certificate, issuer: x509.Certificate, *, now: datetime
    ) -> None: ...


@dataclass(frozen=True)
class TrustConfig:
    """Trust anchors per purpose (every live CA generation; they share one DN) and policy.

    ``revocation_required=True`` (the default) fails closed whenever revocation cannot be
    decided: no checker configured (``revocation=None``) or a checker without an answer.
    ``False`` lets the certificate through, recorded as ``revocation_status="not_configured"``
    (no checker) or ``"unchecked"`` (no answer).
    """

    auth_anchors: tuple[x509.Certificate, ...]
    sign_anchors: tuple[x509.Certificate, ...]
    clock_skew: timedelta = timedelta(minutes=5)
    revocation: RevocationChecker | None = None
    revocation_required: bool = True
    auth_policies: frozenset[str] = field(default_factory=lambda: frozenset({oids.AUTH_POLICY}))
    sign_policies: frozenset[str] = field(default_factory=lambda: frozenset({oids.SIGN_POLICY}))

    def anchors(self, purpose: CertPurpose) -> tuple[x509.Certificate, ...]:
        return self.auth_anchors if purpose is CertPurpose.AUTHENTICATION else self.sign_anchors

    def other_anchors(self, purpose: CertPurpose) -> tuple[x509.Certificate, ...]:
        return self.sign_anchors if purpose is CertPurpose.AUTHENTICATION else self.auth_anchors

    def policies(self, purpose: CertPurpose) -> frozenset[str]:
        return self.auth_policies if purpose is CertPurpose.AUTHENTICATION else self.sign_policies

    def other_policies(self, purpose: CertPurpose) -> frozenset[str]:
        return self.sign_policies if purpose is CertPurpose.AUTHENTICATION else self.auth_policies
