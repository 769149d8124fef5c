"""ID-token signing keys: generation, encryption at rest, rotation with overlap, JWKS.

Keys live in the database (:class:`~idp.storage.keys.SigningKey`), one algorithm per key
(ES256 on P-256, RS256 and PS256 on RSA-3072), ``kid`` = the RFC 7638 thumbprint.

Rotation (docs/keys.md). Each algorithm in use has one ``active`` key (signs) and one ``next``
key (published in the JWKS, not signing). A rotation promotes the next key to active, once it
has been published for ``IDP_KEY_PREPUBLISH_SECONDS`` (longer than ``IDP_JWKS_MAX_AGE`` plus
``IDP_KEY_CACHE_SECONDS``: every relying party that honours the cache headers has it before it
signs); the previous active key becomes ``retiring``: still published, verify only, until every
token it signed has expired (:func:`retire_delay`); then ``retired`` (unpublished, private part
wiped). A new next key is created with every rotation. Rotations are due every
``IDP_KEY_ROTATION_DAYS``: ``idp keys rotate --if-due`` (timer) and :class:`KeyRing` (lazily,
when it loads keys) both rotate a due key, under a lock shared by every instance
(:func:`~idp.storage.keys.key_maintenance`), so that a due rotation happens exactly once.

Encryption at rest. With ``IDP_KEY_ENCRYPTION_KEY`` (or ``..._FILE``) set, the PKCS#8 DER of each
private key is sealed with AES-256-GCM under a key derived from it by HKDF-SHA256, with the
``kid`` as associated data: a row copied onto another ``kid`` or edited does not decrypt. The
stored text is ``aes256gcm.v1.<KEK fingerprint>.<base64url(nonce || ciphertext)>``; the
fingerprint (8 hex digits of a hash of the derived key) lets a wrong key-encryption key be named
as such. AES-GCM rather than PEM ``BestAvailableEncryption``: the latter is password-based
(PBKDF2 on every load, for a key that is already random), and binds nothing to the row.
:func:`prepare_signing_keys` runs when the app starts: it wraps plaintext keys under a newly
configured key-encryption key and refuses to start (:class:`KeyEncryptionError`, a
:class:`~idp.config.ConfigError`) when a stored key cannot be opened.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask
from joserfc.jwk import ECKey, Key, RSAKey
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from idp.config import ID_TOKEN_ALGS, ConfigError, Settings
from idp.storage.base import db, utcnow
from idp.storage.keys import KeyState, SigningKey, key_maintenance, list_signing_keys

__all__ = [
    "ActiveKey",
    "KeyEncryptionError",
    "KeyRing",
    "KeyStorageError",
    "RotationRefusedError",
    "RotationResult",
    "algorithms_in_use",
    "encrypt_stored_keys",
    "generate_signing_key",
    "kek_fingerprint",
    "prepare_signing_keys",
    "retire_delay",
    "rotate_if_due",
    "rotate_signing_key",
]

log = logging.getLogger(__name__)

_RSA_BITS: Final = 3072
_WRAP_PREFIX: Final = "aes256gcm.v1."
_NONCE_BYTES: Final = 12
#: Logout tokens (OpenID Connect Back-Channel Logout) are short-lived; if the provider's
#: settings name a longer lifetime (``logout_token_ttl``), that one counts.
_LOGOUT_TOKEN_TTL: Final = 120


class KeyStorageError(Exception):
    """A stored private key cannot be read (wrong or missing key-encryption key)."""


class KeyEncryptionError(ConfigError):
    """At start: stored keys cannot be opened with the configured key-encryption key."""


class RotationRefusedError(Exception):
    """A rotation would let a key sign before relying parties can have it."""


@dataclass(frozen=True)
class ActiveKey:
    """The key that signs for one algorithm now."""

    kid: str
    alg: str
    key: Key


@dataclass(frozen=True)
class RotationResult:
    """What a rotation (or a check whether one is due) did for one algorithm."""

    alg: str
    rotated: bool
    active_kid: str
    next_kid: str
    retiring_kid: str | None = None
    retires_at: datetime | None = None
    retired: int = 0  # retiring keys whose time was up, now retired


# -- key material ------------------------------------------------------------------------------


def _private_key(alg: str) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg in ("RS256", "PS256"):
        return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
    raise ValueError(f"unsupported signing algorithm {alg!r}")


def _import(pem: bytes, alg: str, kid: str | None = None) -> Key:
    parameters: dict[str, Any] = {"alg": alg, "use": "sig"}
    if kid is not None:
        parameters["kid"] = kid
    if alg == "ES256":
        return ECKey.import_key(pem, parameters)  # type: ignore[arg-type]
    return RSAKey.import_key(pem, parameters)  # type: ignore[arg-type]


def _wrapping_key(kek: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"myna-idp signing keys",
        info=b"aes-256-gcm key wrapping v1",
    ).derive(kek)


def kek_fingerprint(kek: bytes) -> str:
    """8 hex digits naming a key-encryption key (of its derived key; reveals nothing useful)."""
    return hashlib.sha256(b"fingerprint" + _wrapping_key(kek)).hexdigest()[:8]


def _wrap(der: bytes, kid: str, kek: bytes) -> str:
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(_wrapping_key(kek)).encrypt(nonce, der, kid.encode())
    body = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")
    return f"{_WRAP_PREFIX}{kek_fingerprint(kek)}.{body}"


def _keks(settings: Settings) -> tuple[bytes, ...]:
    """The key-encryption keys that may open stored keys: the configured one, then the one
    being replaced (``IDP_KEY_ENCRYPTION_KEY_PREVIOUS``)."""
    return tuple(
        kek
        for kek in (settings.key_encryption_key, settings.key_encryption_key_previous)
        if kek is not None
    )


def _unwrap(stored: str, kid: str, keks: tuple[bytes, ...]) -> bytes:
    """The PKCS#8 DER of a wrapped key."""
    fingerprint, _, body = stored.removeprefix(_WRAP_PREFIX).partition(".")
    if not keks:
        raise KeyStorageError(
            f"key {kid} is encrypted (key-encryption key {fingerprint}); "
            "set IDP_KEY_ENCRYPTION_KEY or IDP_KEY_ENCRYPTION_KEY_FILE"
        )
    kek = next((kek for kek in keks if kek_fingerprint(kek) == fingerprint), None)
    if kek is None:
        configured = ", ".join(kek_fingerprint(kek) for kek in keks)
        raise KeyStorageError(
            f"key {kid} is encrypted under key-encryption key {fingerprint}, "
            f"the configured one is {configured} (wrong IDP_KEY_ENCRYPTION_KEY)"
        )
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    try:
        return AESGCM(_wrapping_key(kek)).decrypt(
            raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], kid.encode()
        )
    except InvalidTag as exc:
        raise KeyStorageError(f"key {kid}: stored ciphertext altered or moved") from exc


