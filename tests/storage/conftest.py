"""Fixtures for the storage tests: an app on SQLite *and* PostgreSQL (schema by Alembic)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from provider_support import make_app

from idp.extensions import close_connections


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage test runs on a SQLite file and on the PostgreSQL test database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'idp.sqlite3'}"
    url = request.getfixturevalue("database_url")
    assert isinstance(url, str)
    return url


@pytest.fixture
def app(db_url: str, redis_url: str) -> Iterator[Flask]:
    application = make_app(db_url, redis_url)
    yield application
    close_connections(application)
