"""``idp keys list|rotate|encrypt`` and ``idp audit verify`` on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from provider_support import enroll_test_resident, make_app
from sqlalchemy import text

from idp.cli import main
from idp.extensions import close_connections
from idp.storage.audit import record_release
from idp.storage.base import db
from idp.storage.keys import list_signing_keys

Run = Callable[..., Result]
KEK = "q" * 40


@pytest.fixture
def app(db_url: str, redis_url: str) -> Iterator[Flask]:
    """The test database, migrated and emptied; for looking at what the commands did."""
    application = make_app(db_url, redis_url)
    yield application
    close_connections(application)


@pytest.fixture
def run(app: Flask, db_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Run:
    """``run("keys", "list", KEY_ROTATION_DAYS="1")``: the command as an operator runs it."""
    base = {
        "IDP_ISSUER": "http://localhost:5000",
        "IDP_SECRET_KEY": "c" * 40,
        "IDP_PAIRWISE_SECRET": "d" * 40,
        "IDP_DATABASE_URL": db_url,
        "IDP_REDIS_URL": redis_url,
    }

    def invoke(*args: str, **env: str) -> Result:
        with monkeypatch.context() as patch:
            for name, value in {**base, **{f"IDP_{k}": v for k, v in env.items()}}.items():
                patch.setenv(name, value)
            return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return invoke


def listing(run: Run, **env: str) -> list[dict[str, str]]:
    result = run("keys", "list", **env)
    assert result.exit_code == 0, result.output
    header, *lines = result.output.splitlines()
    names = header.split("\t")
    assert names == ["state", "kid", "alg", "created", "activates", "retire-after"]
    return [dict(zip(names, line.split("\t"), strict=True)) for line in lines]


def test_rotate_creates_the_first_keys_then_waits_for_pre_publication(run: Run) -> None:
    first = run("keys", "rotate", "--alg", "ES256")
    assert first.exit_code == 0, first.output
    keys = {key["state"]: key for key in listing(run)}
    assert set(keys) == {"active", "next"}
    assert f"{keys['active']['kid']} signs now" in first.output
    assert keys["active"]["retire-after"] == keys["next"]["retire-after"] == "-"

    refused = run("keys", "rotate")
    assert refused.exit_code == 1
    assert "IDP_KEY_PREPUBLISH_SECONDS" in refused.output and "--force" in refused.output
    assert {key["state"]: key for key in listing(run)} == keys  # nothing changed

    forced = run("keys", "rotate", "--force")
    assert forced.exit_code == 0, forced.output
    after = {key["state"]: key for key in listing(run)}
    assert set(after) == {"active", "next", "retiring"}
    assert after["active"]["kid"] == keys["next"]["kid"]
    assert after["retiring"]["kid"] == keys["active"]["kid"]
    assert after["retiring"]["retire-after"] != "-"
    assert f"{keys['active']['kid']} verifies until" in forced.output

    leaked = run("keys", "rotate", "--compromised")
    assert leaked.exit_code == 0, leaked.output
    assert f"{after['active']['kid']} retired and unpublished" in leaked.output
    final = {key["kid"]: key["state"] for key in listing(run)}
    assert final[after["active"]["kid"]] == "retired"
    assert final[after["next"]["kid"]] == "active"
    assert final[after["retiring"]["kid"]] == "retiring"


def test_rotate_if_due_for_a_timer(run: Run, app: Flask) -> None:
    assert run("keys", "rotate").exit_code == 0
    not_due = run("keys", "rotate", "--if-due", KEY_ROTATION_DAYS="30")
    assert not_due.exit_code == 0 and "not due" in not_due.output
    with app.app_context():
        for key in list_signing_keys():
            key.created_at -= timedelta(days=31)
            key.activates_at -= timedelta(days=31)
        db.session.commit()
    due = run("keys", "rotate", "--if-due", KEY_ROTATION_DAYS="30")
    assert due.exit_code == 0 and "signs now" in due.output
    again = run("keys", "rotate", "--if-due", KEY_ROTATION_DAYS="30")
    assert "not due" in again.output
    assert sorted(key["state"] for key in listing(run)) == ["active", "next", "retiring"]
    both = run("keys", "rotate", "--if-due", "--force")
    assert both.exit_code == 2


def test_encrypt_and_the_start_check(run: Run, app: Flask) -> None:
    assert run("keys", "rotate").exit_code == 0
    no_kek = run("keys", "encrypt")
    assert no_kek.exit_code == 1 and "IDP_KEY_ENCRYPTION_KEY" in no_kek.output

    def column() -> list[str]:
        with app.app_context():
            rows = db.session.execute(text("SELECT private_key_pem FROM signing_keys")).all()
            db.session.remove()
        return [str(row[0]) for row in rows]

    assert all("BEGIN PRIVATE KEY" in value for value in column())
    # With a key-encryption key the start wraps the plaintext keys; encrypt finds none left.
    wrapped = run("keys", "encrypt", KEY_ENCRYPTION_KEY=KEK)
    assert wrapped.exit_code == 0 and "0 key(s) wrapped" in wrapped.output
    assert all(value.startswith("aes256gcm.v1.") for value in column())

    wrong = run("keys", "list", KEY_ENCRYPTION_KEY="w" * 40)
    assert wrong.exit_code == 1
    assert "invalid configuration" in wrong.output
    assert "wrong IDP_KEY_ENCRYPTION_KEY" in wrong.output
    missing = run("keys", "list")
    assert missing.exit_code == 1 and "is encrypted" in missing.output
    assert len(listing(run, KEY_ENCRYPTION_KEY=KEK)) == 2


def test_audit_verify(run: Run, app: Flask) -> None:
    empty = run("audit", "verify")
    assert empty.exit_code == 0 and "0 record(s)" in empty.output
    with app.app_context():
        resident_id = enroll_test_resident().id
        for i in range(3):
            record_release(
                resident_id=resident_id, client_id="rp", items=["name"], request_id=f"{i}"
            )
    intact = run("audit", "verify")
    assert intact.exit_code == 0 and "intact: 3 record(s)" in intact.output
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(text("UPDATE releases SET items = '[\"address\"]' WHERE seq = 2"))
    broken = run("audit", "verify")
    assert broken.exit_code == 1
    assert "broken at sequence 2" in broken.output and "altered" in broken.output
