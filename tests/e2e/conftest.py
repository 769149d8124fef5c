"""Fixtures for the end-to-end login tests: real Redis, SQLite and PostgreSQL, a test PKI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from login_support import LoginPki, make_login_app
from provider_support import RelyingParty

from idp.card.testpki import TestPki


@pytest.fixture(scope="session")
def shared_pki() -> TestPki:
    return TestPki.generate()


@pytest.fixture
def login_pki(shared_pki: TestPki, tmp_path: Path) -> LoginPki:
    return LoginPki.create(tmp_path / "pki", shared_pki)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'idp.sqlite3'}"
    url = request.getfixturevalue("database_url")
    assert isinstance(url, str)
    return url


@pytest.fixture
def app(db_url: str, redis_url: str, login_pki: LoginPki) -> Iterator[Flask]:
    application = make_login_app(db_url, redis_url, login_pki)
    yield application
    with application.app_context():
        from idp.storage.base import db

        db.engine.dispose()


@pytest.fixture
def rp(app: Flask) -> RelyingParty:
    return RelyingParty(app)
