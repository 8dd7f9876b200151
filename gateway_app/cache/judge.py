"""The judge: a small model that decides whether two prompts ask the same thing.

The lexical guard (:mod:`gateway_app.cache.guard`) refuses what embeddings blur
and words show (numbers, names, negations, opposites, swapped roles). What it
lets through used to be decided by the cosine similarity of the two sentence
embeddings, and that fails in a way no threshold fixes: two prompts that share
most of their words ("Summarize this report: '...'" / "What follow-up does this
report call for: '...'") score 0.95-0.99 while they ask different things, and
full rewordings of the same request score 0.80. The embedding of the whole
prompt is dominated by what the two share.

The judge looks at what differs. Both prompts go through all-MiniLM-L6-v2 (the
forward pass the embedding already makes); the wordpieces the two have in
common (in order) are set aside and the contextual states of the rest are
mean-pooled on each side: ``differing_l6`` and ``differing_l4`` are the cosine
of those two pools at the last and a middle layer. A paraphrase replaces words
with words of the same meaning, so what differs still points the same way; a
related but different request changes the part that carries the question
("summarize" -> "what follow-up"), and that part points elsewhere. With the
sentence cosine, whether the content words align one to one, and the guard's
soft signals (content on one side only; one span replaced), a logistic model
gives the probability that the cached answer is right for the new prompt.

The weights are data (``judge.json``), fitted by ``python -m bench.semantic_eval
--fit`` on the development pairs only (numpy, no training library), with signs
fixed in advance so that no weight can reward a pair for differing more; the
thresholds of the profiles are chosen from scores of pairs each model never saw
(leave-one-source-out: tuned on three authors' pairs, scored on the fourth's).
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway_app.cache.guard import FRAMING_WORDS

if TYPE_CHECKING:
    from gateway_app.cache.minilm import Encoding

MODEL_FILE = Path(__file__).with_name("judge.json")
# The features, in the order of the weights; each weight's sign is fixed (see
# bench/semantic_eval.py): + for evidence of the same request, - for evidence
# of a different one.
FEATURES = ("cosine", "differing_l6", "differing_l4", "aligned", "qualifier", "substitution")
SIGNS = {
    "cosine": 1,
    "differing_l6": 1,
    "differing_l4": 1,
    "aligned": 1,
    "qualifier": -1,
    "substitution": -1,
}


def differing_similarity(a: Encoding, b: Encoding, layer: int) -> float:
    """Cosine of the mean states at ``layer`` (one of minilm's ``JUDGE_LAYERS``) of the wordpieces
    each prompt does not share with the other in order.

    1.0 when nothing differs, or one side only adds punctuation or framing words
    ("please", "can you") to the other; 0.0 when one side only adds words that
    carry content (a qualifier: the other has nothing in their place). When both
    sides have wordpieces of their own, punctuation among them is pooled too: its
    contextual state carries the sentence around it (leaving it out lowered
    leave-one-source-out recall from 0.68 to 0.65 at the same precision).
    """
    import numpy as np

    from gateway_app.cache.minilm import JUDGE_LAYERS

    if b.tokens < a.tokens:
        a, b = b, a  # difflib's matching depends on the order: take one, either way round
    left, right = a.tokens[1:-1], b.tokens[1:-1]  # without [CLS] and [SEP]
    own_a = np.ones(len(left), dtype=bool)
    own_b = np.ones(len(right), dtype=bool)
    for block in SequenceMatcher(None, left, right, autojunk=False).get_matching_blocks():
        own_a[block.a : block.a + block.size] = False
        own_b[block.b : block.b + block.size] = False
    if not own_a.any() and not own_b.any():
        return 1.0
    if not own_a.any() or not own_b.any():
        # Words added on one side only: a qualifier (0.0) unless they are only
        # punctuation and framing ("?", "please", "can you"), which change nothing.
        added = left if own_a.any() else right
        own = own_a if own_a.any() else own_b
        return 0.0 if any(_substantive(t) for t, o in zip(added, own, strict=True) if o) else 1.0
    index = JUDGE_LAYERS.index(layer)
    pool_a = a.states[index][1:-1][own_a].astype(np.float32).mean(0)
    pool_b = b.states[index][1:-1][own_b].astype(np.float32).mean(0)
    norm = float(np.linalg.norm(pool_a) * np.linalg.norm(pool_b))
    return float(pool_a @ pool_b) / norm if norm else 0.0


def _substantive(token: str) -> bool:
    # A wordpiece that carries content: not punctuation, not a framing word.
    return any(c.isalnum() for c in token) and token not in FRAMING_WORDS


def pair_features(
    query: Encoding, cached: Encoding, aligned: bool, soft: str | None
) -> tuple[float, ...]:
    """The judge's inputs for one pair, in the order of :data:`FEATURES`.

    ``aligned``: the content words correspond one to one (the guard's alignment);
    ``soft``: the guard's soft signal, ``qualifier``, ``substitution`` or None.
    """
    return (
        float(query.vector @ cached.vector),
        differing_similarity(query, cached, 6),
        differing_similarity(query, cached, 4),
        float(aligned),
        float(soft == "qualifier"),
        float(soft == "substitution"),
    )


@dataclass(frozen=True, slots=True)
class JudgeModel:
    """Standardised features, one weight each, a bias: the logistic probability of a hit."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def probability(self, features: tuple[float, ...]) -> float:
        """How likely the cached answer is right for the new prompt (0-1)."""
        logit = self.bias + sum(
            w * (x - m) / s
            for w, x, m, s in zip(self.weights, features, self.mean, self.scale, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, logit))))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JudgeModel:
        """The model of a ``judge.json`` document (its ``model`` part)."""
        if tuple(data["features"]) != FEATURES:
            raise ValueError(
                f"judge model features {data['features']} are not {list(FEATURES)}: "
                "refit it with `python -m bench.semantic_eval --fit`"
            )
        return cls(tuple(data["mean"]), tuple(data["scale"]), tuple(data["weights"]), data["bias"])

    def to_dict(self) -> dict[str, Any]:
        """The ``model`` part of ``judge.json``."""
        return {
            "features": list(FEATURES),
            "mean": [round(v, 6) for v in self.mean],
            "scale": [round(v, 6) for v in self.scale],
            "weights": [round(v, 6) for v in self.weights],
            "bias": round(self.bias, 6),
        }


