"""Precision and recall of the semantic cache on labelled prompt pairs.

    .venv/bin/python -m bench.semantic_eval --pairs tests/gateway/cache/pairs/dev.yaml \\
        --cross-validate 5

Each pair goes through the gateway's own cache hook (``gateway_app.cache.hook.build``:
the local all-MiniLM-L6-v2 embedder, the vector index, the guard, the config's
defaults), in a scope of its own (one tenant per pair): prompt ``a`` is a miss
whose response is stored and indexed, then prompt ``b`` is looked up. A
semantic hit on ``b`` is a predicted "same request". Prints precision and
recall overall, per kind and per domain, the time the semantic lookup adds to
a request (p50/p99) and the guard's own share, and writes the result to
``bench/semantic-eval-<file>.json``.

``--cross-validate K`` also chooses the guard's thresholds the honest way: on
K-1 folds of the file (the highest recall whose precision there is at least
the profile's target), scored on the held-out fold, for every fold; then on
the whole file (what the profiles in ``gateway_app/cache/guard.py`` hold).
Use it on the development split only: the sealed split is scored, never
tuned on.

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
# What the thresholds must keep on the training folds: the lower end of the 95%
# Wilson interval of precision at least this. A lower bound rather than the
# point estimate, so that 60 hits with none wrong and 600 with 6 wrong are not
# judged alike: the bar is 0.95 on a set never seen (strict); loose is opt-in.
TARGETS = {"strict": 0.95, "loose": 0.80}
# ... and keep it with every threshold this much lower: a paraphrase of a cached
# prompt moves its similarity by a few hundredths, so a threshold just above the
# most similar miss of the training folds is one rewording away from serving it.
MARGIN = 0.03
# Strict also serves no training miss even with the thresholds MARGIN lower: every
# miss the guard lets through sits that far below them (loose, opt-in, accepts
# some wrong hits by design).
SPOTLESS = {"strict": True, "loose": False}
GRID_ALIGNED = [round(0.60 + 0.01 * i, 2) for i in range(36)]  # 0.60 .. 0.95
GRID_REWORDED = [round(0.75 + 0.01 * i, 2) for i in range(25)]  # 0.75 .. 0.99


@dataclass(frozen=True, slots=True)
class Pair:
    """One labelled pair of prompts."""

    a: str
    b: str
    hit: bool
    kind: str
    domain: str


@dataclass(slots=True)
class Outcome:
    """What the gateway did with one pair, and what the guard saw."""

    pair: Pair
    served: bool  # b was a semantic hit on a's entry
    similarity: float
    reason: str | None  # the guard's refusal before thresholds (None: it may pass)
    alignment: str  # aligned | reworded
    lookup_ms: float  # before() of b: exact miss + embedding + search + guard
    guard_us: float  # the guard alone (features of both texts + decision)


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
        pairs.append(Pair(raw["a"], raw["b"], raw["label"] == "hit", raw["kind"], raw["domain"]))
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
    from gateway_app.cache.guard import Features, align, same_request
    from gateway_app.cache.hook import build
    from gateway_app.hooks import RequestContext
    from gateway_app.providers.base import ChatResult

    hook = build(config, None, None, router=None)
    assert hook is not None and hook.semantic is not None
    hook.semantic.embedder.timeout_s = 300.0  # type: ignore[attr-defined]
    await hook.semantic.embedder.warm()  # type: ignore[attr-defined]
    guard = hook.policies["eval"].guard

    def request(text: str, tenant: str) -> RequestContext:
        body = {"model": "eval", "messages": [{"role": "user", "content": text}]}
        ctx = RequestContext(request_id=tenant, endpoint="/v1/chat/completions", headers={})
        ctx.body, ctx.model, ctx.team_id = body, "eval", tenant
        return ctx

    outcomes = []
    for i, pair in enumerate(pairs):
        tenant = f"pair-{i}"
        first = request(pair.a, tenant)
        assert await hook.before(first) is None, f"pair {i}: the first prompt was served"
        first.status, first.result = 200, ChatResult(b'{"answer": "a"}')
        await hook.after(first)
        second = request(pair.b, tenant)
        started = time.perf_counter()
        await hook.before(second)
        lookup_ms = (time.perf_counter() - started) * 1000
        lookup = second.extra.get("semantic_lookup")
        if lookup is None or lookup.similarity is None:
            raise RuntimeError(f"pair {i}: no semantic lookup happened (embedder over capacity?)")
        started = time.perf_counter()
        fa, fb = Features(pair.a), Features(pair.b)
        reason = same_request(fb, fa, guard.substitutions, guard.qualifiers)
        guard_us = (time.perf_counter() - started) * 1e6
        outcomes.append(
            Outcome(
                pair,
                second.cache_outcome == "semantic-hit",
                lookup.similarity,
                reason,
                align(fb.stems, fa.stems),
                lookup_ms,
                guard_us,
            )
        )
    await hook.stop()
    return outcomes


def exact_hit_ms(pairs: list[Pair], config: Any, count: int = 200) -> list[float]:
    """Time of an exact hit's lookup (the embedder must stay off this path)."""
    from gateway_app.cache.hook import build
    from gateway_app.hooks import RequestContext
    from gateway_app.providers.base import ChatResult

    async def run() -> list[float]:
        hook = build(config, None, None, router=None)
        assert hook is not None
        times = []
        for i, pair in enumerate(pairs[:count]):
            for attempt in range(2):
                body = {"model": "eval", "messages": [{"role": "user", "content": pair.a}]}
                ctx = RequestContext(request_id="x", endpoint="/v1/chat/completions", headers={})
                ctx.body, ctx.model, ctx.team_id = body, "eval", f"exact-{i}"
                # Opt out of the semantic side: the stored answer is found by its hash.
                ctx.headers["x-aigw-semantic-cache"] = "false"
                started = time.perf_counter()
                await hook.before(ctx)
                if attempt:
                    assert ctx.cache_outcome == "hit"
                    times.append((time.perf_counter() - started) * 1000)
                else:
                    ctx.status, ctx.result = 200, ChatResult(b"{}")
                    await hook.after(ctx)
        return times

    return _run(run())


