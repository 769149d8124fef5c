"""The validator's trust configuration, built from settings and kept fresh per app.

- Anchors: ``IDP_JPKI_AUTH_ANCHORS`` / ``IDP_JPKI_SIGN_ANCHORS`` (paths separated by ``:``; each
  file PEM with one or more certificates, or one DER certificate). Every live CA generation is
  listed; the test PKI's CAs in tests and the demo.
- Revocation: ``IDP_JPKI_CRL_FILES`` (paths, PEM or DER CRLs of those CAs) loaded into a
  :class:`~idp.card.validation.CrlRevocationChecker`. With no CRL configured and
  ``IDP_REVOCATION_REQUIRED`` on (the default), every certificate fails with
  ``revocation_unavailable``: the provider fails closed rather than skip revocation silently.

Files are re-read when their modification time changes (checked at most once a second), so a
CRL refreshed on disk by a cron job is picked up without a restart. A missing or unreadable file
is an operator error: :class:`TrustUnavailableError` (the device API answers 503).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from flask import Flask, current_app

from idp.card.validation import (
    CertificateValidationError,
    CrlRevocationChecker,
    RevocationChecker,
    RevocationUnavailableError,
    TrustConfig,
)
from idp.config import Settings
from idp.extensions import get_settings

__all__ = ["TrustUnavailableError", "crl_paths", "get_trust", "load_trust"]

log = logging.getLogger(__name__)

_EXTENSION: Final = "myna.trust"
_RECHECK_SECONDS: Final = 1.0


class TrustUnavailableError(Exception):
    """The configured anchors or CRLs cannot be read (an operator error, not bad input)."""


class NoRevocationSource:
    """The revocation checker used when no CRL is configured: never has an answer."""

    def check(
        self, certificate: x509.Certificate, issuer: x509.Certificate, *, now: datetime
    ) -> None:
        raise RevocationUnavailableError("no revocation source is configured")


def crl_paths(settings: Settings) -> tuple[Path, ...]:
    """``IDP_JPKI_CRL_FILES`` (a list, or paths joined with the OS path separator)."""
    value: Any = settings.extra.get("JPKI_CRL_FILES")
    if not value:
        return ()
    if isinstance(value, str):
        return tuple(Path(part) for part in value.split(os.pathsep) if part)
    return tuple(Path(str(part)) for part in value)


def _read_certificates(path: Path) -> list[x509.Certificate]:
    data = path.read_bytes()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def load_trust(settings: Settings) -> TrustConfig:
    """Read anchors and CRLs named by ``settings`` into a ``TrustConfig``."""
    try:
        auth = [c for p in settings.jpki_auth_anchors for c in _read_certificates(p)]
        sign = [c for p in settings.jpki_sign_anchors for c in _read_certificates(p)]
    except (OSError, ValueError) as exc:
        raise TrustUnavailableError(f"trust anchors unreadable: {exc}") from exc
    revocation: RevocationChecker
    paths = crl_paths(settings)
    if paths:
        try:
            revocation = CrlRevocationChecker(
                issuers=[*auth, *sign], crls=[p.read_bytes() for p in paths]
            )
        except (OSError, ValueError, CertificateValidationError) as exc:
            raise TrustUnavailableError(f"CRL unusable: {exc}") from exc
    else:
        revocation = NoRevocationSource()
    if not auth:
        log.warning("no JPKI authentication anchors configured: every card will be refused")
    return TrustConfig(
        auth_anchors=tuple(auth),
        sign_anchors=tuple(sign),
        revocation=revocation,
        revocation_required=settings.revocation_required,
    )


@dataclass
class _Cached:
    stamps: tuple[float, ...]
    trust: TrustConfig
    checked: float


class _TrustHolder:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._cached: _Cached | None = None

    def _paths(self) -> Sequence[Path]:
        s = self._settings
        return (*s.jpki_auth_anchors, *s.jpki_sign_anchors, *crl_paths(s))

    def _stamps(self) -> tuple[float, ...]:
        try:
            return tuple(p.stat().st_mtime for p in self._paths())
        except OSError as exc:
            raise TrustUnavailableError(f"trust file missing: {exc}") from exc

    def get(self) -> TrustConfig:
        now = time.monotonic()
        cached = self._cached
        if cached is not None and now - cached.checked < _RECHECK_SECONDS:
            return cached.trust
        with self._lock:
            stamps = self._stamps()
            cached = self._cached
            if cached is None or cached.stamps != stamps:
                cached = _Cached(stamps, load_trust(self._settings), now)
            else:
                cached = _Cached(stamps, cached.trust, now)
            self._cached = cached
            return cached.trust


def init_trust(app: Flask) -> None:
    """Attach the (lazily loaded) trust configuration to ``app``."""
    app.extensions[_EXTENSION] = _TrustHolder(get_settings(app))


def get_trust(app: Flask | None = None) -> TrustConfig:
    """The current trust configuration of ``app`` (default: the current app)."""
    holder = (app or current_app).extensions[_EXTENSION]
    assert isinstance(holder, _TrustHolder)
    return holder.get()