def _private_der(stored: str, kid: str, keks: tuple[bytes, ...]) -> bytes:
    """The PKCS#8 DER of a stored key, whatever form it is stored in."""
    if stored.startswith(_WRAP_PREFIX):
        return _unwrap(stored, kid, keks)
    if not stored:
        raise KeyStorageError(f"key {kid} is retired: its private part is gone")
    if "ENCRYPTED PRIVATE KEY" not in stored:
        try:
            private = serialization.load_pem_private_key(stored.encode("ascii"), password=None)
        except ValueError as exc:
            raise KeyStorageError(f"key {kid}: the stored private key is unreadable") from exc
    else:  # written by versions before AES-GCM wrapping: the KEK was the PEM password
        if not keks:
            raise KeyStorageError(f"key {kid} is encrypted; set IDP_KEY_ENCRYPTION_KEY")
        for kek in keks:
            try:
                private = serialization.load_pem_private_key(stored.encode("ascii"), kek)
                break
            except ValueError:
                continue
        else:
            raise KeyStorageError(f"key {kid}: wrong IDP_KEY_ENCRYPTION_KEY")
    return private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _seal(der: bytes, kid: str, kek: bytes | None) -> str:
    """How a private key is stored: wrapped under ``kek``, or PEM without one."""
    if kek is not None:
        return _wrap(der, kid, kek)
    private = serialization.load_der_private_key(der, password=None)
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def _open(row: SigningKey, keks: tuple[bytes, ...]) -> Key:
    der = _private_der(row.private_key_pem, row.kid, keks)
    private = serialization.load_der_private_key(der, password=None)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return _import(pem, row.alg, row.kid)


