"""The release log: every time items went to a relying party (who, to whom, what, when).

Append-only and tamper-evident. Each record carries a sequence number (1, 2, 3, ...), the hash
of the record before it (``prev_hash``; the first one's is 64 zeros) and its own hash
(``record_hash``): SHA-256 over a canonical JSON encoding of its fields and ``prev_hash``
(:func:`release_hash`). Editing a record breaks its own hash, deleting one leaves a gap in the
sequence, and rewriting one's hashes breaks the next record's link. :func:`verify_chain` walks
the chain (``idp audit verify``).

One chain across every instance: the row ``audit_chain_head`` (seq and hash of the last record)
is updated *first* in the inserting transaction, which locks it (a row lock on PostgreSQL, the
database's write lock on SQLite) until the new record is committed; the next writer then reads
the new head. A record holds item names only (``name``, ``address``, ...), never their values;
the resident appears as the provider's internal id, the My Number never.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import JSON, BigInteger, ForeignKey, String, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column, scoped_session

from idp.storage.base import Base, UtcDateTime, db, utcnow

__all__ = [
    "GENESIS_HASH",
    "AuditChainHead",
    "ChainBreak",
    "ChainReport",
    "Release",
    "list_releases",
    "record_release",
    "release_hash",
    "verify_chain",
]

GENESIS_HASH: Final = "0" * 64
_HEAD_ID: Final = 1

_Session = Session | scoped_session[Any]


class Release(Base):
    """One release of items to a client. Kept when the client is removed (no FK to it)."""

    __tablename__ = "releases"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    resident_id: Mapped[str] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    items: Mapped[list[str]] = mapped_column(JSON)
    released_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    request_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    record_hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The last record of the chain (one row, id 1): the lock every insert takes."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    record_hash: Mapped[str] = mapped_column(String(64))


def _timestamp(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def release_hash(
    *,
    seq: int,
    resident_id: str,
    client_id: str,
    items: Sequence[str],
    released_at: datetime,
    request_id: str,
    prev_hash: str,
) -> str:
    """SHA-256 (hex) of the canonical encoding: JSON, keys sorted, no spaces, UTF-8, the time
    in UTC with microseconds, and a version number for the encoding itself."""
    canonical = json.dumps(
        {
            "v": 1,
            "seq": seq,
            "resident_id": resident_id,
            "client_id": client_id,
            "items": list(items),
            "released_at": _timestamp(released_at),
            "request_id": request_id,
            "prev_hash": prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _hash_of(release: Release) -> str:
    return release_hash(
        seq=release.seq,
        resident_id=release.resident_id,
        client_id=release.client_id,
        items=release.items,
        released_at=release.released_at,
        request_id=release.request_id,
        prev_hash=release.prev_hash,
    )


def _create_head(session: _Session) -> None:
    """The head row, from the last record (only missing on an emptied database)."""
    last = session.execute(
        select(Release.seq, Release.record_hash).order_by(Release.seq.desc()).limit(1)
    ).first()
    values = {
        "id": _HEAD_ID,
        "seq": last.seq if last is not None else 0,
        "record_hash": last.record_hash if last is not None else GENESIS_HASH,
    }
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(AuditChainHead).values(**values).on_conflict_do_nothing())


def _advance_head(session: _Session) -> tuple[int, str]:
    """Lock the head by moving it one on; (the new record's seq, the previous record's hash)."""
    advance = (
        update(AuditChainHead)
        .where(AuditChainHead.id == _HEAD_ID)
        .values(seq=AuditChainHead.seq + 1)
        .execution_options(synchronize_session=False)
    )
    if session.execute(advance).rowcount == 0:  # type: ignore[attr-defined]
        _create_head(session)
        session.execute(advance)
    seq, prev_hash = session.execute(
        select(AuditChainHead.seq, AuditChainHead.record_hash).where(AuditChainHead.id == _HEAD_ID)
    ).one()
    return int(seq), str(prev_hash)


def record_release(
    *,
    resident_id: str,
    client_id: str,
    items: Sequence[str],
    request_id: str,
    released_at: datetime | None = None,
) -> Release:
    """Append a release to the chain; commit."""
    session = db.session
    try:
        seq, prev_hash = _advance_head(session)
        release = Release(
            resident_id=resident_id,
            client_id=client_id,
            items=list(items),
            request_id=request_id,
            released_at=released_at or utcnow(),
            seq=seq,
            prev_hash=prev_hash,
        )
        release.record_hash = _hash_of(release)
        session.add(release)
        session.execute(
            update(AuditChainHead)
            .where(AuditChainHead.id == _HEAD_ID)
            .values(record_hash=release.record_hash)
            .execution_options(synchronize_session=False)
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return release


def list_releases(resident_id: str, *, limit: int = 100) -> list[Release]:
    """The resident's releases, newest first."""
    query = (
        select(Release)
        .where(Release.resident_id == resident_id)
        .order_by(Release.released_at.desc(), Release.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(query))


@dataclass(frozen=True)
class ChainBreak:
    """The first broken link: the sequence number where the chain stops holding, and why."""

    seq: int
    reason: str


@dataclass(frozen=True)
class ChainReport:
    records: int
    head_seq: int
    head_hash: str
    broken: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.broken is None


def _walk(rows: Iterable[Release]) -> tuple[int, str, ChainBreak | None]:
    """(records verified, the last one's hash, the first break or None)."""
    expected, prev_hash = 1, GENESIS_HASH
    for row in rows:
        if row.seq != expected:
            reason = (
                f"record {expected} is missing (the next one is {row.seq})"
                if row.seq > expected
                else f"record {row.seq} appears twice"
            )
            return expected - 1, prev_hash, ChainBreak(expected, reason)
        if row.prev_hash != prev_hash:
            return expected - 1, prev_hash, ChainBreak(row.seq, "does not link to the one before")
        if _hash_of(row) != row.record_hash:
            reason = "altered: its hash does not match its contents"
            return expected - 1, prev_hash, ChainBreak(row.seq, reason)
        prev_hash, expected = row.record_hash, expected + 1
    return expected - 1, prev_hash, None


def verify_chain(*, batch: int = 1000) -> ChainReport:
    """Walk the whole chain in sequence order (``batch`` rows at a time); report the first
    broken link, including records missing after the last one (the head row says how many
    there were)."""
    result = db.session.execute(
        select(Release).order_by(Release.seq).execution_options(yield_per=batch)
    )
    try:
        last, last_hash, broken = _walk(result.scalars())
    finally:
        result.close()
    if broken is None:
        head = db.session.get(AuditChainHead, _HEAD_ID)
        if head is None:
            if last:
                broken = ChainBreak(last, "the chain head row is missing")
        elif head.seq > last:
            broken = ChainBreak(
                last + 1, f"records {last + 1} to {head.seq} are missing (head {head.seq})"
            )
        elif head.seq < last or head.record_hash != last_hash:
            broken = ChainBreak(head.seq, "the chain head does not match the last record")
    return ChainReport(records=last, head_seq=last, head_hash=last_hash, broken=broken)


def count_releases() -> int:
    """How many release records exist."""
    return int(db.session.scalar(select(func.count()).select_from(Release)) or 0)
