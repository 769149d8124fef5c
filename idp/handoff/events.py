"""Live status for the login page: server-sent events backed by Redis pub/sub.

Every state change of a transaction is published on ``<prefix>login-events:<transaction id>``
by :meth:`idp.handoff.transaction.TransactionStore.update` (and the transient ``checking`` by
:meth:`~idp.handoff.transaction.TransactionStore.announce`), whichever instance made it.

Each process holds **one** Redis connection for all its waiting pages: an :class:`EventHub`
thread ``PSUBSCRIBE``s to ``<prefix>login-events:*`` and hands each message to the local
streams of that transaction (a queue each). So a thousand waiting pages cost a thousand queues,
not a thousand Redis connections. The thread starts with the first waiting page and stops when
none has waited for :data:`IDLE_SECONDS`.

:func:`event_stream` is the body of ``GET /login/<id>/events`` (``text/event-stream``)::

    retry: 2000

    event: status
    data: {"state": "picked_up", "reason": null, "message": "..."}

    : heartbeat

It sends the current state first (so nothing that happened before the page subscribed is lost),
then each change; every ``heartbeat`` seconds a comment line, after which it re-reads the record
(a missed message, or the transaction expiring, is noticed then; expiry is also timed exactly).
It ends after ``card_verified`` or a final state. If Redis fails it sends
``{"state": null, "error": "unavailable"}`` and ends; the page then falls back to polling.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final

from redis.client import PubSub
from redis.exceptions import RedisError

from idp.handoff.transaction import (
    DEVICE_STATES,
    FINAL_STATES,
    GRACE_SECONDS,
    LoginTransaction,
    TransactionStore,
    TxState,
    events_channel,
)
from idp.storage.ephemeral import EphemeralStore, StoreUnavailableError

__all__ = [
    "CLOSING_STATES",
    "IDLE_SECONDS",
    "RETRY_MS",
    "EventHub",
    "event_stream",
]

log = logging.getLogger(__name__)

IDLE_SECONDS: Final = 10.0
"""The hub's thread stops after this long without a waiting page."""
RETRY_MS: Final = 2000
"""The ``retry:`` a browser's EventSource waits before reconnecting."""
SUBSCRIBE_TIMEOUT: Final = 10.0
RECONNECT_BACKOFF: Final = (0.1, 0.5, 1.0, 2.0)

#: After these states the stream ends (the page moves on or shows the outcome).
CLOSING_STATES: Final = frozenset({*FINAL_STATES, TxState.CARD_VERIFIED})

# Markers the hub puts in a waiter's queue besides messages.
_RESYNC: Final = b"\x00resync"
_UNAVAILABLE: Final = b"\x00unavailable"

_STATES: Final = frozenset(state.value for state in TxState)

Waiter = queue.SimpleQueue[bytes]


