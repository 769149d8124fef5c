"""ID-token signing keys: generation, encryption at rest, rotation, JWKS.

Keys live in the database (:class:`~idp.storage.keys.SigningKey`), one algorithm per key
(ES256 on P-256, RS256 and PS256 on RSA-3072), ``kid`` = the RFC 7638 thumbprint. With
``IDP_KEY_ENCRYPTION_KEY`` set, private keys are stored as encrypted PKCS#8.

Rotation (``idp keys rotate``): the new key is published at once and starts signing at
``activates_at`` (default: one JWKS cache lifetime later, so relying parties have fetched it);
the previous keys of that algorithm stop being published at ``retires_at`` (after the new key
activates plus the longest ID-token life). At any moment exactly one key per algorithm signs:
the active key with the latest ``activates_at`` -- never a random pick among several.
If no key exists for an algorithm when one is needed, one is created and activated at once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc.jwk import ECKey, Key, RSAKey

from idp.config import ID_TOKEN_ALGS, Settings
from idp.storage.base import utcnow
from idp.storage.keys import SigningKey, add_signing_key, list_signing_keys, retire_signing_keys

__all__ = [
    "ActiveKey",
    "KeyRing",
    "KeyStorageError",
    "RotatedKey",
    "generate_signing_key",
    "rotate_signing_key",
]

_RSA_BITS = 3072


class KeyStorageError(Exception):
    """A stored private key cannot be read (wrong or missing key-encryption key)."""


@dataclass(frozen=True)
class ActiveKey:
    """The key that signs for one algorithm now."""

    kid: str
    alg: str
    key: Key


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


def generate_signing_key(
    alg: str, settings: Settings, *, activates_at: datetime | None = None
) -> SigningKey:
    """A new key for ``alg`` (not yet stored)."""
    if alg not in ID_TOKEN_ALGS:
        raise ValueError(f"unsupported signing algorithm {alg!r}")
    private = _private_key(alg)
    plain_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    jwk = _import(plain_pem, alg)
    kid = jwk.thumbprint()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(settings.key_encryption_key)
        if settings.key_encryption_key
        else serialization.NoEncryption()
    )
    stored_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    public = dict(jwk.as_dict(private=False))
    public.update({"kid": kid, "alg": alg, "use": "sig"})
    now = utcnow()
    return SigningKey(
        kid=kid,
        alg=alg,
        private_key_pem=stored_pem.decode("ascii"),
        public_jwk=public,
        created_at=now,
        activates_at=activates_at or now,
        retires_at=None,
    )


@dataclass(frozen=True)
class RotatedKey:
    """The key a rotation created."""

    kid: str
    alg: str
    activates_at: datetime
    retired: int  # how many older keys were scheduled to retire


def rotate_signing_key(
    alg: str,
    settings: Settings,
    *,
    activate_in: timedelta,
    retire_after: timedelta,
) -> RotatedKey:
    """Store a new key for ``alg`` and schedule the previous ones to retire."""
    key = generate_signing_key(alg, settings, activates_at=utcnow() + activate_in)
    kid, activates_at = key.kid, key.activates_at
    add_signing_key(key)
    retired = retire_signing_keys(alg, retires_at=activates_at + retire_after, keep_kid=kid)
    return RotatedKey(kid=kid, alg=alg, activates_at=activates_at, retired=retired)


class KeyRing:
    """Reads signing keys from the database, with a short per-process cache."""

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
        active = ActiveKey(kid=row.kid, alg=alg, key=self._load(row))
        with self._lock:
            self._signers[alg] = (time.monotonic() + self._settings.key_cache_seconds, active)
        return active

    def jwks(self) -> dict[str, Any]:
        """The public JWK set: every published key (signing, upcoming and retiring)."""
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
        for row in list_signing_keys(alg):
            if row.is_active(now):
                return row
        return add_signing_key(generate_signing_key(alg, self._settings))

    def _load(self, row: SigningKey) -> Key:
        pem = row.private_key_pem.encode("ascii")
        if b"ENCRYPTED" in pem:
            if not self._settings.key_encryption_key:
                raise KeyStorageError(f"key {row.kid} is encrypted; set IDP_KEY_ENCRYPTION_KEY")
            try:
                private = serialization.load_pem_private_key(
                    pem, password=self._settings.key_encryption_key
                )
            except ValueError as exc:
                raise KeyStorageError(f"key {row.kid}: wrong IDP_KEY_ENCRYPTION_KEY") from exc
            pem = private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        return _import(pem, row.alg, row.kid)
