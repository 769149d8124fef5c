"""``CachedOcspChecker``: OCSP answers reused within their validity, shared through Redis.

An answer is cached only after :class:`~idp.card.validation.OcspRevocationChecker` accepted it
(signature, responder, nonce, freshness), as its verdict (status, thisUpdate, nextUpdate, and
for a revoked certificate its date and reason) under a key derived from the issuer's key and
the certificate's serial. It is reused until the earliest of its nextUpdate and its thisUpdate
plus ``IDP_OCSP_CACHE_MAX_AGE`` (0 turns caching off); never past that.

Where the cache lives: Redis (the :class:`~idp.storage.ephemeral.EphemeralStore`, so every
instance shares it). While Redis is unavailable, a small per-process dictionary takes over, and
is consulted first once Redis is back until its entries expire. With neither a fresh cached
answer nor a reachable responder the checker raises ``RevocationUnavailableError``: the
validator fails closed when revocation is required.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from cryptography import x509

from idp.card.validation import (
    OcspAnswer,
    OcspRevocationChecker,
    RevocationUnavailableError,
)
from idp.card.validation.crl import key_id
from idp.ops import metrics
from idp.storage.ephemeral import EphemeralStore, StoreUnavailableError

__all__ = ["CachedOcspChecker"]

log = logging.getLogger(__name__)

_LOCAL_LIMIT: Final = 10_000


@dataclass(frozen=True)
class _Cached:
    status: str
    this_update: str
    next_update: str | None
    revoked_at: str | None
    reason: str | None
    expires: str

    def answer(self) -> OcspAnswer:
        return OcspAnswer(
            status=self.status,  # type: ignore[arg-type]
            this_update=datetime.fromisoformat(self.this_update),
            next_update=datetime.fromisoformat(self.next_update) if self.next_update else None,
            revoked_at=datetime.fromisoformat(self.revoked_at) if self.revoked_at else None,
            reason=self.reason,
        )

    @classmethod
    def parse(cls, document: Any) -> _Cached | None:
        if not isinstance(document, dict):
            return None
        try:
            cached = cls(**document)
            cached.answer()
            datetime.fromisoformat(cached.expires)
        except (TypeError, ValueError):
            return None
        if cached.status not in ("good", "revoked", "unknown"):
            return None
        return cached


class CachedOcspChecker:
    """Asks the cache, then the responder (see the module docstring)."""

    def __init__(
        self,
        ocsp: OcspRevocationChecker,
        *,
        store: Callable[[], EphemeralStore],
        max_age: timedelta = timedelta(minutes=5),
    ) -> None:
        self.ocsp = ocsp
        self._store = store
        self._max_age = max_age
        self._local: dict[str, _Cached] = {}
        self._lock = threading.Lock()
        self.last_error: str | None = None
        """The code of the last query's failure; None once a query succeeds."""

    @staticmethod
    def _key(certificate: x509.Certificate, issuer: x509.Certificate) -> str:
        digest = hashlib.sha256(key_id(issuer) + b":" + str(certificate.serial_number).encode())
        return "ocsp:" + digest.hexdigest()

    def check(
        self, certificate: x509.Certificate, issuer: x509.Certificate, *, now: datetime
    ) -> None:
        key = self._key(certificate, issuer)
        cached = self._lookup(key, now)
        if cached is not None:
            cached.answer().raise_for_status()
            return
        try:
            answer = self.ocsp.query(certificate, issuer, now=now)
        except RevocationUnavailableError as exc:
            self.last_error = exc.code
            metrics.OCSP_RESPONDER_ERRORS.labels(kind=metrics.label(exc.code)).inc()
            raise
        self.last_error = None
        self._remember(key, answer, now)
        answer.raise_for_status()

    def _lookup(self, key: str, now: datetime) -> _Cached | None:
        if self._max_age <= timedelta(0):
            return None
        local = self._local.get(key)
        if local is not None:
            if datetime.fromisoformat(local.expires) > now:
                metrics.OCSP_CACHE.labels(result="hit", store="process").inc()
                return local
            with self._lock:
                self._local.pop(key, None)
        try:
            cached = _Cached.parse(self._store().get_json(key))
        except ValueError:
            cached = None
        except StoreUnavailableError:
            metrics.OCSP_CACHE.labels(result="miss", store="process").inc()
            return None
        if cached is not None and datetime.fromisoformat(cached.expires) > now:
            metrics.OCSP_CACHE.labels(result="hit", store="redis").inc()
            return cached
        metrics.OCSP_CACHE.labels(result="miss", store="redis").inc()
        return None

    def _remember(self, key: str, answer: OcspAnswer, now: datetime) -> None:
        if self._max_age <= timedelta(0):
            return
        expires = answer.this_update + self._max_age
        if answer.next_update is not None:
            expires = min(expires, answer.next_update)
        ttl = int((expires - now).total_seconds())
        if ttl < 1:
            return
        cached = _Cached(
            status=answer.status,
            this_update=answer.this_update.isoformat(),
            next_update=answer.next_update.isoformat() if answer.next_update else None,
            revoked_at=answer.revoked_at.isoformat() if answer.revoked_at else None,
            reason=answer.reason,
            expires=expires.isoformat(),
        )
        try:
            self._store().put_json(key, asdict(cached), ttl=ttl)
            return
        except StoreUnavailableError:
            log.warning("OCSP cache: Redis unavailable, keeping the answer in this process")
        with self._lock:
            if len(self._local) >= _LOCAL_LIMIT:
                self._local.clear()
            self._local[key] = cached