def _run(coroutine: Any) -> Any:
    # A private loop: asyncio.run would clear the main thread's current loop, which
    # the Pulumi SDK (tests/infra, in the same pytest process) still asks for.
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


def decide(outcome: Outcome, aligned: float, reworded: float) -> bool:
    """The guard's decision at other thresholds (the same rule as ``guard.judge``)."""
    if outcome.reason is not None:
        return False
    needed = aligned if outcome.alignment == "aligned" else reworded
    return outcome.similarity >= needed


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


def choose(outcomes: list[Outcome], target: float, spotless: bool) -> tuple[float, float]:
    """The (aligned, reworded) thresholds with the highest recall that keep precision.

    Precision must keep a Wilson lower bound of ``target`` with both thresholds
    ``MARGIN`` lower too, and, when ``spotless`` (strict), no miss may be served
    even then: every miss the guard lets through sits at least ``MARGIN`` below
    the thresholds. Ties go to the higher thresholds (the conservative choice).
    Vectorised: the grid has ~900 points.
    """
    import numpy as np

    similarity = np.array([o.similarity for o in outcomes])
    passes = np.array([o.reason is None for o in outcomes])
    aligned_pair = np.array([o.alignment == "aligned" for o in outcomes])
    label = np.array([o.pair.hit for o in outcomes])
    positives = int(label.sum())

    def predicted(aligned: float, reworded: float) -> Any:
        return passes & (similarity >= np.where(aligned_pair, aligned, reworded))

    best: tuple[float, float, float] | None = None  # recall, reworded, aligned
    for aligned in GRID_ALIGNED:
        for reworded in GRID_REWORDED:
            lower = predicted(aligned - MARGIN, reworded - MARGIN)
            hits = int(lower.sum())
            correct = int((lower & label).sum())
            if not hits or (spotless and correct < hits) or wilson_lower(correct, hits) < target:
                continue
            recall = int((predicted(aligned, reworded) & label).sum()) / positives
            if best is None or (recall, reworded, aligned) > best:
                best = (recall, reworded, aligned)
    if best is None:
        return max(GRID_ALIGNED), max(GRID_REWORDED)
    return best[2], best[1]


def wilson_lower(successes: int, trials: int, z: float = 1.96) -> float:
    """Lower end of the Wilson score interval of a proportion (95% by default)."""
    p = successes / trials
    centre = p + z * z / (2 * trials)
    margin = z * ((p * (1 - p) + z * z / (4 * trials)) / trials) ** 0.5
    return (centre - margin) / (1 + z * z / trials)


