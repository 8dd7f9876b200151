"""Precision and recall of the semantic cache on labelled prompt pairs; the judge's fit.

    .venv/bin/python -m bench.semantic_eval --pairs tests/gateway/cache/pairs/dev_*.yaml \\
        --validate
    .venv/bin/python -m bench.semantic_eval --pairs tests/gateway/cache/pairs/dev_*.yaml --fit
    .venv/bin/python -m bench.semantic_eval --pairs tests/gateway/cache/pairs/sealed_test_3.yaml

Each pair goes through the gateway's own cache hook (``gateway_app.cache.hook.build``:
the local all-MiniLM-L6-v2 embedder, the vector index, the word checks, the judge,
the config's defaults), in a scope of its own (one tenant per pair): prompt
``a`` is a miss whose response is stored and indexed, then prompt ``b`` is
looked up. A semantic hit on ``b`` is a predicted "same request". Prints
precision and recall overall, per kind, per domain and per file, the time the
semantic lookup adds to a request (p50/p99), the judge's share and the memory
its inputs take, and writes ``bench/semantic-eval-<name>-<profile>.json``.

Every pair file is one *source* (one author's pairs). ``--validate`` estimates
how the rule does on pairs it was not fitted on, two ways, for each profile:

- **leave-one-source-out**: the judge is fitted on the other sources and its
  threshold chosen from *their* out-of-source scores (each of them scored by a
  model fitted without it), then the held-out source is scored. This is the
  honest estimate for a new author's pairs, the case a sealed split tests.
- **k-fold** (``--folds``, 5): the same with folds by a hash of the pair.

``--fit`` fits the judge on all the given pairs and writes
``gateway_app/cache/judge.json``: the model, and each profile's threshold
chosen from out-of-source scores (over the files) with the rule above. Use
both on the development files only; a sealed split is scored, never fitted
or validated on.

The embedder's per-request timeout (a production bound that turns a slow
embedding into a miss) is lifted here so that machine load cannot change a
decision; everything else is the default configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
KINDS = ("paraphrase", "negation", "reversed", "number", "entity", "different")
DOMAINS = ("support", "code", "finance", "hr", "medicine", "legal", "data", "ops", "general")
# The precision the judge's threshold must keep on scores of pairs the scoring
# model never saw (out-of-source): strict, the default, aims for the bar
# of 0.95 on a new author's pairs with room for the spread between authors
# (leave-one-source-out shows it: at 0.985 the committed threshold left one
# author at 0.969 precision; at 0.99 every author stays above 0.97); loose is
# opt-in (more hits, more wrong ones).
TARGETS = {"strict": 0.99, "loose": 0.98}
# No candidate below this cosine similarity is weighed: a cost bound (each weighed
# candidate may cost a forward pass). In leave-one-source-out validation the judge
# served 1% of its hits below it; fixed, not fitted.
FLOOR = 0.70
# The weights' L2 penalty (on standardised features) and the signs they may take.
L2 = 1.0
FOLDS = 5


@dataclass(frozen=True, slots=True)
class Pair:
    """One labelled pair of prompts, and the file (author) it comes from."""

    a: str
    b: str
    hit: bool
    kind: str
    domain: str
    source: str


@dataclass(slots=True)
class Outcome:
    """What the gateway did with one pair, and what the word checks and the judge saw."""

    pair: Pair
    served: bool  # b was a semantic hit on a's entry
    similarity: float
    refusal: str | None  # a word check's refusal (None: the judge weighs the pair)
    soft: str | None  # qualifier / substitution / None
    alignment: str  # aligned | reworded
    features: tuple[float, ...]  # the judge's inputs (gateway_app.cache.judge.FEATURES)
    lookup_ms: float  # before() of b: exact miss + embedding + search + checks + judge
    judge_us: float  # the judge alone: word checks of both texts, features, probability


def source_name(path: Path) -> str:
    """The source a pair file stands for: its name without ``dev_`` (``v1_burned``)."""
    return path.stem.removeprefix("dev_")


def load_pairs(path: Path) -> list[Pair]:
    """The pairs of ``path``; a malformed entry raises ValueError naming it and the fix."""
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("pairs"), list):
        raise ValueError(f"{path}: expected a mapping with a `pairs:` list")
    pairs = []
    for i, raw in enumerate(data["pairs"]):
        where = f"{path}: pairs[{i}]"
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: expected a mapping {{a, b, label, kind, domain}}")
        missing = {"a", "b", "label", "kind", "domain"} - set(raw)
        if missing:
            raise ValueError(f"{where}: missing {sorted(missing)}")
        if raw["label"] not in ("hit", "miss"):
            raise ValueError(f"{where}.label: {raw['label']!r} is neither `hit` nor `miss`")
        if raw["kind"] not in KINDS:
            raise ValueError(f"{where}.kind: {raw['kind']!r} is not one of {', '.join(KINDS)}")
        if (raw["kind"] == "paraphrase") != (raw["label"] == "hit"):
            raise ValueError(f"{where}: `paraphrase` pairs are hits and every other kind a miss")
        if raw["domain"] not in DOMAINS:
            raise ValueError(f"{where}.domain: {raw['domain']!r} is not one of {DOMAINS}")
        if not isinstance(raw["a"], str) or not isinstance(raw["b"], str):
            raise ValueError(f"{where}: `a` and `b` must be strings")
        pairs.append(
            Pair(
                raw["a"],
                raw["b"],
                raw["label"] == "hit",
                raw["kind"],
                raw["domain"],
                source_name(path),
            )
        )
    return pairs


def gateway_config(guard: str = "strict", threshold: float | None = None) -> Any:
    """The default configuration with the cache on and one model opted into semantic hits."""
    from gateway_app.config import parse

    semantic: dict[str, Any] = {"guard": guard}
    if threshold is not None:
        semantic["threshold"] = threshold
    return parse(
        {
            "providers": {
                "upstream": {
                    "type": "openai",
                    "api_key": "unused",
                    "base_url": "http://127.0.0.1:9",
                }
            },
            "models": {
                "eval": {
                    "deployments": [{"provider": "upstream", "model": "eval"}],
                    "cache": {"semantic": True},
                }
            },
            "cache": {"enabled": True, "max_entries": 100_000, "semantic": semantic},
        }
    )


async def run_pairs(pairs: list[Pair], config: Any) -> list[Outcome]:
    """Send every pair through the cache hook, one scope (tenant) per pair."""
    from gateway_app.apis import CHAT_COMPLETIONS
    from gateway_app.cache.guard import Features, screen
    from gateway_app.cache.hook import build
    from gateway_app.cache.judge import pair_features
    from gateway_app.context import CacheOutcome, Caller, Exchange, RequestContext, RouteOutcome
    from gateway_app.hooks import Response
    from gateway_app.providers.base import ChatResult

    hook = build(config, None, None, router=None)
    assert hook is not None and hook.semantic is not None
    encoder = hook.semantic.encoder
    encoder.timeout_s = 300.0
    await encoder.warm()
    model = hook.semantic.judge

    def request(text: str, tenant: str) -> RequestContext:
        body = {"model": "eval", "messages": [{"role": "user", "content": text}]}
        return RequestContext(
            request_id=tenant,
            endpoint=CHAT_COMPLETIONS.path,
            headers={},
            api=CHAT_COMPLETIONS,
            body=body,
            model="eval",
            caller=Caller("eval", tenant, "eval"),
        )

    outcomes = []
    for i, pair in enumerate(pairs):
        tenant = f"pair-{i}"
        first, filled = request(pair.a, tenant), Exchange()
        state = await hook.before(first, filled)
        assert not isinstance(state, Response), f"pair {i}: the first prompt was served"
        filled.status = 200
        filled.route = RouteOutcome(result=ChatResult(b'{"answer": "a"}'))
        await hook.after(first, filled, state)
        second, exchange = request(pair.b, tenant), Exchange()
        started = time.perf_counter()
        await hook.before(second, exchange)
        lookup_ms = (time.perf_counter() - started) * 1000
        lookup = exchange.semantic  # the guard's decision on the first prompt
        if lookup is None:
            raise RuntimeError(f"pair {i}: no semantic lookup happened (embedder over capacity?)")
        # Both encodings are held (each prompt's own lookup made it): what the judge reads.
        query, cached = await encoder.encode(pair.b), await encoder.encode(pair.a)
        assert query is not None and cached is not None
        started = time.perf_counter()
        found = screen(Features(pair.b), Features(pair.a))
        features = pair_features(query, cached, found.alignment == "aligned", found.soft)
        model.probability(features)
        judge_us = (time.perf_counter() - started) * 1e6
        outcomes.append(
            Outcome(
                pair,
                exchange.cache is CacheOutcome.SEMANTIC_HIT,
                lookup.similarity,
                found.refusal,
                found.soft,
                found.alignment,
                features,
                lookup_ms,
                judge_us,
            )
        )
    await hook.stop()
    return outcomes


def exact_hit_ms(pairs: list[Pair], config: Any, count: int = 200) -> list[float]:
    """Time of an exact hit's lookup (the embedder must stay off this path)."""
    from gateway_app.apis import CHAT_COMPLETIONS
    from gateway_app.cache.hook import build
    from gateway_app.context import CacheOutcome, Caller, Exchange, RequestContext, RouteOutcome
    from gateway_app.providers.base import ChatResult

    async def run() -> list[float]:
        hook = build(config, None, None, router=None)
        assert hook is not None
        times = []
        for i, pair in enumerate(pairs[:count]):
            for attempt in range(2):
                body = {"model": "eval", "messages": [{"role": "user", "content": pair.a}]}
                request = RequestContext(
                    request_id="x",
                    endpoint=CHAT_COMPLETIONS.path,
                    # Opt out of the semantic side: the stored answer is found by its hash.
                    headers={"x-aigw-semantic-cache": "false"},
                    api=CHAT_COMPLETIONS,
                    body=body,
                    model="eval",
                    caller=Caller("eval", f"exact-{i}", "eval"),
                )
                exchange = Exchange()
                started = time.perf_counter()
                state = await hook.before(request, exchange)
                if attempt:
                    assert exchange.cache is CacheOutcome.HIT
                    times.append((time.perf_counter() - started) * 1000)
                else:
                    exchange.status = 200
                    exchange.route = RouteOutcome(result=ChatResult(b"{}"))
                    await hook.after(request, exchange, state)
        return times

    return _run(run())


