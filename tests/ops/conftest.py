"""Fixtures for the operations tests: a provider on SQLite + the test Redis, trusting a test
PKI (``login_support``). Helpers live in ``tests/ops_support.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from login_support import LoginPki, dispose, login_pki, make_login_app, shared_pki
from provider_support import RelyingParty

__all__ = ["login_pki", "shared_pki"]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'idp.sqlite3'}"


@pytest.fixture
def app(sqlite_url: str, redis_url: str, login_pki: LoginPki) -> Iterator[Flask]:
    application = make_login_app(sqlite_url, redis_url, login_pki)
    yield application
    dispose(application)


@pytest.fixture
def rp(app: Flask) -> RelyingParty:
    return RelyingParty(app)
