"""The release log as a hash chain: links, tampering found by ``verify_chain``, one chain under
concurrent inserts, the migration's backfill."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask_migrate import downgrade, upgrade
from provider_support import enroll_test_resident, make_app
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from idp.extensions import MIGRATIONS_DIR, close_connections
from idp.storage.audit import (
    GENESIS_HASH,
    AuditChainHead,
    Release,
    list_releases,
    record_release,
    release_hash,
    verify_chain,
)
from idp.storage.base import db


def record(resident_id: str, n: int, *, client_id: str = "rp-1") -> None:
    for i in range(n):
        record_release(
            resident_id=resident_id,
            client_id=client_id,
            items=["name", "address"] if i % 2 else ["birthdate"],
            request_id=f"req-{client_id}-{i}",
        )


def chain() -> list[Release]:
    return list(db.session.scalars(db.select(Release).order_by(Release.seq)))


def execute(statement: str, **parameters: object) -> None:
    """Straight SQL, as someone with database access would tamper."""
    with db.engine.begin() as connection:
        connection.execute(text(statement), parameters)


def test_each_record_links_to_the_one_before(app: Flask) -> None:
    with app.app_context():
        resident_id = enroll_test_resident().id
        record(resident_id, 3)
        rows = chain()
        assert [row.seq for row in rows] == [1, 2, 3]
        assert rows[0].prev_hash == GENESIS_HASH
        assert [row.prev_hash for row in rows[1:]] == [row.record_hash for row in rows[:-1]]
        for row in rows:
            assert row.record_hash == release_hash(
                seq=row.seq,
                resident_id=row.resident_id,
                client_id=row.client_id,
                items=row.items,
                released_at=row.released_at,
                request_id=row.request_id,
                prev_hash=row.prev_hash,
            )
        head = db.session.get(AuditChainHead, 1)
        assert head is not None and (head.seq, head.record_hash) == (3, rows[-1].record_hash)
        report = verify_chain()
        assert report.ok and report.records == 3 and report.head_hash == rows[-1].record_hash
        # The resident portal's reader is unchanged.
        assert [r.request_id for r in list_releases(resident_id, limit=2)] == [
            "req-rp-1-2",
            "req-rp-1-1",
        ]


def test_the_hash_covers_every_field() -> None:
    fields: dict[str, object] = {
        "seq": 7,
        "resident_id": "r",
        "client_id": "c",
        "items": ["name"],
        "released_at": datetime(2026, 11, 29, 9, 0, tzinfo=UTC),
        "request_id": "q",
        "prev_hash": GENESIS_HASH,
    }
    base = release_hash(**fields)  # type: ignore[arg-type]
    changed = {
        "seq": 8,
        "resident_id": "s",
        "client_id": "d",
        "items": ["name", "address"],
        "released_at": datetime(2026, 11, 29, 9, 0, 0, 1, tzinfo=UTC),
        "request_id": "Q",
        "prev_hash": "1" * 64,
    }
    for name, value in changed.items():
        assert release_hash(**{**fields, name: value}) != base, name  # type: ignore[arg-type]


def test_records_hold_item_names_only(app: Flask) -> None:
    columns = {column.name for column in Release.__table__.columns}
    assert columns == {
        "id",
        "resident_id",
        "client_id",
        "items",
        "released_at",
        "request_id",
        "seq",
        "prev_hash",
        "record_hash",
    }
    with app.app_context():
        resident = enroll_test_resident()
        record(resident.id, 2)
        stored = db.session.execute(text("SELECT * FROM releases")).all()
        text_of_rows = repr(stored)
        assert (
            "山田" not in text_of_rows
            and "石川県" not in text_of_rows
            and "1985" not in text_of_rows
        )


@pytest.mark.parametrize(
    ("tamper", "broken_at", "reason"),
    [
        ("UPDATE releases SET items = '[\"gender\"]' WHERE seq = 3", 3, "altered"),
        ("UPDATE releases SET client_id = 'other-rp' WHERE seq = 2", 2, "altered"),
        (
            "UPDATE releases SET released_at = released_at - INTERVAL '1 hour' WHERE seq = 4",
            4,
            "altered",
        ),
        ("DELETE FROM releases WHERE seq = 3", 3, "missing"),
        ("DELETE FROM releases WHERE seq = 5", 5, "missing"),
        ("UPDATE releases SET seq = 7 WHERE seq = 2", 2, "missing"),
    ],
)
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_verify_finds_a_row_changed_in_postgresql(
    app: Flask, tamper: str, broken_at: int, reason: str
) -> None:
    with app.app_context():
        record(enroll_test_resident().id, 5)
        assert verify_chain().ok
        execute(tamper)
        db.session.remove()
        report = verify_chain()
    assert report.broken is not None
    assert report.broken.seq == broken_at
    assert reason in report.broken.reason
    assert report.records == broken_at - 1


def test_rewriting_one_record_with_its_hash_breaks_the_next_link(app: Flask) -> None:
    with app.app_context():
        record(enroll_test_resident().id, 4)
        (row,) = [r for r in chain() if r.seq == 2]
        forged = release_hash(
            seq=2,
            resident_id=row.resident_id,
            client_id=row.client_id,
            items=["name"],
            released_at=row.released_at,
            request_id=row.request_id,
            prev_hash=row.prev_hash,
        )
        execute(
            "UPDATE releases SET items = :items, record_hash = :hash WHERE seq = 2",
            items='["name"]',
            hash=forged,
        )
        db.session.remove()
        report = verify_chain()
    assert report.broken is not None and report.broken.seq == 3
    assert "does not link" in report.broken.reason


def test_a_cut_off_tail_is_found_through_the_head(app: Flask) -> None:
    with app.app_context():
        record(enroll_test_resident().id, 4)
        execute("DELETE FROM releases WHERE seq = 4")
        db.session.remove()
        report = verify_chain()
    assert report.broken is not None and report.broken.seq == 4
    assert "missing" in report.broken.reason


def test_an_emptied_database_starts_a_new_chain(app: Flask) -> None:
    with app.app_context():
        execute("DELETE FROM audit_chain_head")
        assert verify_chain().ok
        record(enroll_test_resident().id, 2)
        assert [row.seq for row in chain()] == [1, 2]
        assert verify_chain().ok


def test_a_failed_insert_leaves_the_chain_as_it_was(app: Flask) -> None:
    with app.app_context():
        resident_id = enroll_test_resident().id
        record(resident_id, 2)
        with pytest.raises(IntegrityError):
            record_release(resident_id=resident_id, client_id="c", items=[], request_id=None)  # type: ignore[arg-type]
        record(enroll_test_resident("佐藤　花子").id, 1)
        assert [row.seq for row in chain()] == [1, 2, 3]
        assert verify_chain().ok


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_concurrent_inserts_from_two_instances_keep_one_chain(db_url: str, redis_url: str) -> None:
    instances = [make_app(db_url, redis_url) for _ in range(2)]
    with instances[0].app_context():
        resident_id = enroll_test_resident().id
    workers, each = 6, 15
    barrier = threading.Barrier(workers)
    failures: list[BaseException] = []

    def run(index: int) -> None:
        try:
            with instances[index % 2].app_context():
                barrier.wait()
                record(resident_id, each, client_id=f"rp-{index}")
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert failures == []
        with instances[0].app_context():
            report = verify_chain()
            assert report.ok, report.broken
            assert report.records == workers * each
            assert [row.seq for row in chain()] == list(range(1, workers * each + 1))
    finally:
        for instance in instances:
            close_connections(instance)


def test_the_migration_chains_existing_releases(tmp_path: Path, redis_url: str) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    app = make_app(url, redis_url)
    try:
        with app.app_context():
            resident_id = enroll_test_resident().id
            downgrade(directory=str(MIGRATIONS_DIR), revision="0003")
            for i in range(3):
                execute(
                    "INSERT INTO releases (resident_id, client_id, items, released_at, request_id)"
                    " VALUES (:resident, 'rp', '[\"name\"]', :at, :req)",
                    resident=resident_id,
                    at=f"2026-11-0{i + 1} 09:00:00.000000",
                    req=f"old-{i}",
                )
            upgrade(directory=str(MIGRATIONS_DIR))
            db.session.remove()
            report = verify_chain()
            assert report.ok and report.records == 3
            record(resident_id, 1)
            assert [row.request_id for row in chain()] == ["old-0", "old-1", "old-2", "req-rp-1-0"]
            assert verify_chain().ok
    finally:
        close_connections(app)
