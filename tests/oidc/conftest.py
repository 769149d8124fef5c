"""Fixtures for the provider tests: an app on real Redis and on SQLite *and* PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from provider_support import (
    CapturingLogin,
    RelyingParty,
    enroll_test_resident,
    install_capturing_login,
    make_app,
)

from idp.extensions import close_connections


@pytest.fixture
def app_factory(db_url: str, redis_url: str) -> Iterator[Callable[..., Flask]]:
    """``app_factory(**config)``: more apps on the same services (closed after the test)."""
    apps: list[Flask] = []

    def build(**overrides: object) -> Flask:
        application = make_app(db_url, redis_url, **overrides)
        apps.append(application)
        return application

    yield build
    for application in apps:
        close_connections(application)


@pytest.fixture
def app(app_factory: Callable[..., Flask]) -> Flask:
    return app_factory()


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
