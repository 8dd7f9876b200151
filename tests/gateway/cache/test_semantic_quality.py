"""Semantic-match quality on the development split, through the gateway's cache hook.

``bench/semantic_eval.py`` sends every labelled pair through the real cache
(local model, index, guard, default profile), one scope per pair, and this
test asserts the bar there: precision at least 0.95 at the default, also on
held-out folds when the thresholds are chosen on the others. The sealed split
is scored by its own test (added when it is merged), never tuned on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.semantic_eval import evaluate, load_pairs
from gateway_app.cache.minilm import MiniLM

PAIRS = Path(__file__).parent / "pairs"


@pytest.fixture(scope="module")
def dev() -> dict:
    # 778 prompts through the local model: about a minute, several on a loaded machine.
    return evaluate(PAIRS / "dev.yaml", folds=5)


def test_the_development_split_is_large_and_covers_every_kind_and_domain() -> None:
    pairs = load_pairs(PAIRS / "dev.yaml")
    assert len(pairs) >= 127 + 262 + 150  # the original set, round 1, round 2
    # Round 2 added the kind the sealed split v1 showed missing: related requests
    # that add or drop a qualifier (one prompt contains the other's words and more).
    contained = [
        p
        for p in pairs
        if p.kind == "different"
        and set(p.a.lower().rstrip(".?").split()) < set(p.b.lower().split())
    ]
    assert len(contained) >= 30
    assert {p.kind for p in pairs} == {
        "paraphrase", "negation", "reversed", "number", "entity", "different"
    }  # fmt: skip
    assert len({p.domain for p in pairs}) == 9


@pytest.mark.timeout(900)
def test_precision_at_the_default_is_at_least_095_on_the_development_split(dev: dict) -> None:
    overall = dev["overall"]
    print(f"\ndev split, default guard: {overall}")
    assert dev["guard"] == "strict"
    assert overall["precision"] >= 0.95
    assert overall["recall"] > 0.5  # the cache must still hit paraphrases
    # Thresholds chosen on the other folds hold on each held-out one.
    held_out = dev["cross_validation"]["held_out"]
    assert held_out["precision"] >= 0.98  # the bar is 0.95 on unseen pairs: keep a margin
    assert held_out["recall"] > 0.5
    # Cosine alone cannot do it: the guard is what makes precision.
    assert dev["cosine_alone"]["0.85"]["precision"] < 0.8


def test_a_malformed_pair_file_names_the_entry_and_the_fix(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("pairs:\n  - {a: x, b: y, label: hit, kind: negation, domain: code}\n")
    with pytest.raises(ValueError, match=r"pairs\[0\].*paraphrase. pairs are hits"):
        load_pairs(bad)
    bad.write_text("pairs:\n  - {a: x, b: y, label: hit, kind: paraphrase, domain: cooking}\n")
    with pytest.raises(ValueError, match=r"pairs\[0\]\.domain: 'cooking'"):
        load_pairs(bad)


def test_the_numpy_model_reproduces_the_reference_similarities() -> None:
    # Reference values from sentence-transformers with the same weights
    # (its documentation's example: 0.7553 and -0.1050 for these sentences).
    model = MiniLM()
    food = model.embed("A man is eating food.")
    assert abs(float(food @ model.embed("A man is eating a piece of bread.")) - 0.7553) < 2e-3
    assert abs(float(food @ model.embed("The girl is carrying a baby.")) - (-0.1050)) < 2e-3
    assert abs(float(food @ food) - 1.0) < 1e-5
