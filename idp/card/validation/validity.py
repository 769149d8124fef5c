"""Check ``validity``: ``now`` within notBefore..notAfter, widened by the clock skew."""

from __future__ import annotations

from idp.card.validation.context import Inspection
from idp.card.validation.errors import CertificateExpiredError, CertificateNotYetValidError

__all__ = ["check_validity"]


def check_validity(inspection: Inspection) -> None:
    certificate = inspection.certificate
    skew = inspection.trust.clock_skew
    not_before = certificate.not_valid_before_utc
    not_after = certificate.not_valid_after_utc
    if inspection.now + skew < not_before:
        raise CertificateNotYetValidError(not_before=not_before)
    if inspection.now - skew > not_after:
        raise CertificateExpiredError(not_after=not_after)
