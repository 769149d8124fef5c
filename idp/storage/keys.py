"""ID-token signing keys: one row per key, identified by ``kid``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from idp.storage.base import Base, UtcDateTime, db, utcnow

__all__ = ["SigningKey", "add_signing_key", "list_signing_keys", "retire_signing_keys"]


class SigningKey(Base):
    """A signing key. ``private_key_pem`` is PKCS#8 PEM, encrypted when a key-encryption key
    is configured. Published in JWKS until ``retires_at``; used for signing from
    ``activates_at`` (the newest active key of an algorithm signs)."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16), index=True)
    private_key_pem: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    activates_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    retires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    def is_published(self, now: datetime) -> bool:
        return self.retires_at is None or self.retires_at > now

    def is_active(self, now: datetime) -> bool:
        return self.activates_at <= now and self.is_published(now)


def list_signing_keys(alg: str | None = None) -> list[SigningKey]:
    """Every stored key (of ``alg`` if given), newest activation first."""
    query = select(SigningKey).order_by(SigningKey.activates_at.desc(), SigningKey.kid)
    if alg is not None:
        query = query.where(SigningKey.alg == alg)
    return list(db.session.scalars(query))


def add_signing_key(key: SigningKey) -> SigningKey:
    """Insert ``key`` and commit."""
    db.session.add(key)
    db.session.commit()
    return key


def retire_signing_keys(alg: str, *, retires_at: datetime, keep_kid: str) -> int:
    """Schedule every other unretired key of ``alg`` to retire at ``retires_at``; commit."""
    count = 0
    for key in list_signing_keys(alg):
        if key.kid != keep_kid and (key.retires_at is None or key.retires_at > retires_at):
            key.retires_at = retires_at
            count += 1
    db.session.commit()
    return count
