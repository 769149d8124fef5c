"""Residents (verified basic-4 information) and the card certificates linked to them.

There is never a My Number column. A resident's ``id`` is a random UUID that identifies them
only inside this provider; relying parties see a pairwise ``sub`` derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.storage.base import Base, UtcDateTime, db, new_id, utcnow

__all__ = [
    "ERASED",
    "Basic4Record",
    "CardCredential",
    "CertificateFacts",
    "Resident",
    "enroll_resident",
    "find_resident_by_auth_certificate",
    "find_residents_by_identity",
    "get_resident",
    "is_erased",
    "link_card",
    "mark_credential_used",
]


class Resident(Base):
    """A resident and their verified basic-4 items (from a JPKI signature certificate)."""

    __tablename__ = "residents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(Text)
    address: Mapped[str] = mapped_column(Text)
    birthdate: Mapped[date] = mapped_column(Date)
    gender: Mapped[str] = mapped_column(String(16))
    sex_code: Mapped[str] = mapped_column(String(1))
    name_substitution: Mapped[str] = mapped_column(Text, default="0")
    address_substitution: Mapped[str] = mapped_column(Text, default="0")
    verified_at: Mapped[datetime] = mapped_column(UtcDateTime)
    #: How the items were verified: issuer DN, serial (hex), policy OID, certificate SHA-256.
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    credentials: Mapped[list[CardCredential]] = relationship(
        back_populates="resident", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<Resident {self.id}>"


class CardCredential(Base):
    """A card certificate linked to a resident, found by the SHA-256 of its DER."""

    __tablename__ = "card_credentials"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    cert_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    resident_id: Mapped[str] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    issuer: Mapped[str] = mapped_column(Text)
    serial_hex: Mapped[str] = mapped_column(String(64))
    not_after: Mapped[datetime] = mapped_column(UtcDateTime)
    kind: Mapped[str] = mapped_column(String(8))  # "auth" | "sign"
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    resident: Mapped[Resident] = relationship(back_populates="credentials")


@dataclass(frozen=True)
class CertificateFacts:
    """What is stored about a card certificate (no subject, no My Number)."""

    sha256_hex: str
    issuer: str
    serial_hex: str
    not_after: datetime
    policy_oid: str


@dataclass(frozen=True)
class Basic4Record:
    """Verified basic-4 items to store (the card layer's ``Basic4`` maps onto this)."""

    name: str
    address: str
    birthdate: date
    gender: str
    sex_code: str
    name_substitution: str = "0"
    address_substitution: str = "0"


#: ``evidence["type"]`` of an account its resident deleted: the row stays, emptied of every
#: personal value, so that the hash-chained release log keeps its references (see
#: docs/portal.md); every lookup treats it as gone.
ERASED = "erased"


def is_erased(resident: Resident) -> bool:
    """Whether the resident deleted their account (only the opaque id is left)."""
    return isinstance(resident.evidence, dict) and resident.evidence.get("type") == ERASED


def get_resident(resident_id: str) -> Resident | None:
    """The resident with ``resident_id``, or None (also for a deleted account)."""
    resident = db.session.get(Resident, resident_id)
    return None if resident is None or is_erased(resident) else resident


def find_resident_by_auth_certificate(cert_sha256: str) -> Resident | None:
    """The resident linked to the authentication certificate with this SHA-256 (hex)."""
    query = (
        select(Resident)
        .join(CardCredential)
        .where(CardCredential.cert_sha256 == cert_sha256.lower(), CardCredential.kind == "auth")
    )
    return db.session.scalars(query).first()


def find_residents_by_identity(*, name: str, birthdate: date, gender: str) -> list[Resident]:
    """Residents whose name, birthdate and gender match (card renewal re-linking)."""
    query = select(Resident).where(
        Resident.name == name, Resident.birthdate == birthdate, Resident.gender == gender
    )
    return list(db.session.scalars(query))


def enroll_resident(
    *,
    basic4: Basic4Record,
    auth_certificate: CertificateFacts,
    sign_certificate: CertificateFacts,
    verified_at: datetime,
    resident_id: str | None = None,
) -> Resident:
    """Create (or refresh, if ``resident_id`` is given) a resident and link both certificates.

    One transaction: the basic-4 items, their evidence and the card links are stored together.
    """
    resident = get_resident(resident_id) if resident_id else None
    if resident_id and resident is None:
        raise LookupError(f"no resident {resident_id}")
    if resident is None:
        resident = Resident()
        db.session.add(resident)
    resident.name = basic4.name
    resident.address = basic4.address
    resident.birthdate = basic4.birthdate
    resident.gender = basic4.gender
    resident.sex_code = basic4.sex_code
    resident.name_substitution = basic4.name_substitution
    resident.address_substitution = basic4.address_substitution
    resident.verified_at = verified_at
    resident.evidence = {
        "type": "jpki_signature_certificate",
        "issuer": sign_certificate.issuer,
        "serial_hex": sign_certificate.serial_hex,
        "policy_oid": sign_certificate.policy_oid,
        "cert_sha256": sign_certificate.sha256_hex,
        "verified_at": verified_at.isoformat(),
    }
    db.session.flush()
    _link(resident, auth_certificate, "auth")
    _link(resident, sign_certificate, "sign")
    db.session.commit()
    return resident


def link_card(resident_id: str, certificate: CertificateFacts, kind: str) -> CardCredential:
    """Link one more certificate (``kind`` "auth" or "sign") to a resident; commit."""
    resident = db.session.get(Resident, resident_id)
    if resident is None:
        raise LookupError(f"no resident {resident_id}")
    credential = _link(resident, certificate, kind)
    db.session.commit()
    return credential


def mark_credential_used(cert_sha256: str, *, at: datetime | None = None) -> None:
    """Record that the certificate was just used to log in; commit."""
    credential = db.session.scalars(
        select(CardCredential).where(CardCredential.cert_sha256 == cert_sha256.lower())
    ).first()
    if credential is not None:
        credential.last_used_at = at or utcnow()
        db.session.commit()


def _link(resident: Resident, certificate: CertificateFacts, kind: str) -> CardCredential:
    if kind not in ("auth", "sign"):
        raise ValueError(f"kind must be 'auth' or 'sign', not {kind!r}")
    fingerprint = certificate.sha256_hex.lower()
    credential = db.session.scalars(
        select(CardCredential).where(CardCredential.cert_sha256 == fingerprint)
    ).first()
    if credential is None:
        credential = CardCredential(cert_sha256=fingerprint)
        db.session.add(credential)
    credential.resident_id = resident.id
    credential.issuer = certificate.issuer
    credential.serial_hex = certificate.serial_hex
    credential.not_after = certificate.not_after
    credential.kind = kind
    db.session.flush()
    return credential
