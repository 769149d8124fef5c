"""CRLs from files and URLs, verified against the trust anchors and swapped in atomically.

:class:`CrlStore` owns one :class:`~idp.card.validation.CrlRevocationChecker` (pure: it gets
CRL bytes and a ``now``) and does the I/O around it:

- ``refresh()`` reads every configured source (a file, or an http(s) URL fetched with
  ``urllib``, bounded by ``IDP_CRL_FETCH_TIMEOUT`` and ``MAX_CRL_BYTES``) and hands the bytes
  to the checker's ``load``, which verifies the signature against the anchors, refuses a CRL
  past its nextUpdate (+ grace) and replaces the held CRL of that issuer in one dict swap, only
  with one at least as recent. A source that fails (unreachable, unreadable, not signed by an
  anchor, out of date) keeps the previous good CRL: the failure is counted and logged.
- ``poll_files()`` re-reads only the files whose modification time changed (cheap; called by
  the trust holder at most once a second so that a CRL written by a cron job counts at once).
- ``set_issuers()`` rebuilds the checker when the anchors change, reloading the last good
  bytes of every source.
- ``freshness(now)`` says, per anchor, which CRL is held and whether it is stale (past
  nextUpdate + ``IDP_CRL_GRACE`` or older than ``IDP_CRL_MAX_AGE``): ``/readyz`` and the
  ``myna_crl_age_seconds`` gauge use it. A stale CRL fails every check closed with
  ``RevocationStaleError`` (``revocation_stale``).

Each instance (each process) fetches on its own; nothing is shared through Redis.
"""

from __future__ import annotations

import logging
import threading
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from idp.card.validation import (
    CertificateValidationError,
    CrlRevocationChecker,
)
from idp.card.validation.crl import MAX_CRL_BYTES, CrlSummary, key_id
from idp.ops import metrics

__all__ = ["CrlSource", "CrlStore", "Freshness", "http_get", "issuer_label"]

log = logging.getLogger(__name__)

Get = Callable[[str, float], bytes]
"""``get(url, timeout) -> body``; raises ``OSError`` or ``ValueError`` without an answer."""


