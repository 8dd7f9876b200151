"""One contract for both cache stores and both index syncs: in-process and Redis."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest

from gateway_app.cache.guard import GuardPolicy, Screen, Verdict
from gateway_app.cache.semantic import (
    IndexEntry,
    LocalIndexSync,
    Lookup,
    RedisIndexSync,
    VectorIndex,
)
from gateway_app.cache.store import InProcessCacheStore, RedisCacheStore, redis_client
from tests.gateway.conftest import run_async
from tests.gateway.test_circuit_contract import redis_url  # noqa: F401  (session fixture)


@pytest.fixture(params=["in-process", "redis"])
def store(request: pytest.FixtureRequest) -> Any:
    if request.param == "in-process":
        return InProcessCacheStore(max_entries=3)
    url = request.getfixturevalue("redis_url")
    return RedisCacheStore.from_url(url, prefix=f"test:{time.monotonic_ns()}:")


def test_set_get_delete(store: Any) -> None:
    async def run() -> None:
        assert await store.get("k") is None
        await store.set("k", b"value", 60)
        assert await store.get("k") == b"value"
        await store.delete("k")
        assert await store.get("k") is None
        await store.set("zero", b"v", 0)  # a zero TTL stores nothing
        assert await store.get("zero") is None

    run_async(run())


def test_entries_expire(store: Any) -> None:
    async def run() -> None:
        await store.set("short", b"v", 0.05)
        assert await store.get("short") == b"v"
        deadline = time.monotonic() + 5
        while await store.get("short") is not None:
            assert time.monotonic() < deadline
            time.sleep(0.02)

    run_async(run())


def test_in_process_store_evicts_least_recently_used() -> None:
    async def run() -> None:
        store = InProcessCacheStore(max_entries=2)
        await store.set("a", b"1", 60)
        await store.set("b", b"2", 60)
        await store.get("a")
        await store.set("c", b"3", 60)
        assert await store.get("b") is None
        assert await store.get("a") == b"1"

    run_async(run())


def _entry(key: str, vector: list[float], scope: str = "s1", text: str = "hello") -> IndexEntry:
    v = np.asarray(vector, dtype=np.float32)
    return IndexEntry(scope, key, text, v / np.linalg.norm(v), time.time() + 60)


def test_index_search_floor_scope_and_word_checks() -> None:
    index = VectorIndex(10)
    index.add(_entry("k1", [1, 0, 0], text="enable 2FA"))
    query = np.asarray([1, 0.01, 0], dtype=np.float32)
    query /= np.linalg.norm(query)
    policy = GuardPolicy(judge=0.9, floor=0.9)
    # Above the floor and through the word checks: a candidate for the judge.
    candidates, first = index.search("s1", query, "how do I enable 2FA", policy)
    assert [c.entry.key for c in candidates] == ["k1"] and first == Lookup(None, None, None)
    assert candidates[0].screen == Screen(None, None, "aligned")
    assert candidates[0].similarity == pytest.approx(float(query[0]))
    assert index.search("s2", query, "enable 2FA", policy) == ([], Lookup(None, None, None))
    # A word check refuses outright; the lookup still says what it saw and why.
    candidates, refused = index.search("s1", query, "disable 2FA", policy)
    assert candidates == [] and refused.verdict == Verdict(False, "antonym")
    assert refused.similarity == pytest.approx(float(query[0]))
    # A qualifier is evidence for the judge, not a refusal.
    candidates, _ = index.search("s1", query, "enable 2FA on the mobile app", policy)
    assert candidates[0].screen == Screen(None, "qualifier", "reworded")
    far = np.asarray([0, 1, 0], dtype=np.float32)
    assert index.search("s1", far, "enable 2FA", policy) == (
        [],
        Lookup(None, 0.0, Verdict(False, "similarity")),
    )


def test_index_is_bounded() -> None:
    index = VectorIndex(2)
    for i in range(5):
        index.add(_entry(f"k{i}", [1, i, 0]))
    assert len(index) == 2


@pytest.mark.parametrize("kind", ["in-process", "redis"])
def test_sync_shares_entries_between_replicas(kind: str, request: pytest.FixtureRequest) -> None:
    async def run() -> None:
        one, two = VectorIndex(100), VectorIndex(100)
        if kind == "in-process":
            sync_one: Any = LocalIndexSync(one)
            await sync_one.publish(_entry("k1", [1, 0, 0]))
            assert len(one) == 1
            return
        url = request.getfixturevalue("redis_url")
        stream = f"test:sem:{time.monotonic_ns()}"
        client = redis_client(url)
        sync_one = RedisIndexSync(client, one, stream)
        await sync_one.publish(_entry("k1", [1, 0, 0]))
        # A replica starting later warms from the stream's history ...
        sync_two = RedisIndexSync(redis_client(url), two, stream)
        await sync_two.start()
        assert len(two) == 1
        # ... and then receives what others publish.
        await sync_one.publish(_entry("k2", [0, 1, 0], text="other"))
        deadline = time.monotonic() + 5
        while len(two) < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        vector = np.asarray([0, 1, 0], dtype=np.float32)
        candidates, _ = two.search("s1", vector, "other", GuardPolicy(judge=0.9, floor=0.9))
        assert [c.entry.key for c in candidates] == ["k2"]
        await sync_two.stop()
        await sync_one.stop()

    run_async(run())