def encoding_costs(pairs: list[Pair], count: int = 200) -> tuple[list[float], list[int]]:
    """Time (ms) of one prompt's forward pass with its states, and the bytes they take.

    What a candidate whose states are not held costs the judge, and what holding
    them costs in memory (the ``encodings_mb`` bound).
    """
    from gateway_app.cache.judge import EncodingCache
    from gateway_app.cache.minilm import MiniLM

    model = MiniLM()
    model.encode("warm")
    times, sizes = [], []
    for pair in pairs[:count]:
        started = time.perf_counter()
        encoding = model.encode(pair.a)
        times.append((time.perf_counter() - started) * 1000)
        cache = EncodingCache(1 << 30)
        cache.put(pair.a, encoding)
        sizes.append(cache.bytes)
    return times, sizes


def _run(coroutine: Any) -> Any:
    # A private loop: asyncio.run would clear the main thread's current loop, which
    # the Pulumi SDK (tests/infra, in the same pytest process) still asks for.
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


# --- the judge: fitting, thresholds, validation (numpy, no training library) ---


def _arrays(outcomes: list[Outcome]) -> tuple[Any, Any, Any]:
    import numpy as np

    x = np.array([o.features for o in outcomes], dtype=np.float64)
    label = np.array([o.pair.hit for o in outcomes])
    weighable = np.array([o.refusal is None and o.similarity >= FLOOR for o in outcomes])
    return x, label, weighable