def generate_signing_key(
    alg: str,
    settings: Settings,
    *,
    state: KeyState = KeyState.NEXT,
    now: datetime | None = None,
) -> SigningKey:
    """A new key for ``alg`` (not yet stored): ``next`` (may sign after the pre-publication
    time) or ``active`` (signs from ``now``)."""
    if alg not in ID_TOKEN_ALGS:
        raise ValueError(f"unsupported signing algorithm {alg!r}")
    now = now or utcnow()
    private = _private_key(alg)
    der = private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    jwk = _import(pem, alg)
    kid = jwk.thumbprint()
    public = dict(jwk.as_dict(private=False))
    public.update({"kid": kid, "alg": alg, "use": "sig"})
    activates_at = (
        now
        if state == KeyState.ACTIVE
        else now + timedelta(seconds=settings.key_prepublish_seconds)
    )
    return SigningKey(
        kid=kid,
        alg=alg,
        state=state.value,
        private_key_pem=_seal(der, kid, settings.key_encryption_key),
        public_jwk=public,
        created_at=now,
        activates_at=activates_at,
        retires_at=None,
    )


# -- rotation ----------------------------------------------------------------------------------


def retire_delay(settings: Settings) -> timedelta:
    """How long a key stays published after it stopped signing: other instances may still
    sign with it for ``IDP_KEY_CACHE_SECONDS``, the longest token it signs (ID token, logout
    token) lives that long, and relying parties allow ``IDP_CLOCK_LEEWAY``."""
    logout_ttl = int(getattr(settings, "logout_token_ttl", _LOGOUT_TOKEN_TTL))
    longest = max(settings.id_token_ttl, logout_ttl, _LOGOUT_TOKEN_TTL)
    return timedelta(seconds=settings.key_cache_seconds + longest + settings.clock_leeway)


def _rotation_due(active: SigningKey, settings: Settings, now: datetime) -> bool:
    days = settings.key_rotation_days
    return days > 0 and now >= active.activates_at + timedelta(days=days)


Mode = Literal["always", "if_due", "never"]


def _maintain(
    session: Session,
    alg: str,
    settings: Settings,
    mode: Mode,
    *,
    force: bool,
    now: datetime,
    retire_now: bool = False,
) -> RotationResult:
    """One algorithm's keys brought into shape inside ``session`` (lock held)."""
    rows = list_signing_keys(alg, session=session)
    retired = 0
    for row in rows:
        if row.state == KeyState.RETIRING and row.retires_at is not None and row.retires_at <= now:
            row.state, row.private_key_pem = KeyState.RETIRED.value, ""
            retired += 1
    active = next((row for row in rows if row.state == KeyState.ACTIVE), None)
    upcoming = next((row for row in rows if row.state == KeyState.NEXT), None)
    rotated = False
    retiring: SigningKey | None = None
    if active is None:
        # Nothing signs yet (first start, or an operator removed the active key): the next key,
        # if any, has been published for a while; otherwise a key no token was signed with.
        rotated = True
        if upcoming is not None:
            active, upcoming = upcoming, None
            active.state, active.activates_at = KeyState.ACTIVE.value, now
        else:
            active = generate_signing_key(alg, settings, state=KeyState.ACTIVE, now=now)
            session.add(active)
    elif mode == "always" or (mode == "if_due" and _rotation_due(active, settings, now)):
        if upcoming is None:
            upcoming = generate_signing_key(alg, settings, now=now)
            session.add(upcoming)
        ready_at = upcoming.created_at + timedelta(seconds=settings.key_prepublish_seconds)
        if now < ready_at and not force:
            if mode == "always":
                raise RotationRefusedError(
                    f"the next {alg} key {upcoming.kid} is published since "
                    f"{upcoming.created_at.isoformat()}; it may sign from {ready_at.isoformat()} "
                    "(IDP_KEY_PREPUBLISH_SECONDS). --force skips the wait; after a key leak use "
                    "--compromised."
                )
        else:
            retiring = active
            retiring.state = KeyState.RETIRING.value
            retiring.retires_at = now + retire_delay(settings)
            if retire_now:  # compromised: out of the JWKS at once, its tokens stop verifying
                retiring.state, retiring.retires_at = KeyState.RETIRED.value, now
                retiring.private_key_pem = ""
            session.flush()  # one active key per algorithm: demote before promoting
            active, upcoming = upcoming, None
            active.state, active.activates_at = KeyState.ACTIVE.value, now
            rotated = True
    session.flush()
    if upcoming is None:
        upcoming = generate_signing_key(alg, settings, now=now)
        session.add(upcoming)
        session.flush()
    return RotationResult(
        alg=alg,
        rotated=rotated,
        active_kid=active.kid,
        next_kid=upcoming.kid,
        retiring_kid=retiring.kid if retiring is not None else None,
        retires_at=retiring.retires_at if retiring is not None else None,
        retired=retired,
    )