def cross_validate(
    outcomes: list[Outcome], folds: int, target: float, spotless: bool
) -> dict[str, Any]:
    """K-fold: thresholds chosen on K-1 folds, decisions on the held-out one."""

    def fold(outcome: Outcome) -> int:
        digest = hashlib.sha256((outcome.pair.a + "\0" + outcome.pair.b).encode()).digest()
        return digest[0] % folds

    predicted: dict[int, bool] = {}
    chosen = []
    for k in range(folds):
        train = [o for o in outcomes if fold(o) != k]
        aligned, reworded = choose(train, target, spotless)
        chosen.append({"fold": k, "aligned": aligned, "reworded": reworded})
        for i, o in enumerate(outcomes):
            if fold(o) == k:
                predicted[i] = decide(o, aligned, reworded)
    held_out = [predicted[i] for i in range(len(outcomes))]
    aligned, reworded = choose(outcomes, target, spotless)
    return {
        "folds": folds,
        "target_wilson_lower_bound_on_training_folds": target,
        "no_training_miss_within_margin": spotless,
        "similarity_margin": MARGIN,
        "chosen_per_fold": chosen,
        "held_out": figures(held_out, outcomes),
        "held_out_per_kind": breakdown(held_out, outcomes, "kind"),
        "chosen_on_whole_file": {"aligned": aligned, "reworded": reworded},
    }


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def evaluate(
    path: Path,
    guard: str = "strict",
    threshold: float | None = None,
    folds: int = 0,
    show_errors: bool = False,
) -> dict[str, Any]:
    """Run the pairs of ``path`` through the cache and return the result document."""
    from gateway_app.cache.guard import PROFILES
    from gateway_app.cache.hook import guard_policy

    pairs = load_pairs(path)
    config = gateway_config(guard, threshold)
    policy = guard_policy(guard, threshold)
    outcomes = _run(run_pairs(pairs, config))
    served = [o.served for o in outcomes]
    # The decomposition used for cross-validation must agree with the hook itself.
    disagree = [
        i for i, o in enumerate(outcomes) if decide(o, policy.aligned, policy.reworded) != o.served
    ]
    if disagree:
        raise RuntimeError(f"guard decomposition disagrees with the hook on pairs {disagree}")
    lookups = [o.lookup_ms for o in outcomes]
    guards = [o.guard_us for o in outcomes]
    exact = exact_hit_ms(pairs, config)
    result: dict[str, Any] = {
        "pairs_file": str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path),
        "pairs_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "guard": guard,
        "thresholds": {"aligned": policy.aligned, "reworded": policy.reworded},
        "substitutions_refused": policy.substitutions,
        "overall": figures(served, outcomes),
        "per_kind": breakdown(served, outcomes, "kind"),
        "per_domain": breakdown(served, outcomes, "domain"),
        "latency": {
            "semantic_lookup_ms": {
                "p50": round(percentile(lookups, 0.5), 3),
                "p99": round(percentile(lookups, 0.99), 3),
                "what": "hook.before on an exact miss: exact lookup, embedding, search, guard",
            },
            "guard_us": {
                "p50": round(percentile(guards, 0.5), 1),
                "p99": round(percentile(guards, 0.99), 1),
                "what": "lexical features of both prompts and the decision",
            },
            "exact_hit_ms": {
                "p50": round(percentile(exact, 0.5), 4),
                "p99": round(percentile(exact, 0.99), 4),
                "what": "hook.before of an exact hit (no embedding on this path)",
            },
        },
        "other_profiles": {},
        "machine": {"python": sys.version.split()[0], "load_average": _load()},
    }
    for name, other in PROFILES.items():
        if name == guard or other.substitutions != policy.substitutions:
            continue  # a profile with another rule needs its own run (--guard NAME)
        predicted = [decide(o, other.aligned, other.reworded) for o in outcomes]
        result["other_profiles"][name] = {
            "thresholds": {"aligned": other.aligned, "reworded": other.reworded},
            "overall": figures(predicted, outcomes),
        }
    cosine = {}
    for t in (0.80, 0.85, 0.90, 0.95):
        cosine[str(t)] = figures([o.similarity >= t for o in outcomes], outcomes)
    result["cosine_alone"] = cosine
    if folds:
        result["cross_validation"] = cross_validate(
            outcomes, folds, TARGETS[guard], SPOTLESS[guard]
        )
    if show_errors:
        result["wrong_hits"] = [
            {"a": o.pair.a, "b": o.pair.b, "kind": o.pair.kind, "similarity": o.similarity}
            for o in outcomes
            if o.served and not o.pair.hit
        ]
        result["missed_paraphrases"] = [
            {"a": o.pair.a, "b": o.pair.b, "similarity": round(o.similarity, 4), "why": o.reason}
            for o in outcomes
            if o.pair.hit and not o.served
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
        f"{result['pairs_file']}: {o['pairs']} pairs, guard {result['guard']} "
        f"(aligned >= {result['thresholds']['aligned']}, "
        f"reworded >= {result['thresholds']['reworded']})",
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
        f"p99 {lat['semantic_lookup_ms']['p99']} ms (guard: p50 {lat['guard_us']['p50']} us, "
        f"p99 {lat['guard_us']['p99']} us); exact hit p50 {lat['exact_hit_ms']['p50']} ms"
    )
    cv = result.get("cross_validation")
    if cv:
        h = cv["held_out"]
        lines.append(
            f"  {cv['folds']}-fold cross-validation (thresholds chosen on the other folds): "
            f"precision {h['precision']}  recall {h['recall']}; "
            f"chosen on the whole file: {cv['chosen_on_whole_file']}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line entry: evaluate, print, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=Path, required=True, help="a pair file (see module doc)")
    parser.add_argument("--guard", choices=("strict", "loose"), default="strict")
    parser.add_argument("--threshold", type=float, help="override the reworded threshold")
    parser.add_argument("--cross-validate", type=int, default=0, metavar="K", dest="folds")
    parser.add_argument("--show-errors", action="store_true", help="list wrong and missed pairs")
    parser.add_argument("--out", type=Path, help="default: bench/semantic-eval-<file>-<guard>.json")
    args = parser.parse_args(argv)
    try:
        result = evaluate(args.pairs, args.guard, args.threshold, args.folds, args.show_errors)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.out or BENCH / f"semantic-eval-{args.pairs.stem}-{args.guard}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(report(result))
    print(f"  written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
