"""The release log: every time items went to a relying party (who, to whom, what, when)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, select
from sqlalchemy.orm import Mapped, mapped_column

from idp.storage.base import Base, UtcDateTime, db, utcnow

__all__ = ["Release", "list_releases", "record_release"]


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


def record_release(
    *,
    resident_id: str,
    client_id: str,
    items: Sequence[str],
    request_id: str,
    released_at: datetime | None = None,
) -> Release:
    """Append a release row; commit."""
    release = Release(
        resident_id=resident_id,
        client_id=client_id,
        items=list(items),
        request_id=request_id,
        released_at=released_at or utcnow(),
    )
    db.session.add(release)
    db.session.commit()
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