def fit(x: Any, label: Any) -> Any:
    """The logistic model of ``label`` on ``x``: standardised, L2-penalised, signs fixed.

    Newton's method; a weight whose sign contradicts ``judge.SIGNS`` (a feature
    that would reward a pair for differing more, as the way the training pairs
    were written may suggest) is dropped and the rest refitted.
    """
    import numpy as np

    from gateway_app.cache.judge import FEATURES, SIGNS, JudgeModel

    mean = x.mean(0)
    scale = x.std(0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    target = label.astype(np.float64)
    active = list(range(len(FEATURES)))
    while True:
        weights, bias = _newton(z[:, active], target)
        wrong = [k for k, w in zip(active, weights, strict=True) if w * SIGNS[FEATURES[k]] < 0]
        if not wrong:
            break
        active.remove(min(wrong, key=lambda k: weights[active.index(k)] * SIGNS[FEATURES[k]]))
    full = np.zeros(len(FEATURES))
    full[active] = weights
    return JudgeModel(tuple(mean), tuple(scale), tuple(full), float(bias))


def _newton(z: Any, target: Any, steps: int = 100) -> tuple[Any, float]:
    import numpy as np

    n, d = z.shape
    weights, bias = np.zeros(d), 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(z @ weights + bias)))
        residual = p - target
        curvature = p * (1 - p)
        gradient = z.T @ residual / n + L2 * weights / n
        hessian = (z * curvature[:, None]).T @ z / n + L2 * np.eye(d) / n
        weights = weights - np.linalg.solve(hessian + 1e-9 * np.eye(d), gradient)
        bias -= float(residual.mean()) / max(float(curvature.mean()), 1e-9)
    return weights, bias


