"""Semantic-match quality on the development pairs, through the gateway's cache hook.

``bench/semantic_eval.py`` sends every labelled pair through the real cache
(local model, index, word checks, judge, default profile), one scope per pair,
and this test asserts the bar there: on the development pairs, and, what
matters, on pairs the judge was not fitted on, by author (leave-one-source-out:
fitted on three authors' files, scored on the fourth) and by random folds.

Sealed split v3 was scored once by the lead with the final rule (precision
0.991, recall 0.710: bench/semantic-cache.md); it was never fitted or validated
on. Now that it is used, its test below is a regression test of the committed
rule on pairs it was not tuned on, no longer an unseen test set.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from bench.semantic_eval import load_pairs, source_name
from gateway_app.cache.judge import load
from gateway_app.cache.minilm import MiniLM
from tests.gateway.cache import quality_job
from tests.gateway.cache.quality_job import DEV, SEALED_3

# The bytes the lead scored once (SEALED_3.md): an edited split is not the one reported.
SEALED_3_SHA256 = "5b8165e7b7254139a766dac1c02d1cbe4ca01a02543ae33f4539e9907b45a712"


@pytest.fixture(scope="module")
def dev() -> dict:
    # ~3,000 forward passes of the local model: about a minute of one core on an idle
    # machine; over 15 in a full suite on one shared by eight jobs (hence the timeout).
    # `evaluate(DEV, folds=5)`, run beside the rest of the suite (quality_job.py).
    return quality_job.result("dev", timeout=2300)


def test_development_pairs_come_from_four_authors_and_cover_every_kind_and_domain() -> None:
    pairs = [p for path in DEV for p in load_pairs(path)]
    assert len(pairs) >= 1400
    # Four sources: the original set, the rounds written on this branch, and the two
    # splits written as sealed ones by engineers who never saw the guard (burned:
    # scored once, first looks recorded in bench/semantic-cache.md).
    assert {p.source for p in pairs} == {"original", "rounds", "v1_burned", "v2_burned"}
    assert {p.kind for p in pairs} == {
        "paraphrase", "negation", "reversed", "number", "entity", "different"
    }  # fmt: skip
    assert len({p.domain for p in pairs}) == 9
    # Related requests that add or drop a qualifier (one prompt's words and more).
    contained = [
        p
        for p in pairs
        if p.kind == "different"
        and set(p.a.lower().rstrip(".?").split()) < set(p.b.lower().split())
    ]
    assert len(contained) >= 30


def test_the_committed_judge_was_fitted_on_these_development_files_only() -> None:
    # A stale judge.json (pairs changed since the fit) or one fitted on anything but
    # the development files fails here: refit with `python -m bench.semantic_eval --fit`.
    fitted = {Path(f["file"]).name: f["sha256"] for f in load()["fitted_on"]}
    assert fitted == {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in DEV}


@pytest.mark.timeout(2400)
def test_precision_holds_on_authors_the_judge_was_not_fitted_on(dev: dict) -> None:
    overall = dev["overall"]
    print(f"\ndev pairs, default profile: {overall}")
    assert dev["guard"] == "strict"
    assert overall["precision"] >= 0.98
    assert overall["recall"] > 0.6  # the cache must still hit paraphrases
    loso = dev["validation"]["leave_one_source_out"]["strict"]
    for view in (loso, loso["at_committed_threshold"]):
        # Each author's pairs scored by a judge fitted on the other three: the
        # honest estimate for a new author. The bar: 0.95 on a sealed split, so
        # the worst author keeps 0.97 and all of them together 0.98.
        assert set(view["per_source"]) == {source_name(path) for path in DEV}
        assert view["worst_source_precision"] >= 0.97, view["per_source"]
        assert view["overall"]["precision"] >= 0.98
        assert view["overall"]["recall"] > 0.6
    k_fold = dev["validation"]["k_fold"]["strict"]
    assert k_fold["overall"]["precision"] >= 0.97
    assert k_fold["overall"]["recall"] > 0.6
    # Opt-in loose: more hits than strict on new authors, and fewer wrong ones than
    # the cosine alone would serve.
    loose = dev["validation"]["leave_one_source_out"]["loose"]
    assert loose["overall"]["recall"] >= loso["overall"]["recall"]
    assert loose["overall"]["precision"] >= 0.95
    # Cosine alone cannot do it: the word checks and the judge make the precision.
    assert dev["cosine_alone"]["0.85"]["precision"] < 0.8


@pytest.mark.timeout(1200)
def test_sealed_split_3_keeps_the_precision_bar_as_a_regression_test() -> None:
    # A regression test now: the split was used (scored once with the final rule,
    # 0.991 / 0.710, 1 wrong hit: a reversed role). A change to the word checks, the
    # judge or its weights that serves more of these near-misses fails here.
    assert hashlib.sha256(SEALED_3.read_bytes()).hexdigest() == SEALED_3_SHA256
    # ~860 forward passes: under a minute idle, several on a loaded shared machine.
    # `evaluate([SEALED_3], show_errors=True)`, run beside the suite (quality_job.py).
    sealed = quality_job.result("sealed_3", timeout=1100)
    overall, kinds = sealed["overall"], sealed["per_kind"]
    print(f"\nsealed v3, default profile: {overall}")
    assert sealed["guard"] == "strict"
    assert overall["pairs"] == 432
    assert overall["precision"] >= 0.95  # the bar at the default setting
    # Recall as scored (0.710, 115 of 162), with room for a rounding-size change only.
    assert overall["recall"] >= 0.68
    # Per kind, wrong hits as the bar allows: at 0.95 with ~115 hits, at most 6 in
    # all; none of the kinds the word checks refuse outright (numbers, entities,
    # negation) and none of the related-but-different requests (0 when scored); the
    # one reversed role served when scored, and no more than 2 there.
    assert kinds["number"]["wrongly_served"] == 0, sealed["wrong_hits"]
    assert kinds["entity"]["wrongly_served"] == 0, sealed["wrong_hits"]
    assert kinds["negation"]["wrongly_served"] == 0, sealed["wrong_hits"]
    assert kinds["different"]["wrongly_served"] == 0, sealed["wrong_hits"]
    assert kinds["reversed"]["wrongly_served"] <= 2, sealed["wrong_hits"]
    assert overall["wrong_hits"] <= 6


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