def _run(
    alg: str,
    settings: Settings,
    mode: Mode,
    *,
    force: bool,
    now: datetime | None,
    retire_now: bool = False,
) -> Any:
    if alg not in ID_TOKEN_ALGS:
        raise ValueError(f"unsupported signing algorithm {alg!r}")
    for attempt in range(3):
        try:
            with key_maintenance() as session:
                return _maintain(
                    session,
                    alg,
                    settings,
                    mode,
                    force=force,
                    now=now or utcnow(),
                    retire_now=retire_now,
                )
        except IntegrityError:
            # SQLite only (PostgreSQL waits on the lock): another process changed the keys at
            # the same moment; its result stands, ours is rolled back. Look again.
            if attempt == 2:
                raise
            mode, force, retire_now = "never", False, False
    raise AssertionError("unreachable")


def rotate_signing_key(
    alg: str,
    settings: Settings,
    *,
    force: bool = False,
    compromised: bool = False,
    now: datetime | None = None,
) -> RotationResult:
    """Promote ``alg``'s next key to active (refused, :class:`RotationRefusedError`, while it
    has been published for less than the pre-publication time, unless ``force``), retire the
    active one after :func:`retire_delay` (at once if ``compromised``, which implies
    ``force``), and publish a new next key."""
    result = _run(
        alg, settings, "always", force=force or compromised, now=now, retire_now=compromised
    )
    assert isinstance(result, RotationResult)
    return result


def rotate_if_due(alg: str, settings: Settings, *, now: datetime | None = None) -> RotationResult:
    """Rotate ``alg`` if its active key is older than ``IDP_KEY_ROTATION_DAYS`` (and the next
    key is ready); create missing keys; retire keys whose time is up. Safe to run anywhere,
    any number of times at once."""
    result = _run(alg, settings, "if_due", force=False, now=now)
    assert isinstance(result, RotationResult)
    return result


def algorithms_in_use(settings: Settings) -> list[str]:
    """The default algorithm and every algorithm that has keys."""
    algs = {settings.default_id_token_alg, *(row.alg for row in list_signing_keys())}
    return [alg for alg in ID_TOKEN_ALGS if alg in algs]


# -- encryption at rest ------------------------------------------------------------------------


def encrypt_stored_keys(settings: Settings) -> int:
    """Wrap every unretired key not yet wrapped under the configured key-encryption key
    (plaintext PEM, the older encrypted PEM, or wrapped under the previous key-encryption key);
    returns how many. Needs the key."""
    kek = settings.key_encryption_key
    if kek is None:
        raise KeyStorageError("no key-encryption key: set IDP_KEY_ENCRYPTION_KEY(_FILE)")
    prefix = f"{_WRAP_PREFIX}{kek_fingerprint(kek)}."
    count = 0
    with key_maintenance() as session:
        for row in list_signing_keys(session=session):
            if row.state == KeyState.RETIRED or row.private_key_pem.startswith(prefix):
                continue
            der = _private_der(row.private_key_pem, row.kid, _keks(settings))
            row.private_key_pem = _wrap(der, row.kid, kek)
            count += 1
    return count


