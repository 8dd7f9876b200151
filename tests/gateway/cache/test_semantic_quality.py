"""Semantic-match quality on the labelled pairs, with the real local model.

A pair is predicted "same request" when cosine >= the default threshold AND the
lexical guard accepts it, exactly as the cache decides. Prints precision and
recall (run with -s to see them), and for contrast the cosine-only figures.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from gateway_app.cache.guard import Features, same_request
from gateway_app.cache.minilm import MiniLM
from gateway_app.config import SemanticCacheConfig

PAIRS = Path(__file__).with_name("semantic_pairs.yaml")


def test_precision_at_the_default_threshold_is_at_least_095() -> None:
    labelled = yaml.safe_load(PAIRS.read_text())
    threshold = SemanticCacheConfig().threshold
    model = MiniLM()
    outcomes: list[tuple[bool, bool, bool]] = []  # (should hit, cosine says, cache says)
    for label, categories in labelled.items():
        for pairs in categories.values():
            for a, b in pairs:
                cosine = float(model.embed(a) @ model.embed(b))
                guarded = same_request(Features(a), Features(b)) is None
                outcomes.append(
                    (label == "hit", cosine >= threshold, cosine >= threshold and guarded)
                )
    assert len(outcomes) >= 100
    positives = sum(1 for should, _, _ in outcomes if should)
    assert positives and positives < len(outcomes)

    def figures(column: int) -> tuple[float, float]:
        predicted = [o for o in outcomes if o[column]]
        true = sum(1 for o in predicted if o[0])
        return (true / len(predicted) if predicted else 1.0), true / positives

    precision, recall = figures(2)
    cos_precision, cos_recall = figures(1)
    print(
        f"\nsemantic cache on {len(outcomes)} labelled pairs at threshold {threshold}: "
        f"precision {precision:.3f}, recall {recall:.3f} "
        f"(cosine alone: precision {cos_precision:.3f}, recall {cos_recall:.3f})"
    )
    assert precision >= 0.95
    assert recall > 0.5  # the cache must still hit paraphrases, not refuse everything


def test_the_numpy_model_reproduces_the_reference_similarities() -> None:
    # Reference values from sentence-transformers with the same weights
    # (its documentation's example: 0.7553 and -0.1050 for these sentences).
    model = MiniLM()
    food = model.embed("A man is eating food.")
    assert abs(float(food @ model.embed("A man is eating a piece of bread.")) - 0.7553) < 2e-3
    assert abs(float(food @ model.embed("The girl is carrying a baby.")) - (-0.1050)) < 2e-3
    assert abs(float(food @ food) - 1.0) < 1e-5
