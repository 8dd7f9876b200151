"""The semantic cache: embedders, a per-replica vector index, and its sync.

A lookup embeds the last user message (bounded: one worker thread, at most
``max_pending`` queued, ``embed_timeout_s`` each; over either it is a miss,
never a delay), searches the index for the request's *scope* (everything else
in the request, hashed: model, parameters, system prompt, earlier turns,
tenant), and serves the most similar candidate that passes the guard's word
checks (:mod:`gateway_app.cache.guard`) and that the judge
(:mod:`gateway_app.cache.judge`) accepts under the model's profile. The judge
compares the two prompts' token states from the local all-MiniLM-L6-v2 (the
query's come with its embedding; a cached prompt's are kept in a bounded
cache, or recomputed), whichever embedder finds the candidates.

The index is brute force in numpy per scope (a scope holds the variants of one
conversation prefix, so it stays small). Replicas share entries through a
Redis stream (plain XADD/XREAD: every cloud's managed Redis has them, no
vector module needed): each replica appends what it stores and tails the
stream into its own index, warming from the stream's retained history at
start. The cached responses themselves live in the exact store under their
exact keys, so TTLs and deletions apply to semantic hits too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from gateway_app.aio import pause
from gateway_app.cache.guard import Features, GuardPolicy, Screen, Verdict, screen
from gateway_app.cache.judge import EncodingCache, JudgeModel, pair_features

if TYPE_CHECKING:
    import numpy as np

    from gateway_app.cache.minilm import Encoding
    from gateway_app.config import SemanticCacheConfig

log = logging.getLogger("gateway_app.cache")


class Embedder(Protocol):
    """Text to a unit-length vector; None when it cannot answer in time."""

    async def embed(self, text: str) -> np.ndarray | None:
        """The embedding of ``text``, or None (over capacity, too slow, failed)."""
        ...


class LocalEmbedder:
    """all-MiniLM-L6-v2 in-process (numpy), on one worker thread, loaded on first use.

    Also the judge's encoder: :meth:`encode` gives a prompt's token states, kept
    in a cache bounded in bytes (``cache_bytes``) so a cached prompt's states are
    computed once while it is in use.
    """

    def __init__(
        self, timeout_s: float = 0.5, max_pending: int = 16, cache_bytes: int = 64 << 20
    ) -> None:
        self.timeout_s = timeout_s
        self.max_pending = max_pending
        self.pending = 0
        self.encodings = EncodingCache(cache_bytes)
        self._model: Any = None
        # One thread: embedding is CPU-bound; a second would only contend with the
        # event loop for the same cores. numpy's matmul releases the GIL meanwhile.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="aigw-embed")

    def _encode_sync(self, text: str) -> Encoding:
        if self._model is None:
            from gateway_app.cache.minilm import MiniLM

            self._model = MiniLM()
        return self._model.encode(text)

    async def warm(self) -> None:
        """Load the weights now (start-up) rather than on the first lookup."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._encode_sync, "warm")

    async def embed(self, text: str) -> np.ndarray | None:
        """The embedding, or None when ``max_pending`` are queued or it took too long."""
        encoding = await self.encode(text)
        return None if encoding is None else encoding.vector

    async def encode(self, text: str) -> Encoding | None:
        """Tokens, states and embedding of ``text`` (cached), or None (over capacity, slow)."""
        found = self.encodings.get(text)
        if found is not None:
            return found
        if self.pending >= self.max_pending:
            return None
        self.pending += 1
        try:
            future = asyncio.get_running_loop().run_in_executor(
                self._executor, self._encode_sync, text
            )
            async with asyncio.timeout(self.timeout_s):
                encoding = await future
        except TimeoutError:
            return None
        finally:
            self.pending -= 1
        self.encodings.put(text, encoding)
        return encoding


class ProviderEmbedder:
    """Embeddings from one of the gateway's own models (``POST /v1/embeddings`` upstream)."""

    def __init__(self, call: Callable[[str], Any], timeout_s: float = 0.5) -> None:
        # ``call(text)`` returns the OpenAI-shaped embeddings response body (bytes).
        self.call = call
        self.timeout_s = timeout_s

    async def embed(self, text: str) -> np.ndarray | None:
        """The unit-length embedding from the upstream, or None on failure or timeout."""
        import numpy as np

        try:
            async with asyncio.timeout(self.timeout_s):
                raw = await self.call(text)
            vector = np.asarray(orjson.loads(raw)["data"][0]["embedding"], dtype=np.float32)
        except Exception as exc:  # a failed embedding is a cache miss, not a failed request
            log.warning("semantic cache: embedding failed: %s", type(exc).__name__)
            return None
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else None