def http_get(url: str, timeout: float) -> bytes:
    """GET a CRL over http(s): the body, at most ``MAX_CRL_BYTES``."""
    request = urllib.request.Request(url, headers={"Accept": "application/pkix-crl"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        data: bytes = response.read(MAX_CRL_BYTES + 1)
    if len(data) > MAX_CRL_BYTES:
        raise ValueError("CRL download is too large")
    return data


def issuer_label(certificate: x509.Certificate) -> str:
    """``CN#key id`` (8 hex digits): a bounded metric label naming one CA generation."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common = str(names[0].value) if names else "anchor"
    return f"{common}#{key_id(certificate).hex()[:8]}"


@dataclass
class CrlSource:
    """One configured CRL: a file or a URL, and what the last attempts gave."""

    name: str  # "file 1", "url 2": safe to show (no path or URL)
    path: Path | None = None
    url: str | None = None
    last_good: bytes | None = None
    last_success: datetime | None = None
    last_failure: datetime | None = None
    last_error: str | None = None
    failures: int = 0  # consecutive
    mtime: float | None = field(default=None, repr=False)

    def read(self, get: Get, timeout: float) -> bytes:
        if self.path is not None:
            stat = self.path.stat()
            data = self.path.read_bytes()
            self.mtime = stat.st_mtime
            if len(data) > MAX_CRL_BYTES:
                raise ValueError("CRL file is too large")
            return data
        assert self.url is not None
        return get(self.url, timeout)

    def changed_on_disk(self) -> bool:
        if self.path is None:
            return False
        try:
            return self.path.stat().st_mtime != self.mtime
        except OSError:
            return self.mtime is not None


@dataclass(frozen=True)
class Freshness:
    """The CRL held for one anchor at ``now``: ``stale`` is the reason it may not be used."""

    issuer: x509.Certificate
    summary: CrlSummary | None
    stale: str | None

    @property
    def label(self) -> str:
        return issuer_label(self.issuer)

    @property
    def usable(self) -> bool:
        return self.summary is not None and self.stale is None


class CrlStore:
    """The CRLs of one process (see the module docstring). Usable as a ``RevocationChecker``."""

    def __init__(
        self,
        *,
        files: Sequence[Path] = (),
        urls: Sequence[str] = (),
        fetch_timeout: float = 30.0,
        grace: timedelta = timedelta(minutes=5),
        max_age: timedelta | None = None,
        clock_skew: timedelta = timedelta(minutes=5),
        get: Get = http_get,
    ) -> None:
        self.sources = [CrlSource(f"file {i}", path=p) for i, p in enumerate(files, 1)] + [
            CrlSource(f"url {i}", url=u) for i, u in enumerate(urls, 1)
        ]
        self._timeout = fetch_timeout
        self._grace = grace
        self._max_age = max_age
        self._skew = clock_skew
        self._get = get
        self._lock = threading.Lock()
        self._checker = self._new_checker(())

    def _new_checker(self, issuers: Sequence[x509.Certificate]) -> CrlRevocationChecker:
        return CrlRevocationChecker(
            issuers=issuers,
            clock_skew=self._skew,
            next_update_grace=self._grace,
            max_age=self._max_age,
        )

    @property
    def checker(self) -> CrlRevocationChecker:
        return self._checker

    def check(
        self, certificate: x509.Certificate, issuer: x509.Certificate, *, now: datetime
    ) -> None:
        self._checker.check(certificate, issuer, now=now)

    def set_issuers(
        self, issuers: Sequence[x509.Certificate], *, now: datetime | None = None
    ) -> None:
        """Trust these anchors from now on; reload the last good CRLs under them."""
        with self._lock:
            if tuple(issuers) == self._checker.issuers:
                return
            checker = self._new_checker(issuers)
            for source in self.sources:
                if source.last_good is not None:
                    try:
                        checker.load(source.last_good, now=now)
                    except CertificateValidationError as exc:
                        source.last_error = exc.code
            self._checker = checker

    def refresh(self, *, now: datetime | None = None, changed_only: bool = False) -> int:
        """Fetch every source (or only files changed on disk); the number that failed."""
        with self._lock:
            failed = 0
            for source in self.sources:
                if changed_only and not source.changed_on_disk():
                    continue
                if not self._refresh_one(source, now or datetime.now(UTC)):
                    failed += 1
            return failed

    def poll_files(self) -> None:
        """Re-read the files changed on disk, unless a refresh is running right now."""
        if not any(source.changed_on_disk() for source in self.sources):
            return
        if self._lock.acquire(blocking=False):
            try:
                now = datetime.now(UTC)
                for source in self.sources:
                    if source.changed_on_disk():
                        self._refresh_one(source, now)
            finally:
                self._lock.release()

    def _refresh_one(self, source: CrlSource, now: datetime) -> bool:
        try:
            data = source.read(self._get, self._timeout)
            self._checker.load(data, now=now)
        except (OSError, ValueError, CertificateValidationError) as exc:
            reason = exc.code if isinstance(exc, CertificateValidationError) else type(exc).__name__
            source.failures += 1
            source.last_failure = now
            source.last_error = reason
            metrics.CRL_FETCHES.labels(result="failure").inc()
            log.warning(
                "CRL %s: refresh failed (%s, %d in a row); keeping the previous CRL",
                source.name,
                reason,
                source.failures,
            )
            return False
        source.last_good = data
        source.last_success = now
        source.failures = 0
        source.last_error = None
        metrics.CRL_FETCHES.labels(result="success").inc()
        return True

    def freshness(self, now: datetime, anchors: Sequence[x509.Certificate]) -> list[Freshness]:
        """Per anchor: the CRL held and why it is stale (None when usable); updates the gauge."""
        checker = self._checker
        report = []
        for anchor in anchors:
            summary = checker.summary_for(anchor)
            stale = None if summary is None else checker.staleness(summary, now)
            item = Freshness(anchor, summary, stale)
            if summary is not None:
                age = (now - summary.this_update).total_seconds()
                metrics.CRL_AGE.labels(issuer=item.label).set(max(age, 0.0))
            report.append(item)
        return report

    def next_refresh_in(self, now: datetime, *, interval: float, retry: float) -> float:
        """Seconds until the next refresh is due (before jitter): the interval, sooner when a
        held CRL's nextUpdate comes first, ``retry`` after a failure."""
        delay = interval
        if any(source.failures for source in self.sources):
            delay = min(delay, retry)
        for summary in self._checker.summaries:
            until = (summary.next_update - now).total_seconds()
            delay = min(delay, until) if until > 0 else min(delay, retry)
        return max(delay, 0.1)
