"""Settings: defaults, then ``IDP_*`` environment variables, then the test config.

This is the only module that reads the environment. :func:`load_settings` fills ``app.config``
in that order and builds a frozen :class:`Settings`; anything missing or unsafe raises
:class:`ConfigError` listing every problem, so the app refuses to start instead of running
half-configured. Every variable is documented in ``docs/configuration.md``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask

__all__ = ["DEFAULTS", "ConfigError", "Settings", "load_settings"]

#: Config keys (without the ``IDP_`` prefix) and their defaults. ``None`` means "derived" or
#: "required", see :meth:`Settings.from_config`.
DEFAULTS: dict[str, Any] = {
    "TESTING": False,
    "ISSUER": None,
    "SECRET_KEY": None,
    "PAIRWISE_SECRET": None,
    "DATABASE_URL": None,
    "REDIS_URL": None,
    "REDIS_EMBEDDED_PATH": None,
    "REDIS_TIMEOUT": 2.0,
    "REDIS_PREFIX": "myna:",
    "KEY_ENCRYPTION_KEY": None,
    "KEY_ENCRYPTION_KEY_FILE": None,
    "KEY_ENCRYPTION_KEY_PREVIOUS": None,
    "KEY_ENCRYPTION_KEY_PREVIOUS_FILE": None,
    "KEY_ROTATION_DAYS": 90,
    "KEY_PREPUBLISH_SECONDS": 86400,
    "DEFAULT_ID_TOKEN_ALG": "ES256",
    "CODE_TTL": 60,
    "ACCESS_TOKEN_TTL": 600,
    "ID_TOKEN_TTL": 600,
    "REFRESH_TOKEN_TTL": 14 * 24 * 3600,
    "REFRESH_TOKEN_MAX_LIFETIME": 30 * 24 * 3600,
    "ASSERTION_MAX_LIFETIME": 300,
    "CLOCK_LEEWAY": 30,
    "KEY_CACHE_SECONDS": 60,
    "JWKS_MAX_AGE": 300,
    "DISCOVERY_MAX_AGE": 3600,
    "MAX_CONTENT_LENGTH": 64 * 1024,
    "TRUSTED_PROXY_COUNT": 0,
    "LOGIN_TTL": 300,
    "JPKI_AUTH_ANCHORS": [],
    "JPKI_SIGN_ANCHORS": [],
    "REVOCATION_REQUIRED": True,
    "ENROLLMENT_MAX_AGE_DAYS": 365,
    "QR_FRAME_WINDOW": 5,
    "EVENTS_HEARTBEAT": 15,
    "EVENTS_MAX_STREAMS": 0,
    "RATE_LIMIT_WINDOW": 60,
    "RATE_LOGINS_PER_CLIENT": 600,
    "RATE_LOGINS_PER_ADDRESS": 60,
    "RATE_PICKUPS_PER_ADDRESS": 60,
    "MUNICIPALITIES": {},
    "PAR_TTL": 60,
    "DPOP_PROOF_MAX_AGE": 60,
    "DPOP_NONCE_REQUIRED": True,
    "DPOP_NONCE_LIFETIME": 300,
    "SESSION_LIFETIME": 1800,
    "BACKCHANNEL_LOGOUT_TIMEOUT": 3,
    # SQLAlchemy's pool per process (PostgreSQL): size it to the worker's threads.
    "PORTAL_MAX_AGE": 600,
    "DATABASE_POOL_SIZE": 5,
    "DATABASE_MAX_OVERFLOW": 10,
    "DATABASE_POOL_TIMEOUT": 10,
}

#: The placeholder secret used by tests only; refused outside ``TESTING``.
TESTING_SECRET = "testing-only-secret-do-not-use-in-production"  # noqa: S105

ID_TOKEN_ALGS = ("ES256", "RS256", "PS256")
_LOOPBACK_NAMES = {"localhost"}
_MIN_SECRET_LENGTH = 32


class ConfigError(Exception):
    """The configuration is missing something or is unsafe; ``problems`` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid configuration: " + "; ".join(problems))


