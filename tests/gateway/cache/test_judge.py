"""The judge: what it compares, the memory its inputs take, and a lookup without them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from gateway_app.cache.guard import PROFILES
from gateway_app.cache.judge import (
    FEATURES,
    EncodingCache,
    JudgeModel,
    default_model,
    differing_similarity,
    load,
)
from gateway_app.cache.semantic import (
    IndexEntry,
    LocalIndexSync,
    Lookup,
    SemanticCache,
    VectorIndex,
)
from gateway_app.config import SemanticCacheConfig
from tests.gateway.cache.helpers import embedder


@pytest.fixture(scope="module")
def model() -> Any:
    local = embedder()
    return local._encode_sync  # the forward pass the embedder runs on its worker thread


def test_what_differs_is_compared_not_what_is_shared(model: Any) -> None:
    def differing(a: str, b: str) -> float:
        return differing_similarity(model(a), model(b), 6)

    # One side only adds punctuation or framing: nothing to weigh against the pair.
    assert differing("What is the capital of France", "what is the capital of France?") == 1.0
    assert differing("Reset my password", "Please reset my password, thanks") == 1.0
    # Words on one side only that carry content: a qualifier, the other request's answer
    # would not do.
    assert differing("Reset my password.", "Reset my password on the mobile app.") == 0.0
    # A word swapped for one of the same meaning points the same way as the original;
    # the part that carries another question points elsewhere.
    report = "this incident report: 'The API was down for 40 minutes after a bad deploy.'"
    same = differing(f"Summarize {report}", f"Give me a summary of {report}")
    other = differing(f"Summarize {report}", f"What follow-up does {report} call for?")
    assert same > other + 0.2
    # Either way round.
    assert differing("Summarize the memo.", "List the memo's risks.") == pytest.approx(
        differing("List the memo's risks.", "Summarize the memo."), abs=1e-6
    )


def test_the_committed_model_and_its_profiles() -> None:
    document = load()
    judge = default_model()
    assert document["model"]["features"] == list(FEATURES)
    # The default asks more of the judge than the opt-in profile, and both cut
    # somewhere a probability can reach.
    assert 0.5 < PROFILES["loose"].judge < PROFILES["strict"].judge < 1.0
    assert PROFILES["strict"].judge == document["profiles"]["strict"]["probability"]
    # More of the differing part pointing the same way never lowers the probability.
    features = [0.9, 0.4, 0.4, 0.0, 0.0, 0.0]
    closer = [0.9, 0.9, 0.9, 0.0, 0.0, 0.0]
    assert judge.probability(tuple(closer)) > judge.probability(tuple(features))
    with pytest.raises(ValueError, match=r"refit it with `python -m bench.semantic_eval --fit`"):
        JudgeModel.from_dict({**document["model"], "features": ["cosine"]})


def test_the_states_held_stay_within_their_bound(model: Any) -> None:
    prompts = [f"How do I rotate the API key of service number {i} in staging?" for i in range(6)]
    one = EncodingCache(1 << 30)
    one.put(prompts[0], model(prompts[0]))
    size = one.bytes  # float16 states of two layers, the vector, the tokens
    assert 10_000 < size < 60_000
    cache = EncodingCache(3 * size + size // 2)
    for text in prompts:
        cache.put(text, model(text))
        assert cache.bytes <= cache.max_bytes
    assert len(cache) == 3
    # The least recently used went first.
    assert cache.get(prompts[0]) is None and cache.get(prompts[5]) is not None
    # One prompt larger than the whole bound is not held at all.
    tiny = EncodingCache(size // 2)
    tiny.put(prompts[0], model(prompts[0]))
    assert len(tiny) == 0 and tiny.bytes == 0


CACHED = "How do I set up an out-of-office reply in Outlook?"
QUERY = "How can I set up an out-of-office reply in Outlook?"


def _lookup(before: Callable[[SemanticCache], None]) -> tuple[Lookup, SemanticCache]:
    """Index ``CACHED``, embed ``QUERY``, call ``before``, then look ``QUERY`` up (strict)."""
    local = embedder()
    index = VectorIndex(100)
    semantic = SemanticCache(
        local, index, LocalIndexSync(index), SemanticCacheConfig(), local, default_model()
    )

    async def run() -> Lookup:
        index.add(IndexEntry("s", "k1", CACHED, await local.embed(CACHED), time.time() + 60))
        vector = await local.embed(QUERY)
        before(semantic)
        return await semantic.lookup("s", vector, QUERY, PROFILES["strict"])

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(run()), semantic
    finally:
        loop.close()


def test_a_cached_prompt_whose_states_are_gone_is_encoded_again() -> None:
    def forget(semantic: SemanticCache) -> None:
        # An entry from another replica, or evicted here: no states held for it.
        semantic.encoder.encodings = EncodingCache(semantic.encoder.encodings.max_bytes)

    found, semantic = _lookup(forget)
    assert found.match is not None and found.match.entry.key == "k1"
    assert found.verdict is not None and found.verdict.accepted
    assert found.verdict.probability is not None
    assert found.verdict.probability >= PROFILES["strict"].judge
    # Encoded once, held for the next lookup near it.
    assert semantic.encoder.encodings.get(CACHED) is not None


def test_without_the_judge_s_inputs_the_lookup_is_a_miss(monkeypatch: pytest.MonkeyPatch) -> None:
    def busy(semantic: SemanticCache) -> None:
        original = semantic.encoder.encode

        async def over_capacity(text: str) -> Any:
            # The encoder is busy: the cached prompt's states cannot be had in time.
            return None if text == CACHED else await original(text)

        monkeypatch.setattr(semantic.encoder, "encode", over_capacity)

    found, _ = _lookup(busy)
    assert found.match is None
    # The log and the metric say why: the candidate was near, the judge could not weigh it.
    assert found.verdict is not None and found.verdict.reason == "judge-unavailable"
    assert found.similarity is not None and found.similarity > 0.9
