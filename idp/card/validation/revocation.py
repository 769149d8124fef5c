"""Check ``revocation`` and the policy around it; ``ChainedRevocationChecker``.

- No checker configured: fails closed with ``RevocationUnavailableError`` when
  ``revocation_required`` (the default); otherwise recorded as ``not_configured`` (real JPKI
  revocation data is given only to verifiers registered with J-LIS or through a platform
  operator, so a deployment without it must say so explicitly).
- ``CertificateRevokedError`` and ``RevocationUnknownError`` always fail.
- ``RevocationUnavailableError`` (unreachable, timed out, stale, unusable answer) fails when
  ``revocation_required`` (the default); otherwise the certificate passes as ``unchecked``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509

from idp.card.validation.context import Inspection
from idp.card.validation.errors import RevocationUnavailableError
from idp.card.validation.trust import RevocationChecker

__all__ = ["ChainedRevocationChecker", "check_revocation"]


def check_revocation(inspection: Inspection) -> None:
    checker = inspection.trust.revocation
    if checker is None:
        if inspection.trust.revocation_required:
            raise RevocationUnavailableError("no revocation source is configured")
        inspection.revocation_status = "not_configured"
        return
    try:
        checker.check(inspection.certificate, inspection.issuer_certificate, now=inspection.now)
    except RevocationUnavailableError:
        if inspection.trust.revocation_required:
            raise
        inspection.revocation_status = "unchecked"
        return
    inspection.revocation_status = "good"


class ChainedRevocationChecker:
    """Asks each checker in turn (e.g. OCSP, then CRL) until one gives a definite answer.

    Good, revoked and unknown are definite. When every checker is unavailable, the last
    ``RevocationUnavailableError`` is raised.
    """

    def __init__(self, checkers: Sequence[RevocationChecker]) -> None:
        if not checkers:
            raise ValueError("ChainedRevocationChecker needs at least one checker")
        self._checkers = tuple(checkers)

    def check(
        self, certificate: x509.Certificate, issuer: x509.Certificate, *, now: datetime
    ) -> None:
        last: RevocationUnavailableError | None = None
        for checker in self._checkers:
            try:
                checker.check(certificate, issuer, now=now)
            except RevocationUnavailableError as exc:
                last = exc
                continue
            return
        raise last or RevocationUnavailableError()
