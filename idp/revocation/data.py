"""``RevocationData``: the revocation source of one app, and its background refresher.

Built once per app from :class:`~idp.revocation.settings.RevocationSettings`:

- an OCSP responder (``IDP_OCSP_URL``) behind :class:`~idp.revocation.ocsp_cache.CachedOcspChecker`,
  asked first;
- the CRLs (``IDP_JPKI_CRL_FILES``, ``IDP_JPKI_CRL_URLS``) in a
  :class:`~idp.revocation.crls.CrlStore`, asked when OCSP has no answer (or alone).

It is the ``revocation`` of the validator's ``TrustConfig``: ``check`` runs the chain and, when
revocation is required, counts every certificate refused for want of an answer
(``myna_revocation_fail_closed_total``). With no source configured it has no answer at all.

The refresher is one daemon thread per process (started on first use, so that it survives
gunicorn's fork by being started after it): it sleeps until the next refresh is due (the
interval, sooner when a CRL's nextUpdate comes first, ``IDP_CRL_RETRY_SECONDS`` after a
failure), minus up to 10 % jitter so that instances do not fetch in step, then refreshes every
source. Files are also re-read whenever their modification time changes (``poll``). The first
use in a process loads every source synchronously, so that the first login has data.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from cryptography import x509

from idp.card.validation import (
    ChainedRevocationChecker,
    OcspRevocationChecker,
    RevocationChecker,
    RevocationUnavailableError,
)
from idp.card.validation.ocsp import Fetch, urllib_fetch
from idp.ops import metrics
from idp.revocation.crls import CrlStore, Freshness, Get, http_get
from idp.revocation.ocsp_cache import CachedOcspChecker
from idp.revocation.settings import RevocationSettings
from idp.storage.ephemeral import EphemeralStore

__all__ = ["JITTER", "RevocationData"]

log = logging.getLogger(__name__)

JITTER = 0.1
"""Each sleep of the refresher is shortened by a random fraction up to this."""


class RevocationData:
    """See the module docstring."""

    def __init__(
        self,
        settings: RevocationSettings,
        *,
        store: Callable[[], EphemeralStore],
        required: bool = True,
        clock_skew: timedelta = timedelta(minutes=5),
        crl_get: Get = http_get,
        ocsp_fetch: Fetch = urllib_fetch,
    ) -> None:
        self.settings = settings
        self.required = required
        self.anchors: tuple[x509.Certificate, ...] = ()
        self.crls: CrlStore | None = None
        self.ocsp: CachedOcspChecker | None = None
        if settings.has_crls:
            self.crls = CrlStore(
                files=settings.crl_files,
                urls=settings.crl_urls,
                fetch_timeout=settings.crl_fetch_timeout,
                grace=timedelta(seconds=settings.crl_grace_seconds),
                max_age=timedelta(seconds=settings.crl_max_age_seconds),
                clock_skew=clock_skew,
                get=crl_get,
            )
        if settings.ocsp_url is not None:
            self.ocsp = CachedOcspChecker(
                OcspRevocationChecker(
                    url=settings.ocsp_url,
                    fetch=ocsp_fetch,
                    timeout=settings.ocsp_timeout,
                    allowed_time_skew=clock_skew,
                ),
                store=store,
                max_age=timedelta(seconds=settings.ocsp_cache_max_age),
            )
        checkers: list[RevocationChecker] = [c for c in (self.ocsp, self.crls) if c is not None]
        self._chain = ChainedRevocationChecker(checkers) if checkers else None
        self._lock = threading.Lock()
        self._loaded_in: int | None = None  # the pid that made the first load
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def configured(self) -> bool:
        return self._chain is not None

    # -- the RevocationChecker protocol ------------------------------------------------------

    def check(
        self, certificate: x509.Certificate, issuer: x509.Certificate, *, now: datetime
    ) -> None:
        try:
            if self._chain is None:
                raise RevocationUnavailableError("no revocation source is configured")
            self._chain.check(certificate, issuer, now=now)
        except RevocationUnavailableError as exc:
            if self.required:
                metrics.REVOCATION_FAIL_CLOSED.labels(reason=metrics.label(exc.code)).inc()
            raise

    # -- keeping the data fresh ------------------------------------------------------------

    def set_anchors(self, anchors: Sequence[x509.Certificate]) -> None:
        """The CAs whose CRLs are accepted (every configured anchor)."""
        self.anchors = tuple(anchors)
        if self.crls is not None:
            self.crls.set_issuers(self.anchors)

    def ensure_running(self) -> None:
        """First use in this process: load every source, start the refresher (URLs only)."""
        pid = os.getpid()
        if self._loaded_in == pid or self.crls is None:
            return
        with self._lock:
            if self._loaded_in == pid:
                return
            self.crls.refresh()
            self._loaded_in = pid
            if self.settings.crl_urls:
                self._stop = threading.Event()
                self._thread = threading.Thread(
                    target=self._run, name="myna-crl-refresher", daemon=True
                )
                self._thread.start()

    def poll(self) -> None:
        """Re-read CRL files changed on disk (cheap; call often)."""
        if self.crls is not None:
            self.crls.poll_files()

    def refresh_now(self) -> int:
        """Refresh every CRL source at once; the number that failed."""
        return self.crls.refresh() if self.crls is not None else 0

    def next_sleep(self, now: datetime) -> float:
        assert self.crls is not None
        due = self.crls.next_refresh_in(
            now,
            interval=self.settings.crl_refresh_seconds,
            retry=self.settings.crl_retry_seconds,
        )
        return due * (1.0 - random.uniform(0.0, JITTER))  # noqa: S311 - jitter, not a secret

    def _run(self) -> None:
        stop = self._stop
        while not stop.wait(self.next_sleep(datetime.now(UTC))):
            try:
                self.refresh_now()
                self.freshness(datetime.now(UTC))  # keeps the age gauge current
            except Exception:  # pragma: no cover - the thread must survive anything
                log.exception("CRL refresher: unexpected error")

    def stop(self) -> None:
        """Stop the refresher (tests, orderly shutdown)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self._thread = None
        self._loaded_in = None

    # -- reporting -------------------------------------------------------------------------

    def freshness(self, now: datetime) -> list[Freshness]:
        """Per anchor: the CRL held and whether it is usable (empty without CRLs)."""
        if self.crls is None:
            return []
        return self.crls.freshness(now, self.anchors)
