"""The forms tool's own SQLite database: form definitions and signed submissions.

One file (``FORMS_DB``, default ``var/forms.sqlite3``); a connection per call (the development
server is threaded). The first form (人間ドック助成金申請) is seeded when the table is empty.
A submission id is unique: storing the same id twice keeps the first (idempotent submission).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relying_party_demo.form_parts import FormDefinition, health_check_form

__all__ = ["FormStore", "Submission"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS forms (
    form_id TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE TABLE IF NOT EXISTS submissions (
    submission_id TEXT PRIMARY KEY,
    form_id TEXT NOT NULL REFERENCES forms(form_id),
    sub TEXT NOT NULL,
    identity TEXT NOT NULL,
    answers TEXT NOT NULL,
    document BLOB NOT NULL,
    digest_hex TEXT NOT NULL,
    cms BLOB NOT NULL,
    signer_name TEXT NOT NULL,
    signer_serial TEXT NOT NULL,
    signed_at TEXT NOT NULL,
    submitted_at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Submission:
    submission_id: str
    form_id: str
    sub: str
    identity: dict[str, Any]
    answers: dict[str, str]
    document: bytes
    digest_hex: str
    cms: bytes
    signer_name: str
    signer_serial: str
    signed_at: str
    submitted_at: str


class FormStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)
            if db.execute("SELECT COUNT(*) FROM forms").fetchone()[0] == 0:
                self._put(db, health_check_form())

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10)
        try:
            db.execute("PRAGMA foreign_keys = ON")
            with db:
                yield db
        finally:
            db.close()

    @staticmethod
    def _put(db: sqlite3.Connection, form: FormDefinition) -> None:
        db.execute(
            "INSERT INTO forms (form_id, definition) VALUES (?, ?) "
            "ON CONFLICT(form_id) DO UPDATE SET definition = excluded.definition",
            (form.form_id, json.dumps(form.to_json(), ensure_ascii=False)),
        )

    def save_form(self, form: FormDefinition) -> None:
        form.check()
        with self._connect() as db:
            self._put(db, form)

    def forms(self) -> list[FormDefinition]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT definition FROM forms ORDER BY created_at, form_id"
            ).fetchall()
        return [FormDefinition.from_json(json.loads(row[0])) for row in rows]

    def form(self, form_id: str) -> FormDefinition | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT definition FROM forms WHERE form_id = ?", (form_id,)
            ).fetchone()
        return FormDefinition.from_json(json.loads(row[0])) if row else None

    def add_submission(self, submission: Submission) -> bool:
        """Store it; False if that submission id is already stored (nothing changes)."""
        with self._connect() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO submissions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    submission.submission_id,
                    submission.form_id,
                    submission.sub,
                    json.dumps(submission.identity, ensure_ascii=False),
                    json.dumps(submission.answers, ensure_ascii=False),
                    submission.document,
                    submission.digest_hex,
                    submission.cms,
                    submission.signer_name,
                    submission.signer_serial,
                    submission.signed_at,
                    submission.submitted_at,
                ),
            )
            return cursor.rowcount == 1

    def submissions(self, form_id: str | None = None) -> list[Submission]:
        query = "SELECT * FROM submissions"
        args: tuple[str, ...] = ()
        if form_id is not None:
            query += " WHERE form_id = ?"
            args = (form_id,)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY submitted_at, submission_id", args).fetchall()
        return [_submission(row) for row in rows]

    def submission(self, submission_id: str) -> Submission | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT * FROM submissions WHERE submission_id = ?", (submission_id,)
            ).fetchone()
        return _submission(row) if row else None


def _submission(row: tuple[Any, ...]) -> Submission:
    return Submission(
        submission_id=row[0],
        form_id=row[1],
        sub=row[2],
        identity=json.loads(row[3]),
        answers=json.loads(row[4]),
        document=bytes(row[5]),
        digest_hex=row[6],
        cms=bytes(row[7]),
        signer_name=row[8],
        signer_serial=row[9],
        signed_at=row[10],
        submitted_at=row[11],
    )
