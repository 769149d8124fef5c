"""Rate limits on what an outsider can make the provider do: counters in Redis.

Fixed windows (:meth:`idp.storage.ephemeral.EphemeralStore.hit`: ``INCR`` + ``EXPIRE NX``), so
every instance shares the same counts. Limits (``IDP_RATE_*``, ``0`` switches one off):

- login transactions created per client (``IDP_RATE_LOGINS_PER_CLIENT``) and per remote address
  (``IDP_RATE_LOGINS_PER_ADDRESS``): ``/authorize`` and the page's "try again";
- pickups per remote address (``IDP_RATE_PICKUPS_PER_ADDRESS``): ``POST /device/v1/pickup``.

An IPv6 address is counted by its /64 (one subscriber usually holds a whole /64). Behind a proxy
set ``IDP_TRUSTED_PROXY_COUNT`` so the remote address is the client's, not the proxy's.
Over a limit: :class:`RateLimitedError` with ``retry_after`` seconds (the edge answers 429 with
``Retry-After``).
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from idp.config import Settings
from idp.storage.ephemeral import EphemeralStore

__all__ = [
    "RateLimit",
    "RateLimitedError",
    "address_key",
    "check_login_creation",
    "check_pickup",
]


class RateLimitedError(Exception):
    """Too many events in the current window; retry after ``retry_after`` seconds."""

    def __init__(self, name: str, retry_after: int) -> None:
        super().__init__(f"rate limit {name} exceeded; retry after {retry_after} s")
        self.name = name
        self.retry_after = retry_after


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` events per ``window`` seconds for each subject (0: no limit)."""

    name: str
    limit: int
    window: int

    def hit(self, store: EphemeralStore, subject: str) -> None:
        """Count one event for ``subject``; raise :class:`RateLimitedError` past the limit."""
        if self.limit <= 0:
            return
        digest = hashlib.sha256(subject.encode("utf-8")).hexdigest()[:32]
        key = f"rate:{self.name}:{digest}"
        count = store.hit(key, window=self.window)
        if count > self.limit:
            left = store.ttl(key)
            raise RateLimitedError(self.name, max(1, left if left is not None else self.window))


def address_key(remote_addr: str | None) -> str:
    """The subject for a remote address: the address, or its /64 for IPv6."""
    if not remote_addr:
        return "unknown"
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return remote_addr[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


def check_login_creation(
    store: EphemeralStore, settings: Settings, *, client_id: str, remote_addr: str | None
) -> None:
    """Count a new login transaction for this client and this address (raises past a limit)."""
    window = settings.rate_limit_window
    RateLimit("login-address", settings.rate_logins_per_address, window).hit(
        store, address_key(remote_addr)
    )
    RateLimit("login-client", settings.rate_logins_per_client, window).hit(store, client_id)


def check_pickup(store: EphemeralStore, settings: Settings, *, remote_addr: str | None) -> None:
    """Count a pickup attempt from this address (raises past the limit)."""
    RateLimit("pickup-address", settings.rate_pickups_per_address, settings.rate_limit_window).hit(
        store, address_key(remote_addr)
    )