def logits(model: Any, x: Any) -> Any:
    """The model's log-odds for every row of ``x``."""
    import numpy as np

    z = (x - np.array(model.mean)) / np.array(model.scale)
    return z @ np.array(model.weights) + model.bias


def choose_threshold(scores: Any, label: Any, target: float) -> float:
    """The lowest log-odds threshold at which ``scores`` keep precision >= ``target``.

    Scores of -inf are pairs the judge never weighs. Ties are decided together.
    Returns +inf when no threshold keeps the target.
    """
    import numpy as np

    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], label[order]
    correct = np.cumsum(hits)
    best = float("inf")
    for k in range(len(ranked)):
        if not np.isfinite(ranked[k]):
            break
        if k + 1 < len(ranked) and ranked[k + 1] == ranked[k]:
            continue
        if correct[k] / (k + 1) >= target:
            best = float(ranked[k])
    return best


def out_of_group_scores(x: Any, label: Any, usable: Any, groups: Any) -> Any:
    """Each group's log-odds from a model fitted on the other groups (-inf: not weighable)."""
    import numpy as np

    scores = np.full(len(label), -np.inf)
    for group in sorted(set(groups[usable])):
        train = usable & (groups != group)
        held = usable & (groups == group)
        scores[held] = logits(fit(x[train], label[train]), x[held])
    return scores


def held_out(x: Any, label: Any, weighable: Any, groups: Any, target: float) -> Any:
    """Decisions on each group by a judge fitted and thresholded without it.

    The threshold comes from out-of-group scores *within* the training groups
    (nested), as :func:`fit_document` chooses the committed one.
    """
    import numpy as np

    decided = np.zeros(len(label), dtype=bool)
    thresholds = {}
    for group in sorted(set(groups)):
        train = groups != group
        inner = out_of_group_scores(x, label, weighable & train, groups)
        threshold = choose_threshold(inner[train], label[train], target)
        model = fit(x[weighable & train], label[weighable & train])
        held = weighable & (groups == group)
        decided[held] = logits(model, x[held]) >= threshold
        thresholds[str(group)] = round(threshold, 4)
    return decided, thresholds


def fit_document(outcomes: list[Outcome], files: list[Path]) -> dict[str, Any]:
    """``judge.json``: the model on all pairs, each profile's threshold out-of-source."""
    import math

    import numpy as np

    x, label, weighable = _arrays(outcomes)
    sources = np.array([o.pair.source for o in outcomes])
    model = fit(x[weighable], label[weighable])
    scores = out_of_group_scores(x, label, weighable, sources)
    profiles = {}
    for name, target in TARGETS.items():
        threshold = choose_threshold(scores, label, target)
        profiles[name] = {
            "probability": 1.0 / (1.0 + math.exp(-threshold)),
            "rule": f"the lowest whose out-of-source precision on the fit's pairs is >= {target}",
        }
    return {
        "about": "The semantic cache's judge (gateway_app/cache/judge.py), fitted by "
        "`python -m bench.semantic_eval --fit` on the development pairs only.",
        "fitted_on": [
            {
                "file": str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path),
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "pairs": sum(1 for o in outcomes if o.pair.source == source_name(path)),
            }
            for path in files
        ],
        "floor": FLOOR,
        "l2": L2,
        "model": model.to_dict(),
        "profiles": profiles,
    }


