"""Fixtures for the storage tests: an app on SQLite *and* PostgreSQL (schema by Alembic)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from provider_support import make_app

from idp.extensions import close_connections


@pytest.fixture
def app(db_url: str, redis_url: str) -> Iterator[Flask]:
    application = make_app(db_url, redis_url)
    yield application
    close_connections(application)
