"""ID-token signing keys: one row per key, identified by ``kid``, with its rotation state.

A key goes ``next`` (published, not signing) -> ``active`` (signs) -> ``retiring`` (published,
verify only, until ``retires_at``) -> ``retired`` (not published; private part wiped). Two
partial unique indexes keep at most one ``active`` and one ``next`` key per algorithm, on
PostgreSQL and SQLite alike, whatever the application does.

Changes of state go through :func:`key_maintenance`: a session of its own, separate from the
request's, holding a PostgreSQL transaction-level advisory lock, so that two instances (or an
instance and ``idp keys rotate``) never rotate at the same time. The rotation logic itself is in
:mod:`idp.oidc.keys`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import JSON, Index, String, Text, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from idp.storage.base import Base, UtcDateTime, db, utcnow

__all__ = [
    "KeyState",
    "SigningKey",
    "key_maintenance",
    "list_signing_keys",
]

#: ``pg_advisory_xact_lock`` key of key maintenance ("myna" keys).
KEYS_LOCK: Final = 0x6D796E61_0001


class KeyState(StrEnum):
    NEXT = "next"
    ACTIVE = "active"
    RETIRING = "retiring"
    RETIRED = "retired"


class SigningKey(Base):
    """A signing key. ``private_key_pem`` holds the PKCS#8 private key: AES-256-GCM wrapped
    (``aes256gcm.v1....``, see :mod:`idp.oidc.keys`) when a key-encryption key is configured,
    PEM otherwise; empty once the key is retired.

    ``activates_at``: for a ``next`` key, the earliest moment it may sign (created + the
    pre-publication time); afterwards, when it started signing. ``retires_at``: set when the key
    stops signing; it leaves the JWKS then."""

    __tablename__ = "signing_keys"
    __table_args__ = (
        Index(
            "uq_signing_keys_active_alg",
            "alg",
            unique=True,
            postgresql_where=text("state = 'active'"),
            sqlite_where=text("state = 'active'"),
        ),
        Index(
            "uq_signing_keys_next_alg",
            "alg",
            unique=True,
            postgresql_where=text("state = 'next'"),
            sqlite_where=text("state = 'next'"),
        ),
    )

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16), index=True)
    state: Mapped[str] = mapped_column(String(16), default=KeyState.NEXT.value)
    private_key_pem: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    activates_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    retires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    def is_published(self, now: datetime) -> bool:
        """In the JWKS: next, active, or retiring until ``retires_at``."""
        if self.state in (KeyState.NEXT, KeyState.ACTIVE):
            return True
        return (
            self.state == KeyState.RETIRING
            and self.retires_at is not None
            and self.retires_at > now
        )

    def is_active(self, now: datetime | None = None) -> bool:
        """The key that signs for its algorithm."""
        return self.state == KeyState.ACTIVE


def list_signing_keys(
    alg: str | None = None, *, session: Session | None = None
) -> list[SigningKey]:
    """Every stored key (of ``alg`` if given), newest first, read afresh from the database."""
    query = (
        select(SigningKey)
        .order_by(SigningKey.created_at.desc(), SigningKey.kid)
        .execution_options(populate_existing=True)
    )
    if alg is not None:
        query = query.where(SigningKey.alg == alg)
    return list((session or db.session).scalars(query))


@contextmanager
def key_maintenance() -> Iterator[Session]:
    """A session of its own for changing keys, committed on exit (rolled back on an error).

    On PostgreSQL the transaction first takes an advisory lock: maintenance by other instances
    waits, then sees what this one committed. On SQLite (one process, the demo) the partial
    unique indexes are the guard: a second concurrent writer fails instead of rotating twice.
    """
    with Session(db.engine, expire_on_commit=False) as session, session.begin():
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": KEYS_LOCK})
        yield session
