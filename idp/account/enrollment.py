"""Which resident a card belongs to: login by a known card, enrollment, refresh and renewal.

- **Login** (:func:`resident_for_card`): the SHA-256 of the authentication certificate names a
  linked :class:`~idp.storage.residents.CardCredential`; that resident logs in with PIN1 only,
  unless their verified record is older than ``IDP_ENROLLMENT_MAX_AGE_DAYS`` (``stale_record``)
  or the card is unknown (``unknown_card``): then the card must also sign with its signature key.
- **Enrollment** (:func:`enroll_card`, flow D): the signature certificate's basic-4 items are
  stored with the verification time and evidence (issuer, serial, policy, certificate SHA-256)
  and both certificates are linked to the resident.
- **Refresh**: a known card with a stale record updates the same resident.
- **Renewal** (flow F): an unknown card whose signature certificate carries the name, birthdate
  and gender of exactly one stored resident is linked to that resident (the address may have
  changed and is updated), so the pairwise ``sub`` every relying party knows stays the same.
  When several residents match, the one whose address also matches is taken; when that still
  leaves more than one (or none), a new resident is created rather than guessing.

Nothing here sees a PIN or a My Number; only certificate facts and basic-4 items.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from idp.card.validation import CertPurpose, ValidatedCertificate
from idp.storage.residents import (
    Basic4Record,
    CertificateFacts,
    Resident,
    enroll_resident,
    find_resident_by_auth_certificate,
    find_residents_by_identity,
    mark_credential_used,
)

__all__ = [
    "CardLookup",
    "Enrollment",
    "EnrollmentError",
    "certificate_facts",
    "certificate_sha256",
    "enroll_card",
    "resident_for_card",
]

LookupReason = Literal["known", "unknown_card", "stale_record"]
EnrollmentKind = Literal["enrolled", "refreshed", "renewed"]


class EnrollmentError(Exception):
    """The certificates handed in cannot enroll a resident (``code`` for the device API)."""

    code = "enrollment_invalid"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


@dataclass(frozen=True)
class CardLookup:
    """The outcome of looking up an authentication certificate."""

    reason: LookupReason
    resident_id: str | None

    @property
    def needs_enrollment(self) -> bool:
        return self.reason != "known"


@dataclass(frozen=True)
class Enrollment:
    """The resident a card was enrolled to, and how."""

    resident_id: str
    kind: EnrollmentKind


def certificate_sha256(certificate: x509.Certificate) -> str:
    """Lower-case hex SHA-256 of the certificate's DER."""
    return hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()


def certificate_facts(validated: ValidatedCertificate) -> CertificateFacts:
    """What is stored about a validated card certificate (never its subject)."""
    return CertificateFacts(
        sha256_hex=certificate_sha256(validated.certificate),
        issuer=validated.issuer.subject.rfc4514_string(),
        serial_hex=f"{validated.serial_number:x}",
        not_after=validated.not_after,
        policy_oid=validated.policy_oid,
    )


def resident_for_card(
    auth: ValidatedCertificate, *, now: datetime, max_age: timedelta
) -> CardLookup:
    """Look up the resident linked to a validated authentication certificate."""
    if auth.purpose is not CertPurpose.AUTHENTICATION:
        raise ValueError("resident_for_card needs an authentication certificate")
    resident = find_resident_by_auth_certificate(certificate_sha256(auth.certificate))
    if resident is None:
        return CardLookup("unknown_card", None)
    # The portal's "read my card again" marks the record (idp.account.portal_actions).
    if resident.verified_at < now - max_age or resident.evidence.get("refresh_requested"):
        return CardLookup("stale_record", resident.id)
    return CardLookup("known", resident.id)


def record_login(auth: ValidatedCertificate, *, now: datetime) -> None:
    """Note that the card's authentication certificate was just used."""
    mark_credential_used(certificate_sha256(auth.certificate), at=now)


def enroll_card(
    auth: ValidatedCertificate,
    sign: ValidatedCertificate,
    *,
    now: datetime,
    known_resident_id: str | None,
) -> Enrollment:
    """Store the signature certificate's basic-4 items and link both certificates.

    ``known_resident_id`` is the resident the authentication certificate is already linked to
    (a stale record being refreshed), or None for an unknown card.
    """
    if auth.purpose is not CertPurpose.AUTHENTICATION or sign.purpose is not CertPurpose.SIGNATURE:
        raise ValueError("enroll_card needs the authentication and the signature certificate")
    basic4 = sign.basic4
    if basic4 is None:
        raise EnrollmentError(
            "the signature certificate carries no basic 4 items", code="basic4_missing"
        )
    record = Basic4Record(
        name=basic4.name,
        address=basic4.address,
        birthdate=basic4.birthdate,
        gender=basic4.gender,
        sex_code=basic4.sex_code,
        name_substitution=basic4.name_substitution,
        address_substitution=basic4.address_substitution,
    )
    kind: EnrollmentKind
    if known_resident_id is not None:
        target: str | None = known_resident_id
        kind = "refreshed"
    else:
        match = _renewal_match(record)
        target = match.id if match is not None else None
        kind = "renewed" if match is not None else "enrolled"
    try:
        resident = enroll_resident(
            basic4=record,
            auth_certificate=certificate_facts(auth),
            sign_certificate=certificate_facts(sign),
            verified_at=now,
            resident_id=target,
        )
    except LookupError as exc:  # the account was deleted while this login ran
        raise EnrollmentError("the account was deleted", code="account_deleted") from exc
    mark_credential_used(certificate_sha256(auth.certificate), at=now)
    return Enrollment(resident_id=resident.id, kind=kind)


def _renewal_match(record: Basic4Record) -> Resident | None:
    candidates = find_residents_by_identity(
        name=record.name, birthdate=record.birthdate, gender=record.gender
    )
    if len(candidates) == 1:
        return candidates[0]
    same_address = [c for c in candidates if c.address == record.address]
    if len(same_address) == 1:
        return same_address[0]
    return None
