"""The validator's trust configuration, built from settings and kept fresh per app.

- Anchors: ``IDP_JPKI_AUTH_ANCHORS`` / ``IDP_JPKI_SIGN_ANCHORS`` (paths separated by ``:``; each
  file PEM with one or more certificates, or one DER certificate). Every live CA generation is
  listed; the test PKI's CAs in tests and the demo.
- Revocation: the app's :class:`~idp.revocation.RevocationData` (``IDP_JPKI_CRL_FILES``,
  ``IDP_JPKI_CRL_URLS``, ``IDP_OCSP_URL``, see :mod:`idp.revocation.settings`), fetched and
  refreshed in the background. With no source configured and ``IDP_REVOCATION_REQUIRED`` on
  (the default), every certificate fails with ``revocation_unavailable``: the provider fails
  closed rather than skip revocation silently.

Anchor files are re-read when their modification time changes (checked at most once a second),
and so are CRL files (a CRL refreshed on disk by a cron job is picked up without a restart). A
missing or unreadable anchor file is an operator error: :class:`TrustUnavailableError` (the
device API answers 503). A CRL source that fails keeps the previous good CRL.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Final

from cryptography import x509
from flask import Flask, current_app

from idp.card.validation import TrustConfig
from idp.config import Settings
from idp.extensions import get_settings, get_store
from idp.revocation import RevocationData, RevocationSettings

__all__ = [
    "TrustUnavailableError",
    "get_revocation_data",
    "get_trust",
    "load_trust",
]

log = logging.getLogger(__name__)

_EXTENSION: Final = "myna.trust"
_REVOCATION: Final = "myna.revocation"
_RECHECK_SECONDS: Final = 1.0


class TrustUnavailableError(Exception):
    """The configured anchors or CRLs cannot be read (an operator error, not bad input)."""


def _read_certificates(path: Path) -> list[x509.Certificate]:
    data = path.read_bytes()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def load_trust(settings: Settings, revocation: RevocationData) -> TrustConfig:
    """Read the anchors named by ``settings`` into a ``TrustConfig`` checking ``revocation``."""
    try:
        auth = [c for p in settings.jpki_auth_anchors for c in _read_certificates(p)]
        sign = [c for p in settings.jpki_sign_anchors for c in _read_certificates(p)]
    except (OSError, ValueError) as exc:
        raise TrustUnavailableError(f"trust anchors unreadable: {exc}") from exc
    revocation.set_anchors([*auth, *sign])
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
    def __init__(self, settings: Settings, revocation: RevocationData) -> None:
        self._settings = settings
        self.revocation = revocation
        self._lock = threading.Lock()
        self._cached: _Cached | None = None

    def _paths(self) -> Sequence[Path]:
        s = self._settings
        return (*s.jpki_auth_anchors, *s.jpki_sign_anchors)

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
                cached = _Cached(stamps, load_trust(self._settings, self.revocation), now)
            else:
                cached = _Cached(stamps, cached.trust, now)
            self._cached = cached
        self.revocation.ensure_running()
        self.revocation.poll()
        return cached.trust


def init_trust(app: Flask) -> None:
    """Attach the (lazily loaded) trust configuration and revocation data to ``app``.

    Invalid revocation settings raise :class:`~idp.config.ConfigError` here, at start."""
    settings = get_settings(app)
    revocation = RevocationData(
        RevocationSettings.from_extra(settings.extra),
        store=lambda: get_store(app),
        required=settings.revocation_required,
        clock_skew=timedelta(minutes=5),
    )
    app.extensions[_REVOCATION] = revocation
    app.extensions[_EXTENSION] = _TrustHolder(settings, revocation)


def get_revocation_data(app: Flask | None = None) -> RevocationData:
    """The revocation source of ``app`` (default: the current app)."""
    data = (app or current_app).extensions[_REVOCATION]
    assert isinstance(data, RevocationData)
    return data


def get_trust(app: Flask | None = None) -> TrustConfig:
    """The current trust configuration of ``app`` (default: the current app)."""
    holder = (app or current_app).extensions[_EXTENSION]
    assert isinstance(holder, _TrustHolder)
    return holder.get()
