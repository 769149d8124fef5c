"""Per-app extension objects: the database, migrations, the settings and the Redis store.

``init_extensions`` attaches them to an app; ``get_settings`` and ``get_store`` fetch them for
the current app (inside a request or app context).
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app
from flask_migrate import Migrate

from idp.config import Settings
from idp.storage.base import db
from idp.storage.ephemeral import EphemeralStore, LazyStore
from idp.storage.models import Base

__all__ = [
    "MIGRATIONS_DIR",
    "close_connections",
    "db",
    "get_settings",
    "get_store",
    "init_extensions",
    "migrate",
]

MIGRATIONS_DIR = Path(__file__).parent / "storage" / "migrations"

migrate = Migrate()

_SETTINGS = "myna.settings"
_STORE = "myna.store"


def init_extensions(app: Flask, settings: Settings) -> None:
    """Attach settings, SQLAlchemy, Flask-Migrate and the (lazily started) Redis store."""
    app.extensions[_SETTINGS] = settings
    assert db.metadata is Base.metadata  # every model is registered (idp.storage.models)
    if settings.database_url.startswith("sqlite:///"):
        # SQLite creates the file but not its directory (instance/var by default).
        Path(settings.database_url.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)

    def build_store() -> EphemeralStore:
        prefix = settings.redis_prefix
        if settings.redis_url is not None:
            return EphemeralStore.from_url(
                settings.redis_url, timeout=settings.redis_timeout, prefix=prefix
            )
        return EphemeralStore.embedded(settings.redis_embedded_path, prefix=prefix)

    app.extensions[_STORE] = LazyStore(build_store)


def close_connections(app: Flask) -> None:
    """Close the app's Redis connections and database pool (tests, orderly shutdown)."""
    lazy = app.extensions[_STORE]
    assert isinstance(lazy, LazyStore)
    lazy.close()
    with app.app_context():
        db.engine.dispose()


def get_settings(app: Flask | None = None) -> Settings:
    """The settings of ``app`` (default: the current app)."""
    settings = (app or current_app).extensions[_SETTINGS]
    assert isinstance(settings, Settings)
    return settings


def get_store(app: Flask | None = None) -> EphemeralStore:
    """The Redis store of ``app`` (default: the current app); started on first use."""
    lazy = (app or current_app).extensions[_STORE]
    assert isinstance(lazy, LazyStore)
    return lazy.get()