@dataclass(frozen=True)
class Settings:
    """Validated, immutable settings. Built once per app by :func:`load_settings`."""

    testing: bool
    issuer: str
    secret_key: str
    pairwise_secret: bytes
    database_url: str
    redis_url: str | None
    redis_embedded_path: Path
    redis_timeout: float
    redis_prefix: str
    key_encryption_key: bytes | None
    default_id_token_alg: str
    code_ttl: int
    access_token_ttl: int
    id_token_ttl: int
    refresh_token_ttl: int
    refresh_token_max_lifetime: int
    assertion_max_lifetime: int
    clock_leeway: int
    key_cache_seconds: int
    jwks_max_age: int
    discovery_max_age: int
    max_content_length: int
    trusted_proxy_count: int
    login_ttl: int
    jpki_auth_anchors: tuple[Path, ...]
    jpki_sign_anchors: tuple[Path, ...]
    revocation_required: bool
    enrollment_max_age_days: int
    #: Seconds a QR frame stays acceptable after its second began (idp.handoff.qr).
    qr_frame_window: int = 5
    #: Seconds between heartbeat comments on the login page's event stream.
    events_heartbeat: int = 15
    #: Event streams one process serves at once (0: no cap); past it /events answers 503.
    events_max_streams: int = 0
    #: Rate limits (idp.handoff.ratelimit): events per window; 0 switches a limit off.
    rate_limit_window: int = 60
    rate_logins_per_client: int = 600
    rate_logins_per_address: int = 60
    rate_pickups_per_address: int = 60
    #: (全国地方公共団体コード, name as addresses start) pairs for the ``resident_of`` claim.
    municipalities: tuple[tuple[str, str], ...] = ()
    #: Lifetime of a pushed authorization request's request_uri (RFC 9126), seconds.
    par_ttl: int = 60
    #: DPoP (RFC 9449): how old a proof's iat may be; whether server nonces are required and
    #: how long one nonce stays valid (a nonce is accepted for up to twice this).
    dpop_proof_max_age: int = 60
    dpop_nonce_required: bool = True
    dpop_nonce_lifetime: int = 300
    #: Absolute lifetime of a provider session after a card login (idp.oidc.sessions), seconds.
    session_lifetime: int = 1800
    #: Seconds one back-channel logout POST may take (connect + answer) before it counts as failed.
    backchannel_logout_timeout: int = 3
    #: How old a card login may be for the resident portal (/account), seconds.
    portal_max_age: int = 600
    database_pool_size: int = 5
    database_max_overflow: int = 10
    database_pool_timeout: int = 10
    #: Signing keys (idp.oidc.keys): days between scheduled rotations (0: none) and how long a
    #: next key is published before it may sign (more than IDP_JWKS_MAX_AGE).
    key_rotation_days: int = 90
    key_prepublish_seconds: int = 86400
    #: The key-encryption key being replaced: keys wrapped under it still open and are
    #: re-wrapped under ``key_encryption_key`` at start.
    key_encryption_key_previous: bytes | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def origin(self) -> str:
        """``scheme://host[:port]`` of the issuer, no trailing slash (what the card signs)."""
        parts = urlsplit(self.issuer)
        return f"{parts.scheme}://{parts.netloc}"

    def endpoint(self, path: str) -> str:
        """The absolute URL of ``path`` (starting with ``/``) under the issuer."""
        return self.issuer.rstrip("/") + path

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, instance_path: Path) -> Settings:
        """Validate ``config`` (Flask config after all sources) and build settings."""
        problems: list[str] = []
        testing = bool(config.get("TESTING"))

        issuer = _issuer(config.get("ISSUER"), testing, problems)
        secret_key = _secret("SECRET_KEY", config.get("SECRET_KEY"), testing, problems)
        pairwise = _secret("PAIRWISE_SECRET", config.get("PAIRWISE_SECRET"), testing, problems)

        var_dir = instance_path / "var"
        database_url = str(config.get("DATABASE_URL") or f"sqlite:///{var_dir / 'idp.sqlite3'}")
        if not database_url.startswith(("sqlite://", "postgresql+psycopg://")):
            problems.append(
                "IDP_DATABASE_URL must be sqlite:///PATH or postgresql+psycopg://... (psycopg 3)"
            )
        redis_url = config.get("REDIS_URL") or None
        if redis_url is not None and not str(redis_url).startswith(
            ("redis://", "rediss://", "unix://", "redis+sentinel://")
        ):
            problems.append(
                "IDP_REDIS_URL must be a redis://, rediss://, unix:// or redis+sentinel:// URL"
            )
        embedded = Path(str(config.get("REDIS_EMBEDDED_PATH") or var_dir / "redis.db"))

        kek = _key_encryption_key(config, "KEY_ENCRYPTION_KEY", problems)
        previous_kek = _key_encryption_key(config, "KEY_ENCRYPTION_KEY_PREVIOUS", problems)
        if previous_kek is not None and kek is None:
            problems.append("IDP_KEY_ENCRYPTION_KEY_PREVIOUS needs IDP_KEY_ENCRYPTION_KEY")

        alg = str(config.get("DEFAULT_ID_TOKEN_ALG") or "ES256")
        if alg not in ID_TOKEN_ALGS:
            problems.append(f"IDP_DEFAULT_ID_TOKEN_ALG must be one of {', '.join(ID_TOKEN_ALGS)}")

        ints = {
            name: _positive_int(name, config.get(name, DEFAULTS[name]), problems)
            for name in (
                "CODE_TTL",
                "ACCESS_TOKEN_TTL",
                "ID_TOKEN_TTL",
                "REFRESH_TOKEN_TTL",
                "REFRESH_TOKEN_MAX_LIFETIME",
                "ASSERTION_MAX_LIFETIME",
                "MAX_CONTENT_LENGTH",
                "LOGIN_TTL",
                "ENROLLMENT_MAX_AGE_DAYS",
                "JWKS_MAX_AGE",
                "DISCOVERY_MAX_AGE",
                "PAR_TTL",
                "DPOP_PROOF_MAX_AGE",
                "DPOP_NONCE_LIFETIME",
                "SESSION_LIFETIME",
                "BACKCHANNEL_LOGOUT_TIMEOUT",
                "DATABASE_POOL_SIZE",
                "DATABASE_POOL_TIMEOUT",
                "PORTAL_MAX_AGE",
                "QR_FRAME_WINDOW",
                "EVENTS_HEARTBEAT",
                "RATE_LIMIT_WINDOW",
                "KEY_PREPUBLISH_SECONDS",
            )
        }
        non_negative = {
            name: _positive_int(name, config.get(name, DEFAULTS[name]), problems, minimum=0)
            for name in (
                "CLOCK_LEEWAY",
                "KEY_CACHE_SECONDS",
                "TRUSTED_PROXY_COUNT",
                "RATE_LOGINS_PER_CLIENT",
                "RATE_LOGINS_PER_ADDRESS",
                "RATE_PICKUPS_PER_ADDRESS",
                "EVENTS_MAX_STREAMS",
                "KEY_ROTATION_DAYS",
                "DATABASE_MAX_OVERFLOW",
            )
        }
        if ints["QR_FRAME_WINDOW"] > 30:
            problems.append("IDP_QR_FRAME_WINDOW must be at most 30 seconds")
        if ints["CODE_TTL"] > 600:
            problems.append("IDP_CODE_TTL must be at most 600 seconds")
        if ints["SESSION_LIFETIME"] > 24 * 3600:
            problems.append("IDP_SESSION_LIFETIME must be at most 86400 seconds")
        if ints["BACKCHANNEL_LOGOUT_TIMEOUT"] > 30:
            problems.append("IDP_BACKCHANNEL_LOGOUT_TIMEOUT must be at most 30 seconds")
        if ints["PAR_TTL"] > 600:
            problems.append("IDP_PAR_TTL must be at most 600 seconds")
        cached = ints["JWKS_MAX_AGE"] + non_negative["KEY_CACHE_SECONDS"]
        if ints["KEY_PREPUBLISH_SECONDS"] <= cached:
            problems.append(
                "IDP_KEY_PREPUBLISH_SECONDS must be longer than IDP_JWKS_MAX_AGE + "
                "IDP_KEY_CACHE_SECONDS (relying parties must have the next key before it signs)"
            )
        if ints["REFRESH_TOKEN_MAX_LIFETIME"] < ints["REFRESH_TOKEN_TTL"]:
            problems.append("IDP_REFRESH_TOKEN_MAX_LIFETIME must be at least IDP_REFRESH_TOKEN_TTL")
        try:
            redis_timeout = float(config.get("REDIS_TIMEOUT", DEFAULTS["REDIS_TIMEOUT"]))
        except (TypeError, ValueError):
            problems.append("IDP_REDIS_TIMEOUT must be a number of seconds")
            redis_timeout = 2.0

        municipalities = _municipalities(config.get("MUNICIPALITIES"), problems)

        if problems:
            raise ConfigError(problems)
        return cls(
            testing=testing,
            issuer=issuer,
            secret_key=secret_key,
            pairwise_secret=pairwise.encode(),
            database_url=database_url,
            redis_url=str(redis_url) if redis_url else None,
            redis_embedded_path=embedded,
            redis_timeout=redis_timeout,
            redis_prefix=str(config.get("REDIS_PREFIX") or "myna:"),
            key_encryption_key=kek,
            default_id_token_alg=alg,
            code_ttl=ints["CODE_TTL"],
            access_token_ttl=ints["ACCESS_TOKEN_TTL"],
            id_token_ttl=ints["ID_TOKEN_TTL"],
            refresh_token_ttl=ints["REFRESH_TOKEN_TTL"],
            refresh_token_max_lifetime=ints["REFRESH_TOKEN_MAX_LIFETIME"],
            assertion_max_lifetime=ints["ASSERTION_MAX_LIFETIME"],
            clock_leeway=non_negative["CLOCK_LEEWAY"],
            key_cache_seconds=non_negative["KEY_CACHE_SECONDS"],
            jwks_max_age=ints["JWKS_MAX_AGE"],
            discovery_max_age=ints["DISCOVERY_MAX_AGE"],
            max_content_length=ints["MAX_CONTENT_LENGTH"],
            trusted_proxy_count=non_negative["TRUSTED_PROXY_COUNT"],
            login_ttl=ints["LOGIN_TTL"],
            jpki_auth_anchors=_paths(config.get("JPKI_AUTH_ANCHORS")),
            jpki_sign_anchors=_paths(config.get("JPKI_SIGN_ANCHORS")),
            revocation_required=_boolean(config.get("REVOCATION_REQUIRED", True)),
            enrollment_max_age_days=ints["ENROLLMENT_MAX_AGE_DAYS"],
            qr_frame_window=ints["QR_FRAME_WINDOW"],
            events_heartbeat=ints["EVENTS_HEARTBEAT"],
            events_max_streams=non_negative["EVENTS_MAX_STREAMS"],
            rate_limit_window=ints["RATE_LIMIT_WINDOW"],
            rate_logins_per_client=non_negative["RATE_LOGINS_PER_CLIENT"],
            rate_logins_per_address=non_negative["RATE_LOGINS_PER_ADDRESS"],
            rate_pickups_per_address=non_negative["RATE_PICKUPS_PER_ADDRESS"],
            municipalities=municipalities,
            par_ttl=ints["PAR_TTL"],
            dpop_proof_max_age=ints["DPOP_PROOF_MAX_AGE"],
            dpop_nonce_required=_boolean(config.get("DPOP_NONCE_REQUIRED", True)),
            dpop_nonce_lifetime=ints["DPOP_NONCE_LIFETIME"],
            session_lifetime=ints["SESSION_LIFETIME"],
            backchannel_logout_timeout=ints["BACKCHANNEL_LOGOUT_TIMEOUT"],
            portal_max_age=ints["PORTAL_MAX_AGE"],
            database_pool_size=ints["DATABASE_POOL_SIZE"],
            database_max_overflow=non_negative["DATABASE_MAX_OVERFLOW"],
            database_pool_timeout=ints["DATABASE_POOL_TIMEOUT"],
            key_rotation_days=non_negative["KEY_ROTATION_DAYS"],
            key_prepublish_seconds=ints["KEY_PREPUBLISH_SECONDS"],
            key_encryption_key_previous=previous_kek,
            extra={k: v for k, v in config.items() if k not in DEFAULTS},
        )