def load(path: Path = MODEL_FILE) -> dict[str, Any]:
    """The committed judge document: model, profiles' thresholds, how they were chosen."""
    return dict(json.loads(path.read_text()))


@lru_cache(maxsize=1)
def default_model() -> JudgeModel:
    """The committed model (``judge.json``), read once."""
    return JudgeModel.from_dict(load()["model"])


class EncodingCache:
    """The most recent prompts' encodings, bounded in bytes (oldest dropped first).

    A cached request's encoding is needed again whenever a later prompt comes
    near it; recomputing costs one forward pass (10-25 ms). The entry's own
    lookup put it here, so a popular entry stays; an entry from another replica
    or an evicted one is recomputed once.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[str, Encoding] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, text: str) -> Encoding | None:
        """The encoding of ``text`` if held (and mark it recently used)."""
        found = self._items.get(text)
        if found is not None:
            self._items.move_to_end(text)
        return found

    def put(self, text: str, encoding: Encoding) -> None:
        """Hold ``encoding``; drop the least recently used ones past the bound."""
        if text in self._items:
            self._items.move_to_end(text)
            return
        size = _size(text, encoding)
        if size > self.max_bytes:
            return
        self._items[text] = encoding
        self.bytes += size
        while self.bytes > self.max_bytes:
            old_text, old = self._items.popitem(last=False)
            self.bytes -= _size(old_text, old)


def _size(text: str, encoding: Encoding) -> int:
    return encoding.nbytes + len(text) + 64 * len(encoding.tokens)