def validation(outcomes: list[Outcome], folds: int, committed: dict[str, float]) -> dict[str, Any]:
    """Leave-one-source-out (when there are several sources) and k-fold, per profile.

    Two views per scheme and profile: the whole procedure held out (each held-out
    group's threshold chosen, nested, without it), and each held-out group's
    model at the ``committed`` threshold (profile -> probability), the rule as
    it ships.
    """
    import math

    import numpy as np

    x, label, weighable = _arrays(outcomes)
    schemes = {"k_fold": np.array([_fold(o, folds) for o in outcomes])}
    if len({o.pair.source for o in outcomes}) > 1:
        schemes["leave_one_source_out"] = np.array([o.pair.source for o in outcomes])
    result: dict[str, Any] = {}
    for scheme, groups in schemes.items():
        for profile, target in TARGETS.items():
            decided, thresholds = held_out(x, label, weighable, groups, target)
            threshold = math.log(committed[profile] / (1 - committed[profile]))
            at_committed = held_out_at(x, label, weighable, groups, threshold)
            entry: dict[str, Any] = {
                "target_out_of_source_precision": target,
                "thresholds_log_odds": thresholds,
                **_held_out_figures(decided, outcomes),
                "at_committed_threshold": {
                    "probability": committed[profile],
                    **_held_out_figures(at_committed, outcomes),
                },
            }
            result.setdefault(scheme, {})[profile] = entry
    return result


def held_out_at(x: Any, label: Any, weighable: Any, groups: Any, threshold: float) -> Any:
    """Decisions on each group by a judge fitted without it, at a fixed log-odds threshold."""
    import numpy as np

    decided = np.zeros(len(label), dtype=bool)
    for group in sorted(set(groups)):
        train = weighable & (groups != group)
        held = weighable & (groups == group)
        decided[held] = logits(fit(x[train], label[train]), x[held]) >= threshold
    return decided


def _held_out_figures(decided: Any, outcomes: list[Outcome]) -> dict[str, Any]:
    predicted = [bool(v) for v in decided]
    per_source = {}
    for source in sorted({o.pair.source for o in outcomes}):
        rows = [(p, o) for p, o in zip(predicted, outcomes, strict=True) if o.pair.source == source]
        per_source[source] = figures([p for p, _ in rows], [o for _, o in rows])
    precisions = [f["precision"] for f in per_source.values() if f["precision"] is not None]
    return {
        "overall": figures(predicted, outcomes),
        "per_source": per_source,
        "worst_source_precision": min(precisions) if precisions else None,
        "per_kind": breakdown(predicted, outcomes, "kind"),
    }


def _fold(outcome: Outcome, folds: int) -> int:
    digest = hashlib.sha256((outcome.pair.a + "\0" + outcome.pair.b).encode()).digest()
    return digest[0] % folds


def decide(outcome: Outcome, model: Any, probability: float, floor: float = FLOOR) -> bool:
    """The cache's decision with ``model`` at ``probability`` (the same rule as the hook)."""
    if outcome.refusal is not None or outcome.similarity < floor:
        return False
    return bool(model.probability(outcome.features) >= probability)


def figures(predicted: list[bool], outcomes: list[Outcome]) -> dict[str, Any]:
    """Precision, recall and the confusion counts of ``predicted`` against the labels."""
    tp = sum(1 for p, o in zip(predicted, outcomes, strict=True) if p and o.pair.hit)
    fp = sum(1 for p, o in zip(predicted, outcomes, strict=True) if p and not o.pair.hit)
    positives = sum(1 for o in outcomes if o.pair.hit)
    return {
        "pairs": len(outcomes),
        "precision": round(tp / (tp + fp), 4) if tp + fp else None,
        "recall": round(tp / positives, 4) if positives else None,
        "hits": tp + fp,
        "correct_hits": tp,
        "wrong_hits": fp,
        "positives": positives,
    }