def _problems(rows: Iterable[SigningKey], keks: tuple[bytes, ...]) -> list[str]:
    problems: list[str] = []
    for row in rows:
        if row.state == KeyState.RETIRED:
            continue
        try:
            _private_der(row.private_key_pem, row.kid, keks)
        except KeyStorageError as exc:
            problems.append(str(exc))
    return problems


def prepare_signing_keys(app: Flask, settings: Settings) -> None:
    """At start: every stored key must open with the configured key-encryption key or the
    previous one (:class:`KeyEncryptionError` otherwise, so the process does not start); with a
    key set, keys stored in plaintext or under the previous key are (re-)wrapped under it.
    Skipped, with a warning, when the database cannot be read yet (not migrated, or down): the
    keys are then checked when first used."""
    with app.app_context():
        try:
            rows = list_signing_keys()
            problems = _problems(rows, _keks(settings))
            if problems:
                raise KeyEncryptionError(problems)
            kek = settings.key_encryption_key
            current = f"{_WRAP_PREFIX}{kek_fingerprint(kek)}." if kek is not None else ""
            if kek is not None and any(
                row.state != KeyState.RETIRED and not row.private_key_pem.startswith(current)
                for row in rows
            ):
                wrapped = encrypt_stored_keys(settings)
                log.warning(
                    "wrapped %d signing key(s) under the current key-encryption key", wrapped
                )
        except SQLAlchemyError as exc:
            log.warning("signing keys not checked at start (database: %s)", type(exc).__name__)
        finally:
            # No connection outlives the check (gunicorn may fork after it; a refused start
            # leaves nothing open).
            db.session.remove()
            db.engine.dispose()


# -- the key ring ------------------------------------------------------------------------------


class KeyRing:
    """Reads signing keys from the database, with a short per-process cache
    (``IDP_KEY_CACHE_SECONDS``). Loading keys also brings them into shape: missing keys are
    created and a due rotation happens (once, whichever instance gets there first)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._signers: dict[str, tuple[float, ActiveKey]] = {}
        self._jwks: tuple[float, dict[str, Any]] | None = None

    def invalidate(self) -> None:
        """Forget cached keys (after a rotation in this process)."""
        with self._lock:
            self._signers.clear()
            self._jwks = None

    def signing_key(self, alg: str) -> ActiveKey:
        """The key that signs ``alg`` now (created if there is none)."""
        cached = self._signers.get(alg)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        row = self._active_row(alg)
        active = ActiveKey(kid=row.kid, alg=alg, key=_open(row, _keks(self._settings)))
        with self._lock:
            self._signers[alg] = (time.monotonic() + self._settings.key_cache_seconds, active)
        return active

    def jwks(self) -> dict[str, Any]:
        """The public JWK set: every published key (next, active and retiring)."""
        cached = self._jwks
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        self._active_row(self._settings.default_id_token_alg)
        now = utcnow()
        keys = [dict(row.public_jwk) for row in list_signing_keys() if row.is_published(now)]
        result = {"keys": keys}
        with self._lock:
            self._jwks = (time.monotonic() + self._settings.key_cache_seconds, result)
        return result

    def _active_row(self, alg: str) -> SigningKey:
        now = utcnow()
        rows = list_signing_keys(alg)
        active = next((row for row in rows if row.state == KeyState.ACTIVE), None)
        upcoming = any(row.state == KeyState.NEXT for row in rows)
        expired = any(
            row.state == KeyState.RETIRING and row.retires_at is not None and row.retires_at <= now
            for row in rows
        )
        if (
            active is not None
            and upcoming
            and not expired
            and not _rotation_due(active, self._settings, now)
        ):
            return active
        result = rotate_if_due(alg, self._settings)
        if result.rotated:
            log.info("signing key %s now signs %s", result.active_kid, alg)
        row = db.session.get(SigningKey, result.active_kid, populate_existing=True)
        assert row is not None
        return row
