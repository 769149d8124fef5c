"""Consent: which items a resident agreed to release to which relying party."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from idp.storage.base import Base, UtcDateTime, db, utcnow

__all__ = ["Consent", "get_consent", "list_consents", "put_consent", "revoke_consent"]


class Consent(Base):
    """The current consent of one resident for one client (one row per pair)."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("resident_id", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    resident_id: Mapped[str] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"), index=True
    )
    scopes: Mapped[list[str]] = mapped_column(JSON)
    granted_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _row(resident_id: str, client_id: str) -> Consent | None:
    query = select(Consent).where(
        Consent.resident_id == resident_id, Consent.client_id == client_id
    )
    return db.session.scalars(query).first()


def get_consent(resident_id: str, client_id: str) -> Consent | None:
    """The active (not revoked) consent of the resident for the client, or None."""
    consent = _row(resident_id, client_id)
    return consent if consent is not None and consent.active else None


def put_consent(resident_id: str, client_id: str, scopes: Sequence[str]) -> Consent:
    """Remember that the resident consents to ``scopes`` for the client (replaces); commit."""
    consent = _row(resident_id, client_id)
    if consent is None:
        consent = Consent(resident_id=resident_id, client_id=client_id)
        db.session.add(consent)
    consent.scopes = sorted(set(scopes))
    consent.granted_at = utcnow()
    consent.revoked_at = None
    db.session.commit()
    return consent


def revoke_consent(resident_id: str, client_id: str) -> bool:
    """Revoke the resident's consent for the client; True if there was an active one."""
    consent = get_consent(resident_id, client_id)
    if consent is None:
        return False
    consent.revoked_at = utcnow()
    db.session.commit()
    return True


def list_consents(resident_id: str, *, include_revoked: bool = False) -> list[Consent]:
    """The resident's consents, newest first."""
    query = select(Consent).where(Consent.resident_id == resident_id)
    if not include_revoked:
        query = query.where(Consent.revoked_at.is_(None))
    return list(db.session.scalars(query.order_by(Consent.granted_at.desc())))