def load_settings(app: Flask, test_config: Mapping[str, Any] | None = None) -> Settings:
    """Fill ``app.config`` (defaults, ``IDP_*`` environment, ``test_config``) and validate it."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("IDP")
    # Testing mode (placeholder secrets, loopback issuer) comes from the test config only,
    # never from the environment of a deployed process.
    app.config["TESTING"] = False
    if test_config is not None:
        app.config.from_mapping(test_config)
    settings = Settings.from_config(app.config, instance_path=Path(app.instance_path))
    app.config["SECRET_KEY"] = settings.secret_key
    app.config["MAX_CONTENT_LENGTH"] = settings.max_content_length
    app.config["MAX_FORM_MEMORY_SIZE"] = settings.max_content_length
    app.config["SQLALCHEMY_DATABASE_URI"] = settings.database_url
    engine_options: dict[str, Any] = {"pool_pre_ping": True}
    if settings.database_url.startswith("postgresql"):
        engine_options.update(
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
            pool_timeout=settings.database_pool_timeout,
        )
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options
    return settings


def _issuer(value: Any, testing: bool, problems: list[str]) -> str:
    if not value:
        if testing:
            return "http://localhost"
        problems.append("IDP_ISSUER is required (https://..., or http://localhost for development)")
        return ""
    issuer = str(value)
    parts = urlsplit(issuer)
    if parts.query or parts.fragment:
        problems.append("IDP_ISSUER must not have a query or fragment")
    if issuer.endswith("/"):
        problems.append("IDP_ISSUER must not end with '/'")
    if parts.scheme == "https" and parts.hostname:
        return issuer
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return issuer
    problems.append("IDP_ISSUER must be an https:// URL (http:// only for localhost/127.0.0.1)")
    return issuer


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _secret(name: str, value: Any, testing: bool, problems: list[str]) -> str:
    if not value:
        if testing:
            return f"{TESTING_SECRET}-{name.lower()}"
        problems.append(f"IDP_{name} is required (at least {_MIN_SECRET_LENGTH} random chars)")
        return ""
    secret = str(value)
    if not testing and (TESTING_SECRET in secret or len(secret) < _MIN_SECRET_LENGTH):
        problems.append(f"IDP_{name} must be at least {_MIN_SECRET_LENGTH} random chars")
    return secret


def _key_encryption_key(
    config: Mapping[str, Any], setting: str, problems: list[str]
) -> bytes | None:
    """A key-encryption key from ``IDP_<setting>`` or the file named by ``IDP_<setting>_FILE``
    (one of them; the file's trailing newline is ignored)."""
    value, path = config.get(setting), config.get(f"{setting}_FILE")
    if value and path:
        problems.append(f"set IDP_{setting} or IDP_{setting}_FILE, not both")
        return None
    if path:
        name = f"IDP_{setting}_FILE"
        try:
            raw = Path(str(path)).read_bytes().strip()
        except OSError as exc:
            problems.append(f"{name} cannot be read ({type(exc).__name__})")
            return None
    elif value:
        raw, name = str(value).encode(), f"IDP_{setting}"
    else:
        return None
    if len(raw) < _MIN_SECRET_LENGTH:
        problems.append(f"{name} must hold at least {_MIN_SECRET_LENGTH} random characters")
    return raw


def _positive_int(name: str, value: Any, problems: list[str], *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        problems.append(f"IDP_{name} must be an integer")
        return minimum
    try:
        number = int(value)
    except ValueError:
        problems.append(f"IDP_{name} must be an integer")
        return minimum
    if number < minimum:
        problems.append(f"IDP_{name} must be at least {minimum}")
    return number


def _paths(value: Any) -> tuple[Path, ...]:
    if not value:
        return ()
    if isinstance(value, str):
        return tuple(Path(part) for part in value.split(os.pathsep) if part)
    return tuple(Path(str(part)) for part in value)


def _municipalities(value: Any, problems: list[str]) -> tuple[tuple[str, str], ...]:
    """``{"172065": "石川県加賀市", ...}``: six-digit local government codes to names."""
    if not value:
        return ()
    if not isinstance(value, Mapping) or not all(
        isinstance(code, str)
        and len(code) == 6
        and code.isdigit()
        and isinstance(name, str)
        and name.strip()
        for code, name in value.items()
    ):
        problems.append(
            "IDP_MUNICIPALITIES must map six-digit local government codes to names, "
            'e.g. {"172065": "石川県加賀市"}'
        )
        return ()
    return tuple((code, name.strip()) for code, name in value.items())


def _boolean(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in {"0", "false", "no", "off", ""}
    return bool(value)
