"""Settings refuse to start on anything missing or unsafe; only idp.config reads IDP_*."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from idp.app import create_app
from idp.config import ConfigError

GOOD: dict[str, Any] = {
    "ISSUER": "https://idp.city.example.jp",
    "SECRET_KEY": "s" * 40,
    "PAIRWISE_SECRET": "p" * 40,
    "REDIS_URL": "redis://127.0.0.1:6390/0",
}


def problems(**config: Any) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        create_app(config)
    return info.value.problems


@pytest.fixture(autouse=True)
def no_idp_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):  # noqa: TID251 - the test controls the environment
        if name.startswith("IDP_"):
            monkeypatch.delenv(name)


def test_production_config_builds_frozen_settings(tmp_path: Path) -> None:
    app = create_app({**GOOD, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    settings = app.extensions["myna.settings"]
    assert settings.issuer == "https://idp.city.example.jp"
    assert settings.origin == "https://idp.city.example.jp"
    assert settings.endpoint("/token") == "https://idp.city.example.jp/token"
    assert settings.code_ttl == 60
    assert app.config["MAX_CONTENT_LENGTH"] == 64 * 1024
    with pytest.raises(AttributeError):
        settings.issuer = "https://evil.example"


def test_nothing_configured_lists_every_missing_item() -> None:
    found = " | ".join(problems())
    for name in ("IDP_ISSUER", "IDP_SECRET_KEY", "IDP_PAIRWISE_SECRET"):
        assert name in found


@pytest.mark.parametrize(
    "issuer",
    [
        "http://idp.city.example.jp",
        "ftp://idp.example",
        "https://idp.example/",
        "idp.example",
        "https://idp.example?x=1",
    ],
)
def test_unsafe_issuers_are_refused(issuer: str) -> None:
    assert any("IDP_ISSUER" in p for p in problems(**{**GOOD, "ISSUER": issuer}))


@pytest.mark.parametrize(
    "issuer", ["http://localhost:5000", "http://127.0.0.1:8080", "http://[::1]"]
)
def test_loopback_http_issuers_are_allowed_for_development(issuer: str, tmp_path: Path) -> None:
    create_app({**GOOD, "ISSUER": issuer, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})


def test_short_or_placeholder_secrets_are_refused() -> None:
    found = problems(
        **{
            **GOOD,
            "SECRET_KEY": "short",
            "PAIRWISE_SECRET": "testing-only-secret-do-not-use-in-production-pairwise",
        }
    )
    assert any("IDP_SECRET_KEY" in p for p in found)
    assert any("IDP_PAIRWISE_SECRET" in p for p in found)


def test_database_and_redis_urls_are_checked() -> None:
    found = problems(**{**GOOD, "DATABASE_URL": "postgresql://x/y", "REDIS_URL": "http://r"})
    assert any("IDP_DATABASE_URL" in p for p in found)
    assert any("IDP_REDIS_URL" in p for p in found)


def test_numbers_are_checked() -> None:
    found = problems(**{**GOOD, "CODE_TTL": 3600, "ACCESS_TOKEN_TTL": "soon", "CLOCK_LEEWAY": -1})
    assert any("IDP_CODE_TTL" in p for p in found)
    assert any("IDP_ACCESS_TOKEN_TTL" in p for p in found)
    assert any("IDP_CLOCK_LEEWAY" in p for p in found)


def test_database_pool_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The PostgreSQL pool comes from IDP_DATABASE_POOL_*; SQLite keeps SQLAlchemy's own."""
    monkeypatch.setenv("IDP_DATABASE_POOL_SIZE", "20")
    monkeypatch.setenv("IDP_DATABASE_MAX_OVERFLOW", "0")
    postgres = create_app({**GOOD, "DATABASE_URL": "postgresql+psycopg://u@127.0.0.1:1/x"})
    options = postgres.config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert (options["pool_size"], options["max_overflow"], options["pool_timeout"]) == (20, 0, 10)
    sqlite = create_app({**GOOD, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    assert "pool_size" not in sqlite.config["SQLALCHEMY_ENGINE_OPTIONS"]
    found = problems(**{**GOOD, "DATABASE_POOL_SIZE": 0, "DATABASE_MAX_OVERFLOW": -1})
    assert any("IDP_DATABASE_POOL_SIZE" in p for p in found)
    assert any("IDP_DATABASE_MAX_OVERFLOW" in p for p in found)


def test_portal_max_age(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IDP_PORTAL_MAX_AGE", "120")
    app = create_app({**GOOD, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    assert app.extensions["myna.settings"].portal_max_age == 120
    found = problems(**{**GOOD, "PORTAL_MAX_AGE": 0})
    assert any("IDP_PORTAL_MAX_AGE" in p for p in found)


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IDP_ISSUER", "https://env.example.jp")
    monkeypatch.setenv("IDP_SECRET_KEY", "e" * 40)
    monkeypatch.setenv("IDP_PAIRWISE_SECRET", "f" * 40)
    monkeypatch.setenv("IDP_CODE_TTL", "30")
    monkeypatch.setenv("IDP_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    settings = create_app().extensions["myna.settings"]
    assert settings.issuer == "https://env.example.jp"
    assert settings.code_ttl == 30
    assert settings.testing is False


def test_testing_mode_cannot_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDP_TESTING", "true")
    found = problems()
    assert any("IDP_SECRET_KEY" in p for p in found)


def test_testing_mode_has_placeholders(tmp_path: Path) -> None:
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}"})
    settings = app.extensions["myna.settings"]
    assert settings.issuer == "http://localhost"
    assert settings.redis_url is None
    assert settings.redis_embedded_path.name == "redis.db"


def test_default_database_lives_in_the_instance_directory() -> None:
    app = create_app(GOOD)
    settings = app.extensions["myna.settings"]
    assert settings.database_url == f"sqlite:///{Path(app.instance_path) / 'var' / 'idp.sqlite3'}"


def test_refresh_token_lifetimes(tmp_path: Path) -> None:
    app = create_app({**GOOD, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    settings = app.extensions["myna.settings"]
    assert settings.refresh_token_ttl == 14 * 24 * 3600
    assert settings.refresh_token_max_lifetime == 30 * 24 * 3600
    found = " | ".join(problems(**GOOD, REFRESH_TOKEN_TTL=100, REFRESH_TOKEN_MAX_LIFETIME=50))
    assert "IDP_REFRESH_TOKEN_MAX_LIFETIME must be at least IDP_REFRESH_TOKEN_TTL" in found


def test_municipalities(tmp_path: Path) -> None:
    app = create_app(
        {
            **GOOD,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
            "MUNICIPALITIES": {"172065": " 石川県加賀市 "},
        }
    )
    assert app.extensions["myna.settings"].municipalities == (("172065", "石川県加賀市"),)
    for bad in ({"17206": "石川県加賀市"}, {"172065": ""}, ["172065"], {"abcdef": "x"}):
        assert any("IDP_MUNICIPALITIES" in p for p in problems(**GOOD, MUNICIPALITIES=bad))