@dataclass(slots=True)
class IndexEntry:
    """One cached request in the vector index."""

    scope: str
    key: str  # the exact-cache key holding the response
    text: str
    vector: np.ndarray
    expires_at: float  # wall clock: entries travel between replicas
    features: Features | None = field(default=None, repr=False)

    def to_bytes(self) -> bytes:
        """Wire form for the Redis stream."""
        return (
            orjson.dumps({"s": self.scope, "k": self.key, "t": self.text, "e": self.expires_at})
            + b"\n"
            + self.vector.astype("<f4").tobytes()
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> IndexEntry:
        """Inverse of :meth:`to_bytes`."""
        import numpy as np

        head, _, vector = raw.partition(b"\n")
        meta = orjson.loads(head)
        return cls(meta["s"], meta["k"], meta["t"], np.frombuffer(vector, "<f4"), meta["e"])


@dataclass(slots=True)
class Match:
    """A semantic hit: the entry and its cosine similarity."""

    entry: IndexEntry
    similarity: float


@dataclass(frozen=True, slots=True)
class Lookup:
    """What one semantic lookup found: the hit (if any) and the guard's verdict.

    ``similarity`` and ``verdict`` describe the hit, or else the most similar
    candidate the guard looked at (None when the scope was empty): the metric
    and the access log record both, so refused near-matches are visible too.
    """

    match: Match | None
    similarity: float | None
    verdict: Verdict | None


_NOTHING = Lookup(None, None, None)


class _Scope:
    __slots__ = ("entries", "matrix")

    def __init__(self) -> None:
        self.entries: list[IndexEntry] = []
        self.matrix: Any = None  # rows of entries' vectors, rebuilt after a change


class VectorIndex:
    """Brute-force cosine search per scope, bounded in entries (oldest evicted)."""

    def __init__(self, max_entries: int = 100_000, clock: Callable[[], float] = time.time):
        self.max_entries = max_entries
        self.clock = clock
        self._scopes: dict[str, _Scope] = {}
        self._order: deque[IndexEntry] = deque()
        self._keys: set[str] = set()

    def __len__(self) -> int:
        return len(self._order)

    def add(self, entry: IndexEntry) -> None:
        """Index ``entry`` (once per exact key)."""
        if entry.key in self._keys or entry.expires_at <= self.clock():
            return
        self._keys.add(entry.key)
        scope = self._scopes.setdefault(entry.scope, _Scope())
        scope.entries.append(entry)
        scope.matrix = None
        self._order.append(entry)
        while len(self._order) > self.max_entries:
            self._remove(self._order.popleft())

    def discard(self, entry: IndexEntry) -> None:
        """Forget ``entry`` (its response expired from the store)."""
        if entry.key in self._keys:
            self._order.remove(entry)
            self._remove(entry)

    def _remove(self, entry: IndexEntry) -> None:
        self._keys.discard(entry.key)
        scope = self._scopes.get(entry.scope)
        if scope is None:
            return
        scope.entries.remove(entry)
        scope.matrix = None
        if not scope.entries:
            del self._scopes[entry.scope]

    def search(
        self, scope_key: str, vector: np.ndarray, text: str, policy: GuardPolicy
    ) -> tuple[list[Candidate], Lookup]:
        """The entries for the judge to weigh (most similar first), and the first refusal.

        A candidate is at or above the policy's floor and passes the word checks;
        at most :data:`MAX_JUDGED` are returned. The refusal (a word check, or
        "similarity" for the nearest entry below the floor) is what the lookup
        reports when the judge accepts none.
        """
        import numpy as np

        scope = self._scopes.get(scope_key)
        if scope is None:
            return [], _NOTHING
        if scope.matrix is None:
            scope.matrix = np.vstack([e.vector for e in scope.entries])
        similarities = scope.matrix @ vector
        now = self.clock()
        query = Features(text)
        first: Lookup = _NOTHING
        candidates: list[Candidate] = []
        for index in np.argsort(-similarities)[:8]:
            similarity = float(similarities[index])
            entry = scope.entries[int(index)]
            if entry.expires_at <= now:
                continue
            if similarity < policy.floor:
                if first.verdict is None:
                    first = Lookup(None, similarity, Verdict(False, "similarity"))
                break
            if entry.features is None:
                entry.features = Features(entry.text)
            found = screen(query, entry.features)
            if found.refusal is None:
                candidates.append(Candidate(entry, similarity, found))
                if len(candidates) == MAX_JUDGED:
                    break
            elif first.verdict is None:
                first = Lookup(None, similarity, Verdict(False, found.refusal))
        return candidates, first


# The judge weighs at most this many candidates per lookup (each may cost a
# forward pass of the cached prompt when its states are not held).
MAX_JUDGED = 2


@dataclass(frozen=True, slots=True)
class Candidate:
    """A cached entry near the query that passed the word checks: the judge decides."""

    entry: IndexEntry
    similarity: float
    screen: Screen


class IndexSync(Protocol):
    """How a replica shares the entries it indexes with the others."""

    async def publish(self, entry: IndexEntry) -> None:
        """Make ``entry`` visible to every replica (this one included)."""
        ...

    async def start(self) -> None:
        """Begin receiving other replicas' entries."""
        ...

    async def stop(self) -> None:
        """Stop receiving."""
        ...


class LocalIndexSync:
    """One replica: publishing is adding to the local index."""

    def __init__(self, index: VectorIndex) -> None:
        self.index = index

    async def publish(self, entry: IndexEntry) -> None:
        """Add ``entry`` to the local index."""
        self.index.add(entry)

    async def start(self) -> None:
        """Nothing to receive."""

    async def stop(self) -> None:
        """Nothing to stop."""


class RedisIndexSync:
    """Replicas share index entries through one capped Redis stream."""

    def __init__(
        self, client: Any, index: VectorIndex, stream: str = "aigw:semcache:index"
    ) -> None:
        self.client = client
        self.index = index
        self.stream = stream
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_id = b"0"  # from the start: warm with the retained history

    async def publish(self, entry: IndexEntry) -> None:
        """Add locally now and append to the stream (capped near the index size)."""
        self.index.add(entry)
        await self.client.xadd(
            self.stream, {b"e": entry.to_bytes()}, maxlen=self.index.max_entries, approximate=True
        )

    async def pull(self, block_ms: int | None = None) -> int:
        """Read new stream entries into the index; how many arrived."""
        reply = await self.client.xread({self.stream: self._last_id}, count=1000, block=block_ms)
        added = 0
        for _stream, messages in reply or ():
            for message_id, fields in messages:
                self._last_id = message_id
                try:
                    self.index.add(IndexEntry.from_bytes(fields[b"e"]))
                    added += 1
                except (KeyError, ValueError):
                    log.warning("semantic cache: skipped a malformed index entry")
        return added

    async def start(self) -> None:
        """Warm from the stream, then tail it in the background."""
        while await self.pull():
            pass
        self._task = asyncio.get_running_loop().create_task(self._tail())

    async def _tail(self) -> None:
        while not self._stopping:
            try:
                await self.pull(block_ms=1000)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: keep serving from the local index
                # redis-py may turn the cancellation of a blocked XREAD into another
                # error: the flag, not the exception type, says we are stopping.
                if self._stopping:
                    return
                log.warning("semantic cache: index sync failed: %s", type(exc).__name__)
                await pause(1.0)

    async def stop(self) -> None:
        """Stop tailing (bounded: a blocked read ends within its block time)."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=5.0)


@dataclass(slots=True)
class SemanticCache:
    """An embedder, the index and its sync, the judge, with the config's bounds.

    ``encoder`` gives the judge its token states: the local model, also when the
    ``embedder`` that finds candidates is one of the gateway's embeddings models.
    """

    embedder: Embedder
    index: VectorIndex
    sync: IndexSync
    config: SemanticCacheConfig
    encoder: LocalEmbedder
    judge: JudgeModel

    async def lookup(
        self, scope: str, vector: np.ndarray, text: str, policy: GuardPolicy
    ) -> Lookup:
        """The most similar cached request that the word checks and the judge accept.

        Reports the verdict on the hit, or else on the nearest candidate the judge
        weighed, or else the first refusal of the search. A prompt whose states
        cannot be had in time (the encoder over capacity) is a miss.
        """
        candidates, first = self.index.search(scope, vector, text, policy)
        if not candidates:
            return first
        query = await self.encoder.encode(text)
        judged: Lookup | None = None
        for candidate in candidates:
            cached = None if query is None else await self.encoder.encode(candidate.entry.text)
            if query is None or cached is None:
                verdict = Verdict(False, "judge-unavailable", candidate.screen.alignment)
            else:
                found = candidate.screen
                features = pair_features(query, cached, found.alignment == "aligned", found.soft)
                probability = self.judge.probability(features)
                accepted = probability >= policy.judge
                verdict = Verdict(
                    accepted,
                    found.alignment if accepted else "judge",
                    found.alignment,
                    probability,
                )
                if accepted:
                    match = Match(candidate.entry, candidate.similarity)
                    return Lookup(match, candidate.similarity, verdict)
            if judged is None:
                judged = Lookup(None, candidate.similarity, verdict)
        assert judged is not None
        return judged
