"""Signing key states (next / active / retiring / retired) and the hash-chained release log.

Existing keys get a state from their times: the newest activated unretired key of each
algorithm is ``active``, a not yet activated one ``next``, keys with a retirement time
``retiring`` or ``retired``. Existing releases are chained in id order; the chain head row is
created from the last one.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 13:20:00

"""

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

from idp.storage.audit import GENESIS_HASH, release_hash

# revision identifiers, used by Alembic.
revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_WHERE_ACTIVE = "state = 'active'"
_WHERE_NEXT = "state = 'next'"


def _utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _key_states(connection: sa.Connection) -> None:
    keys = sa.table(
        "signing_keys",
        sa.column("kid", sa.String),
        sa.column("alg", sa.String),
        sa.column("state", sa.String),
        sa.column("activates_at", sa.DateTime(timezone=True)),
        sa.column("retires_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    rows = connection.execute(
        sa.select(keys.c.kid, keys.c.alg, keys.c.activates_at, keys.c.retires_at)
    ).all()
    rows = sorted(rows, key=lambda row: _utc(row.activates_at) or now, reverse=True)
    have_active: set[str] = set()
    have_next: set[str] = set()
    for row in rows:
        activates, retires = _utc(row.activates_at), _utc(row.retires_at)
        values: dict[str, Any]
        if retires is not None:
            values = {"state": "retiring" if retires > now else "retired"}
        elif activates is not None and activates > now:
            if row.alg in have_next:
                values = {"state": "retired"}  # never signed anything
            else:
                values = {"state": "next"}
                have_next.add(row.alg)
        elif row.alg in have_active:
            values = {"state": "retiring", "retires_at": now + timedelta(days=1)}
        else:
            values = {"state": "active"}
            have_active.add(row.alg)
        connection.execute(sa.update(keys).where(keys.c.kid == row.kid).values(**values))


def _chain_releases(connection: sa.Connection) -> tuple[int, str]:
    releases = sa.table(
        "releases",
        sa.column("id", sa.Integer),
        sa.column("resident_id", sa.String),
        sa.column("client_id", sa.String),
        sa.column("items", sa.JSON),
        sa.column("released_at", sa.DateTime(timezone=True)),
        sa.column("request_id", sa.String),
        sa.column("seq", sa.BigInteger),
        sa.column("prev_hash", sa.String),
        sa.column("record_hash", sa.String),
    )
    seq, prev_hash = 0, GENESIS_HASH
    rows = connection.execute(sa.select(releases).order_by(releases.c.id)).all()
    for row in rows:
        seq += 1
        released_at = _utc(row.released_at)
        assert released_at is not None
        record_hash = release_hash(
            seq=seq,
            resident_id=row.resident_id,
            client_id=row.client_id,
            items=row.items,
            released_at=released_at,
            request_id=row.request_id,
            prev_hash=prev_hash,
        )
        connection.execute(
            sa.update(releases)
            .where(releases.c.id == row.id)
            .values(seq=seq, prev_hash=prev_hash, record_hash=record_hash)
        )
        prev_hash = record_hash
    return seq, prev_hash


def upgrade() -> None:
    connection = op.get_bind()

    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("state", sa.String(length=16), server_default="next", nullable=False)
        )
    _key_states(connection)
    op.create_index(
        "uq_signing_keys_active_alg",
        "signing_keys",
        ["alg"],
        unique=True,
        postgresql_where=sa.text(_WHERE_ACTIVE),
        sqlite_where=sa.text(_WHERE_ACTIVE),
    )
    op.create_index(
        "uq_signing_keys_next_alg",
        "signing_keys",
        ["alg"],
        unique=True,
        postgresql_where=sa.text(_WHERE_NEXT),
        sqlite_where=sa.text(_WHERE_NEXT),
    )

    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("record_hash", sa.String(length=64), nullable=True))
    head_seq, head_hash = _chain_releases(connection)
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("record_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_releases_seq"), ["seq"])

    head = op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("record_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    assert head is not None
    op.bulk_insert(head, [{"id": 1, "seq": head_seq, "record_hash": head_hash}])


def downgrade() -> None:
    op.drop_table("audit_chain_head")
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_releases_seq"), type_="unique")
        batch_op.drop_column("record_hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
    op.drop_index("uq_signing_keys_next_alg", table_name="signing_keys")
    op.drop_index("uq_signing_keys_active_alg", table_name="signing_keys")
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.drop_column("state")