def breakdown(predicted: list[bool], outcomes: list[Outcome], field: str) -> dict[str, Any]:
    """Per kind: recall of paraphrases, and for each miss kind how many were wrongly served."""
    result = {}
    for value in sorted({getattr(o.pair, field) for o in outcomes}):
        rows = [(p, o) for p, o in zip(predicted, outcomes, strict=True)]
        rows = [(p, o) for p, o in rows if getattr(o.pair, field) == value]
        served = sum(1 for p, _ in rows if p)
        entry: dict[str, Any] = {"pairs": len(rows), "served": served}
        if field == "kind":
            if value == "paraphrase":
                entry["recall"] = round(served / len(rows), 4)
            else:
                entry["wrongly_served"] = served
        else:
            entry.update(figures([p for p, _ in rows], [o for _, o in rows]))
        result[value] = entry
    return result


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _spread(values: list[float], digits: int, what: str) -> dict[str, Any]:
    return {
        "p50": round(percentile(values, 0.5), digits),
        "p99": round(percentile(values, 0.99), digits),
        "what": what,
    }


def evaluate(
    paths: list[Path],
    guard: str = "strict",
    threshold: float | None = None,
    folds: int = 0,
    show_errors: bool = False,
    fit_out: Path | None = None,
) -> dict[str, Any]:
    """Run the pairs of ``paths`` through the cache and return the result document.

    ``folds``: also validate (k-fold and, with several files, leave-one-source-out).
    ``fit_out``: fit the judge on these pairs and write its document there; the
    figures at the profile are then the new judge's (by the hook's rule).
    """
    from gateway_app.cache.hook import guard_policy
    from gateway_app.cache.judge import JudgeModel, default_model, load

    pairs = [pair for path in paths for pair in load_pairs(path)]
    config = gateway_config(guard, threshold)
    policy = guard_policy(guard, threshold)
    outcomes = _run(run_pairs(pairs, config))
    model, probability = default_model(), policy.judge
    profiles = load()["profiles"]
    # The decomposition used for validation must agree with the hook itself.
    disagree = [
        i for i, o in enumerate(outcomes) if decide(o, model, probability, policy.floor) != o.served
    ]
    if disagree:
        raise RuntimeError(f"the judge's decomposition disagrees with the hook on {disagree}")
    result: dict[str, Any] = {
        "pairs_files": [str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p) for p in paths],
        "pairs_sha256": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths},
        "guard": guard,
        "floor": policy.floor,
        "judge_probability": probability,
    }
    if fit_out is not None:
        document = fit_document(outcomes, paths)
        fit_out.write_text(json.dumps(document, indent=2) + "\n")
        model = JudgeModel.from_dict(document["model"])
        profiles = document["profiles"]
        probability = profiles[guard]["probability"]
        result["refitted"] = str(fit_out)
        result["judge_probability"] = probability
    served = [decide(o, model, probability, policy.floor) for o in outcomes]
    result["overall"] = figures(served, outcomes)
    result["per_kind"] = breakdown(served, outcomes, "kind")
    result["per_domain"] = breakdown(served, outcomes, "domain")
    result["per_source"] = breakdown(served, outcomes, "source")
    encode_ms, encoding_bytes = encoding_costs(pairs)
    exact = exact_hit_ms(pairs, config)
    result["latency"] = {
        "semantic_lookup_ms": _spread(
            [o.lookup_ms for o in outcomes],
            3,
            "hook.before on an exact miss: exact lookup, embedding, search, word checks, judge "
            "(the cached prompt's states held)",
        ),
        "judge_us": _spread(
            [o.judge_us for o in outcomes],
            1,
            "word checks of both prompts, the judge's features and probability",
        ),
        "states_not_held_ms": _spread(
            encode_ms, 3, "added when the cached prompt's states must be computed again"
        ),
        "exact_hit_ms": _spread(
            exact, 4, "hook.before of an exact hit (no embedding on this path)"
        ),
    }
    result["memory"] = {
        "bytes_per_prompt": {
            "p50": int(percentile([float(b) for b in encoding_bytes], 0.5)),
            "p99": int(percentile([float(b) for b in encoding_bytes], 0.99)),
            "max": max(encoding_bytes),
        },
        "what": "a prompt's tokens and float16 states of two layers (the judge's input), "
        "held per replica within cache.semantic.encodings_mb (default 64)",
    }
    result["cosine_alone"] = {
        str(t): figures([o.similarity >= t for o in outcomes], outcomes)
        for t in (0.80, 0.85, 0.90, 0.95)
    }
    if folds:
        committed = {name: profiles[name]["probability"] for name in TARGETS}
        result["validation"] = validation(outcomes, folds, committed)
    result["machine"] = {"python": sys.version.split()[0], "load_average": _load()}
    if show_errors:
        result["wrong_hits"] = [
            {"a": o.pair.a, "b": o.pair.b, "kind": o.pair.kind, "source": o.pair.source}
            for p, o in zip(served, outcomes, strict=True)
            if p and not o.pair.hit
        ]
        result["missed_paraphrases"] = [
            {
                "a": o.pair.a,
                "b": o.pair.b,
                "similarity": round(o.similarity, 4),
                "why": o.refusal or ("similarity" if o.similarity < policy.floor else "judge"),
            }
            for p, o in zip(served, outcomes, strict=True)
            if o.pair.hit and not p
        ]
    return result


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in __import__("os").getloadavg()]
    except OSError:  # pragma: no cover - platform without it
        return None


