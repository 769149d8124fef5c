"""``CrlRevocationChecker``: revocation by CRLs loaded once, looked up in O(1).

Loading a CRL (``load``, or ``crls=`` at construction):

- parses it (DER or PEM) and finds its issuer among the configured CA certificates by
  signature (several CA generations share one DN), which must allow cRLSign;
- refuses CRLs without nextUpdate, dated in the future, already past nextUpdate, or with a
  critical CRL extension (delta CRLs and partitioned CRLs with an issuingDistributionPoint are not
  supported: treating a partition as the whole list would let revoked certificates through);
- keeps the revoked serial numbers in a ``frozenset`` (about 82 MB of RSS per 10^6 serials,
  see docs/validation.md) and the parsed CRL itself (which references the DER), for the date
  and reason of a hit (found by a scan, then cached);
- replaces the CRL held for that issuer only if it is at least as recent, by swapping one
  dict (safe to call from a background refresher thread while ``check`` runs).

``check`` raises ``RevocationUnavailableError`` when no CRL is held for the issuer,
``RevocationStaleError`` once the held CRL is stale (``staleness``: past its nextUpdate plus
``next_update_grace``, which defaults to the clock skew, or older than ``max_age`` counted from
its thisUpdate, when given), and ``CertificateRevokedError`` (with ``revoked_at`` and
``reason``) for a listed serial.

The checker does no I/O and reads no clock of its own beyond ``datetime.now`` as a default for
``load``: fetching and refreshing CRLs is the caller's business (``idp.revocation``).

Entry extensions are not inspected at load (10^6 entries); indirect CRLs are therefore not
supported either (every entry is taken to belong to the CRL's issuer).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtensionOID

from idp.card.validation.errors import (
    PARSE_ERRORS,
    CertificateRevokedError,
    RevocationDataInvalidError,
    RevocationStaleError,
    RevocationUnavailableError,
)

__all__ = ["MAX_CRL_BYTES", "CrlRevocationChecker", "CrlSummary", "key_id"]

MAX_CRL_BYTES: Final = 512 * 1024 * 1024
"""A 10^6-entry CRL with reasons is about 53 MB."""

_NON_CRITICAL_ONLY: Final = frozenset(
    {ExtensionOID.CRL_NUMBER, ExtensionOID.AUTHORITY_KEY_IDENTIFIER}
)
_UNSUPPORTED: Final = frozenset(
    {
        ExtensionOID.DELTA_CRL_INDICATOR,
        ExtensionOID.ISSUING_DISTRIBUTION_POINT,
        ExtensionOID.FRESHEST_CRL,
    }
)


@dataclass(frozen=True)
class CrlSummary:
    """What is held for one issuer (for logs and ``idp`` status commands)."""

    issuer: x509.Certificate
    this_update: datetime
    next_update: datetime
    revoked_count: int


_DETAILS_CACHE_SIZE: Final = 4096


@dataclass(frozen=True)
class _HeldCrl:
    summary: CrlSummary
    serials: frozenset[int]
    crl: x509.CertificateRevocationList
    details: dict[int, tuple[datetime | None, str | None]] = field(default_factory=dict)

    def revocation_details(self, serial: int) -> tuple[datetime | None, str | None]:
        """Date and reason of a listed serial. ``cryptography`` finds the entry by a linear
        scan (about 150 ms at 10^6 entries), so answers are kept in a small cache."""
        cached = self.details.get(serial)
        if cached is not None:
            return cached
        entry = self.crl.get_revoked_certificate_by_serial_number(serial)
        revoked_at: datetime | None = None
        reason: str | None = None
        if entry is not None:
            revoked_at = entry.revocation_date_utc
            try:
                reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
            except (x509.ExtensionNotFound, *PARSE_ERRORS):
                reason = None
        if len(self.details) >= _DETAILS_CACHE_SIZE:
            self.details.clear()
        self.details[serial] = (revoked_at, reason)
        return revoked_at, reason


def key_id(certificate: x509.Certificate) -> bytes:
    """SHA-256 of the certificate's SubjectPublicKeyInfo: tells CA generations apart."""
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).digest()


def _parse(crl: x509.CertificateRevocationList | bytes) -> x509.CertificateRevocationList:
    if isinstance(crl, x509.CertificateRevocationList):
        return crl
    if len(crl) > MAX_CRL_BYTES:
        raise RevocationDataInvalidError("CRL is too large")
    try:
        if crl.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(crl)
        return x509.load_der_x509_crl(crl)
    except PARSE_ERRORS as exc:
        raise RevocationDataInvalidError("CRL cannot be parsed") from exc


def _signed_by(
    crl: x509.CertificateRevocationList, issuers: Iterable[x509.Certificate]
) -> x509.Certificate | None:
    for issuer in issuers:
        try:
            if issuer.subject == crl.issuer and crl.is_signature_valid(
                issuer.public_key()  # type: ignore[arg-type]
            ):
                return issuer
        except (*PARSE_ERRORS, InvalidSignature):
            continue
    return None


