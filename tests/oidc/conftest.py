"""Fixtures for the provider tests: an app on real Redis and on SQLite *and* PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from provider_support import (
    CapturingLogin,
    RelyingParty,
    enroll_test_resident,
    install_capturing_login,
    make_app,
)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each provider test runs on a SQLite file and on the PostgreSQL test database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'idp.sqlite3'}"
    url = request.getfixturevalue("database_url")
    assert isinstance(url, str)
    return url


@pytest.fixture
def app(db_url: str, redis_url: str) -> Iterator[Flask]:
    application = make_app(db_url, redis_url)
    yield application
    with application.app_context():
        from idp.storage.base import db

        db.engine.dispose()


@pytest.fixture
def login(app: Flask) -> CapturingLogin:
    return install_capturing_login(app)


@pytest.fixture
def rp(app: Flask) -> RelyingParty:
    return RelyingParty(app)


@pytest.fixture
def resident_id(app: Flask) -> str:
    """The id of an enrolled resident (山田　太郎)."""
    with app.app_context():
        return enroll_test_resident().id