def report(result: dict[str, Any]) -> str:
    """A short human summary of ``result``."""
    o = result["overall"]
    lines = [
        f"{', '.join(result['pairs_files'])}: {o['pairs']} pairs, profile {result['guard']} "
        f"(judge >= {result['judge_probability']}, floor {result['floor']})",
        f"  precision {o['precision']}  recall {o['recall']}  "
        f"({o['correct_hits']} correct hits, {o['wrong_hits']} wrong, {o['positives']} paraphrases)",
    ]
    for kind, k in result["per_kind"].items():
        detail = (
            f"recall {k['recall']}"
            if kind == "paraphrase"
            else f"wrongly served {k['wrongly_served']}"
        )
        lines.append(f"  {kind:<11} {k['pairs']:>4} pairs  {detail}")
    lat = result["latency"]
    lines.append(
        f"  added per semantic lookup: p50 {lat['semantic_lookup_ms']['p50']} ms, "
        f"p99 {lat['semantic_lookup_ms']['p99']} ms (judge: p50 {lat['judge_us']['p50']} us, "
        f"p99 {lat['judge_us']['p99']} us; states not held: +{lat['states_not_held_ms']['p50']} "
        f"ms p50); exact hit p50 {lat['exact_hit_ms']['p50']} ms"
    )
    for scheme, profiles in result.get("validation", {}).items():
        for profile, entry in profiles.items():
            for view, figs in (("nested", entry), ("committed", entry["at_committed_threshold"])):
                h = figs["overall"]
                lines.append(
                    f"  {scheme} ({profile}, {view} threshold): precision {h['precision']} "
                    f"recall {h['recall']}; worst source precision "
                    f"{figs['worst_source_precision']}  "
                    + " ".join(
                        f"{s}={f['precision']}/{f['recall']}" for s, f in figs["per_source"].items()
                    )
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line entry: evaluate, print, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pairs", type=Path, nargs="+", required=True, help="pair files (see module doc)"
    )
    parser.add_argument("--guard", choices=("strict", "loose"), default="strict")
    parser.add_argument("--threshold", type=float, help="override the cosine floor")
    parser.add_argument(
        "--validate", action="store_true", help="leave-one-source-out and k-fold validation"
    )
    parser.add_argument("--folds", type=int, default=FOLDS, help="k of the k-fold validation")
    parser.add_argument(
        "--fit", action="store_true", help="fit the judge on these pairs: write judge.json"
    )
    parser.add_argument("--show-errors", action="store_true", help="list wrong and missed pairs")
    parser.add_argument("--out", type=Path, help="default: bench/semantic-eval-<name>-<guard>.json")
    args = parser.parse_args(argv)
    from gateway_app.cache.judge import MODEL_FILE

    try:
        result = evaluate(
            args.pairs,
            args.guard,
            args.threshold,
            args.folds if args.validate or args.fit else 0,
            args.show_errors,
            MODEL_FILE if args.fit else None,
        )
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    name = "dev" if len(args.pairs) > 1 else args.pairs[0].stem
    out = args.out or BENCH / f"semantic-eval-{name}-{args.guard}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(report(result))
    print(f"  written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