def _check_extensions(crl: x509.CertificateRevocationList) -> None:
    try:
        extensions = list(crl.extensions)
    except PARSE_ERRORS as exc:
        raise RevocationDataInvalidError("CRL extensions cannot be parsed") from exc
    for extension in extensions:
        if extension.oid in _UNSUPPORTED:
            raise RevocationDataInvalidError("delta and partitioned CRLs are not supported")
        if extension.critical and extension.oid not in _NON_CRITICAL_ONLY:
            raise RevocationDataInvalidError("CRL has an unsupported critical extension")


def _may_sign_crls(issuer: x509.Certificate) -> bool:
    try:
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return usage.crl_sign


class CrlRevocationChecker:
    """Revocation by CRLs of the given issuers (see the module docstring)."""

    def __init__(
        self,
        *,
        issuers: Iterable[x509.Certificate],
        crls: Iterable[x509.CertificateRevocationList | bytes] = (),
        clock_skew: timedelta = timedelta(minutes=5),
        next_update_grace: timedelta | None = None,
        max_age: timedelta | None = None,
        now: datetime | None = None,
    ) -> None:
        if max_age is not None and max_age <= timedelta(0):
            raise ValueError("CRL max_age must be positive")
        self._issuers = tuple(issuers)
        self._clock_skew = clock_skew
        self._grace = clock_skew if next_update_grace is None else next_update_grace
        self._max_age = max_age
        self._held: Mapping[bytes, _HeldCrl] = {}
        for crl in crls:
            self.load(crl, now=now)

    @property
    def issuers(self) -> tuple[x509.Certificate, ...]:
        return self._issuers

    @property
    def summaries(self) -> tuple[CrlSummary, ...]:
        return tuple(held.summary for held in self._held.values())

    def summary_for(self, issuer: x509.Certificate) -> CrlSummary | None:
        """The CRL held for ``issuer`` (matched by key), if any."""
        held = self._held.get(key_id(issuer))
        return held.summary if held is not None else None

    def staleness(self, summary: CrlSummary, now: datetime) -> str | None:
        """Why the CRL of ``summary`` may not be used at ``now`` (fixed text), or None."""
        if now + self._clock_skew < summary.this_update:
            return "CRL thisUpdate is in the future"
        if now > summary.next_update + self._grace:
            return "CRL is past its nextUpdate"
        if self._max_age is not None and now - summary.this_update > self._max_age:
            return "CRL is older than the staleness limit"
        return None

    def load(
        self, crl: x509.CertificateRevocationList | bytes, *, now: datetime | None = None
    ) -> CrlSummary:
        """Verify and index ``crl``; return the summary of the CRL now held for its issuer."""
        now = now or datetime.now(UTC)
        parsed = _parse(crl)
        issuer = _signed_by(parsed, self._issuers)
        if issuer is None:
            raise RevocationDataInvalidError("CRL is not signed by a configured issuer")
        if not _may_sign_crls(issuer):
            raise RevocationDataInvalidError("CRL issuer's key usage does not allow cRLSign")
        _check_extensions(parsed)
        try:
            this_update = parsed.last_update_utc
            next_update = parsed.next_update_utc
        except PARSE_ERRORS as exc:
            raise RevocationDataInvalidError("CRL dates cannot be parsed") from exc
        if next_update is None:
            raise RevocationDataInvalidError("CRL has no nextUpdate")
        if this_update > now + self._clock_skew:
            raise RevocationDataInvalidError("CRL thisUpdate is in the future")
        if next_update + self._grace < now:
            raise RevocationDataInvalidError("CRL is past its nextUpdate")
        key = key_id(issuer)
        current = self._held.get(key)
        if current is not None and current.summary.this_update > this_update:
            return current.summary
        try:
            serials = frozenset(entry.serial_number for entry in parsed)
        except PARSE_ERRORS as exc:
            raise RevocationDataInvalidError("CRL entries cannot be parsed") from exc
        summary = CrlSummary(
            issuer=issuer,
            this_update=this_update,
            next_update=next_update,
            revoked_count=len(serials),
        )
        self._held = {**self._held, key: _HeldCrl(summary=summary, serials=serials, crl=parsed)}
        return summary

    def check(
        self, certificate: x509.Certificate, issuer: x509.Certificate, *, now: datetime
    ) -> None:
        held = self._held.get(key_id(issuer))
        if held is None:
            raise RevocationUnavailableError("no CRL is loaded for the certificate's issuer")
        stale = self.staleness(held.summary, now)
        if stale is not None:
            raise RevocationStaleError(stale)
        serial = certificate.serial_number
        if serial not in held.serials:
            return
        revoked_at, reason = held.revocation_details(serial)
        raise CertificateRevokedError(revoked_at=revoked_at, reason=reason)