class EventHub:
    """One process's pattern subscription to the login events, fanned out to local waiters."""

    def __init__(self, store: Callable[[], EphemeralStore]) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._waiters: dict[str, set[Waiter]] = {}
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def waiting(self) -> int:
        """How many streams wait right now."""
        with self._lock:
            return sum(len(group) for group in self._waiters.values())

    @contextmanager
    def listen(self, transaction_id: str) -> Iterator[Waiter]:
        """A queue that receives the messages of ``transaction_id`` while the block runs.

        Returns once the subscription is active (so a change made after this returns is
        delivered); ``StoreUnavailableError`` if Redis cannot be subscribed to.
        """
        waiter: Waiter = queue.SimpleQueue()
        with self._lock:
            self._waiters.setdefault(transaction_id, set()).add(waiter)
            if self._thread is None:
                self._ready.clear()
                self._thread = threading.Thread(
                    target=self._run, name="myna-login-events", daemon=True
                )
                self._thread.start()
        try:
            if not self._ready.wait(SUBSCRIBE_TIMEOUT):
                raise StoreUnavailableError("the login event subscription did not start")
            yield waiter
        finally:
            with self._lock:
                group = self._waiters.get(transaction_id)
                if group is not None:
                    group.discard(waiter)
                    if not group:
                        del self._waiters[transaction_id]

    # -- the subscriber thread ----------------------------------------------------------------

    def _broadcast(self, marker: bytes) -> None:
        with self._lock:
            for group in self._waiters.values():
                for waiter in group:
                    waiter.put(marker)

    def _dispatch(self, transaction_id: str, data: bytes) -> None:
        with self._lock:
            for waiter in self._waiters.get(transaction_id, ()):
                waiter.put(data)

    def _idle(self, since: float | None, now: float) -> tuple[bool, float | None]:
        """(stop now?, idle since); stopping clears the thread slot under the lock."""
        with self._lock:
            if self._waiters:
                return False, None
            if since is None:
                return False, now
            if now - since < IDLE_SECONDS:
                return False, since
            self._thread = None
            self._ready.clear()
            return True, since

    def _run(self) -> None:
        try:
            self._subscribe_loop()
        finally:
            # However the loop ended (idle, or an unexpected error), the next page starts anew.
            with self._lock:
                if self._thread is threading.current_thread():
                    self._thread = None
                    self._ready.clear()

    def _subscribe_loop(self) -> None:
        failures = 0
        idle_since: float | None = None
        while True:
            try:
                store = self._store()
                pattern = store.key(events_channel("*"))
                prefix = len(store.key(events_channel("")))
                pubsub = PubSub(store.client.connection_pool)
            except (StoreUnavailableError, RedisError, OSError) as exc:
                log.warning("login events: no Redis (%s)", type(exc).__name__)
                self._broadcast(_UNAVAILABLE)
                stop, idle_since = self._idle(idle_since, time.monotonic())
                if stop:
                    return
                time.sleep(RECONNECT_BACKOFF[min(failures, len(RECONNECT_BACKOFF) - 1)])
                failures += 1
                continue
            try:
                pubsub.psubscribe(pattern)
                while True:
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None:
                        kind = message.get("type")
                        if kind == "psubscribe":
                            failures = 0
                            self._ready.set()
                            self._broadcast(_RESYNC)  # after a reconnect: re-read the records
                        elif kind == "pmessage":
                            channel = message["channel"]
                            data = message["data"]
                            if isinstance(channel, bytes) and isinstance(data, bytes):
                                self._dispatch(channel[prefix:].decode("ascii", "replace"), data)
                    stop, idle_since = self._idle(idle_since, time.monotonic())
                    if stop:
                        return
            except (RedisError, OSError) as exc:
                log.warning("login events: subscription lost (%s)", type(exc).__name__)
                self._ready.clear()
                self._broadcast(_UNAVAILABLE)
                time.sleep(RECONNECT_BACKOFF[min(failures, len(RECONNECT_BACKOFF) - 1)])
                failures += 1
            finally:
                try:
                    pubsub.close()
                except (RedisError, OSError):  # closing a broken connection
                    pass


# -- the stream ------------------------------------------------------------------------------


def _frame(event: str, data: dict[str, object]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _current(transaction: LoginTransaction | None, now: float) -> tuple[str, str | None]:
    if transaction is None:
        return TxState.EXPIRED.value, None
    return transaction.status(now).value, transaction.failure


def event_stream(
    hub: EventHub,
    transactions: TransactionStore,
    transaction_id: str,
    *,
    heartbeat: float,
    describe: Callable[[str, str | None], str],
    clock: Callable[[], float] = time.time,
) -> Iterator[str]:
    """The ``text/event-stream`` body for one login page (see the module docstring).

    ``describe(state, reason)`` is the text the page shows for a state.
    """
    last: tuple[str, str | None] | None = None
    deadline = clock() + transactions.ttl + GRACE_SECONDS

    def status(state: str, reason: str | None) -> str:
        return _frame(
            "status", {"state": state, "reason": reason, "message": describe(state, reason)}
        )

    try:
        with hub.listen(transaction_id) as waiter:
            yield f"retry: {RETRY_MS}\n\n"
            reread = True
            expires_at: float | None = None
            while True:
                now = clock()
                if reread:
                    transaction = transactions.get(transaction_id)
                    current = _current(transaction, now)
                    if current != last:
                        last = current
                        yield status(*current)
                    expires_at = (
                        float(transaction.expires_at)
                        if transaction is not None and TxState(transaction.state) in DEVICE_STATES
                        else None
                    )
                    reread = False
                assert last is not None
                if last[0] in CLOSING_STATES or now >= deadline:
                    return
                timeout = float(heartbeat)
                if expires_at is not None:
                    timeout = max(0.01, min(timeout, expires_at - now))
                try:
                    data = waiter.get(timeout=timeout)
                except queue.Empty:
                    if expires_at is None or clock() < expires_at:
                        yield ": heartbeat\n\n"
                    reread = True
                    continue
                if data == _UNAVAILABLE:
                    raise StoreUnavailableError("the login event subscription was lost")
                if data == _RESYNC:
                    reread = True
                    continue
                try:
                    message = json.loads(data)
                    state = str(message["state"])
                    reason = message.get("reason")
                except (ValueError, KeyError, TypeError):
                    log.warning("login events: unreadable message ignored")
                    continue
                current = (state, reason if isinstance(reason, str) else None)
                if current != last:
                    last = current
                    yield status(*current)
                if state not in _STATES:
                    continue  # transient (checking): the state itself has not changed
                reread = state in DEVICE_STATES  # its expiry may have changed
    except StoreUnavailableError as exc:
        log.warning("login events for %s ended: %s", transaction_id[:8], exc)
        yield _frame("status", {"state": None, "error": "unavailable"})
