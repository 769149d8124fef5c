"""The Redis store against a real Redis: TTLs, single use, replay caches, counters, outages."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from idp.storage.ephemeral import EphemeralStore, LazyStore, StoreUnavailableError


@pytest.fixture
def store(redis_url: str) -> Iterator[EphemeralStore]:
    instance = EphemeralStore.from_url(redis_url, prefix=f"test:{uuid.uuid4().hex}:")
    yield instance
    instance.close()


def test_put_get_with_ttl(store: EphemeralStore) -> None:
    store.put("k", b"value", ttl=30)
    assert store.get("k") == b"value"
    ttl = store.ttl("k")
    assert ttl is not None and 0 < ttl <= 30
    assert store.get("missing") is None
    assert store.ttl("missing") is None


@pytest.mark.parametrize("ttl", [0, -1, 1.5, True, None])
def test_every_key_needs_a_positive_ttl(store: EphemeralStore, ttl: object) -> None:
    with pytest.raises(ValueError, match="ttl"):
        store.put("k", b"v", ttl=ttl)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ttl"):
        store.add_once("k", ttl=ttl)  # type: ignore[arg-type]


def test_keys_expire(store: EphemeralStore) -> None:
    store.put("short", b"v", ttl=1)
    time.sleep(1.2)
    assert store.get("short") is None


def test_take_is_single_use_under_contention(store: EphemeralStore) -> None:
    store.put("code", b"secret", ttl=30)
    winners: list[bytes] = []
    barrier = threading.Barrier(8)

    def racer() -> None:
        barrier.wait()
        value = store.take("code")
        if value is not None:
            winners.append(value)

    threads = [threading.Thread(target=racer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert winners == [b"secret"]
    assert store.get("code") is None


def test_take_marking_leaves_a_marker_only_when_the_value_existed(store: EphemeralStore) -> None:
    store.put("code", b"v", ttl=30)
    assert store.take_marking("code", marker="spent", ttl=30) == b"v"
    assert store.exists("spent")
    assert store.take_marking("code", marker="spent", ttl=30) is None
    assert store.take_marking("never", marker="never-spent", ttl=30) is None
    assert not store.exists("never-spent")
    ttl = store.ttl("spent")
    assert ttl is not None and ttl <= 30


def test_take_leaving_marks_for_the_remaining_life_under_contention(
    store: EphemeralStore,
) -> None:
    store.put("rt", b"record", ttl=40)
    winners: list[bytes] = []
    barrier = threading.Barrier(8)

    def racer() -> None:
        barrier.wait()
        value = store.take_leaving("rt", marker="spent-rt", mark="grant-1")
        if value is not None:
            winners.append(value)

    threads = [threading.Thread(target=racer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert winners == [b"record"]
    assert store.get("spent-rt") == b"grant-1"
    ttl = store.ttl("spent-rt")
    assert ttl is not None and 30 < ttl <= 40
    assert store.take_leaving("never", marker="never-spent", mark="x") is None
    assert not store.exists("never-spent")


def test_add_once_is_a_replay_cache(store: EphemeralStore) -> None:
    assert store.add_once("jti:1", ttl=30) is True
    assert store.add_once("jti:1", ttl=30) is False
    assert store.add_once("jti:2", ttl=30) is True


def test_json_helpers(store: EphemeralStore) -> None:
    store.put_json("doc", {"name": "山田　太郎", "n": 1}, ttl=30)
    assert store.get_json("doc") == {"name": "山田　太郎", "n": 1}
    assert store.take_json("doc") == {"name": "山田　太郎", "n": 1}
    assert store.take_json("doc") is None


def test_hit_counts_in_a_window(store: EphemeralStore) -> None:
    assert [store.hit("rate", window=30) for _ in range(3)] == [1, 2, 3]
    ttl = store.ttl("rate")
    assert ttl is not None and ttl <= 30


def test_delete_and_prefix_isolation(store: EphemeralStore, redis_url: str) -> None:
    other = EphemeralStore.from_url(redis_url, prefix=f"test:{uuid.uuid4().hex}:")
    try:
        store.put("shared-name", b"mine", ttl=30)
        assert other.get("shared-name") is None
        assert store.delete("shared-name", "absent") == 1
        assert store.delete() == 0
    finally:
        other.close()


def test_publish_and_subscribe(store: EphemeralStore) -> None:
    with store.subscription("events") as wait:
        assert wait(0.05) is None
        assert store.publish("events", "done") == 1
        assert wait(2.0) == b"done"


def test_unreachable_redis_is_store_unavailable() -> None:
    store = EphemeralStore.from_url("redis://127.0.0.1:1/0", timeout=0.5)
    try:
        for operation in (
            lambda: store.get("k"),
            lambda: store.put("k", b"v", ttl=5),
            lambda: store.take("k"),
            lambda: store.add_once("k", ttl=5),
            lambda: store.take_marking("k", marker="m", ttl=5),
            lambda: store.hit("k", window=5),
            store.ping,
        ):
            with pytest.raises(StoreUnavailableError):
                operation()
    finally:
        store.close()


def test_lazy_store_builds_once() -> None:
    built: list[int] = []

    def factory() -> EphemeralStore:
        built.append(1)
        return EphemeralStore.from_url("redis://127.0.0.1:1/0")

    lazy = LazyStore(factory)
    assert built == []
    assert lazy.get() is lazy.get()
    assert built == [1]
    lazy.close()


def test_embedded_redis(tmp_path: Path) -> None:
    store = EphemeralStore.embedded(tmp_path / "var" / "redis.db", prefix="embedded:")
    try:
        store.put("k", b"v", ttl=30)
        assert store.take("k") == b"v"
        assert store.take("k") is None
        assert store.add_once("j", ttl=30) and not store.add_once("j", ttl=30)
        store.put("code", b"c", ttl=30)
        assert store.take_marking("code", marker="spent", ttl=30) == b"c"
    finally:
        store.close()
    assert not (tmp_path / "var" / "redis.db.settings").exists()
