"""Routing strategies choose deterministically with a seeded random source."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from gateway_app.config import parse
from gateway_app.router import LatencyTracker, Route, Router, order_deployments
from gateway_app.state.circuit import InProcessCircuitBreakerStore
from tests.fakes import FakeUpstream

USER = [{"role": "user", "content": "hello"}]


def _route(strategy: str, deployments: list[dict[str, Any]]) -> Route:
    config = parse(
        {
            "providers": {"p": {"type": "openai", "api_key": "k"}},
            "models": {"m": {"strategy": strategy, "deployments": deployments}},
        }
    )
    return Router(config, InProcessCircuitBreakerStore(config.router.circuit_breaker)).routes["m"]


def _ids(ordered: list[Any]) -> list[str]:
    return [d.config.model for d in ordered]


def test_failover_orders_by_priority_then_config_order() -> None:
    route = _route(
        "failover",
        [
            {"provider": "p", "model": "b", "priority": 1},
            {"provider": "p", "model": "a", "priority": 0},
            {"provider": "p", "model": "c", "priority": 1},
        ],
    )
    assert _ids(
        order_deployments(route, random.Random(1), LatencyTracker(0.3), lambda _: False)
    ) == ["a", "b", "c"]


def test_weighted_split_follows_weights_and_is_reproducible() -> None:
    route = _route(
        "weighted",
        [
            {"provider": "p", "model": "stable", "weight": 9},
            {"provider": "p", "model": "canary", "weight": 1},
            {"provider": "p", "model": "fallback-only", "weight": 0},
        ],
    )

    def firsts(seed: int) -> list[str]:
        rng = random.Random(seed)
        return [
            _ids(order_deployments(route, rng, LatencyTracker(0.3), lambda _: False))[0]
            for _ in range(2000)
        ]

    assert firsts(42) == firsts(42)
    counts = Counter(firsts(42))
    assert 1650 < counts["stable"] < 1950 and counts["canary"] == 2000 - counts["stable"]
    ordered = _ids(order_deployments(route, random.Random(3), LatencyTracker(0.3), lambda _: False))
    assert sorted(ordered[:2]) == ["canary", "stable"] and ordered[2] == "fallback-only"


def test_lowest_cost_orders_by_price() -> None:
    route = _route(
        "lowest_cost",
        [
            {
                "provider": "p",
                "model": "pricey",
                "price": {"input_per_mtok": 3, "output_per_mtok": 15},
            },
            {"provider": "p", "model": "unpriced"},
            {
                "provider": "p",
                "model": "cheap",
                "price": {"input_per_mtok": 0.15, "output_per_mtok": 0.6},
            },
        ],
    )
    assert _ids(
        order_deployments(route, random.Random(1), LatencyTracker(0.3), lambda _: False)
    ) == ["cheap", "pricey", "unpriced"]


def test_lowest_latency_uses_ewma_and_skips_open_circuits() -> None:
    route = _route(
        "lowest_latency", [{"provider": "p", "model": m} for m in ("slow", "fast", "broken", "new")]
    )
    latency = LatencyTracker(0.5)
    for key, samples in {
        "p/slow": [0.2, 0.4],
        "p/fast": [0.5, 0.05, 0.05],
        "p/broken": [0.01],
    }.items():
        for sample in samples:
            latency.observe(key, sample)
    assert latency.ewma["p/slow"] == 0.30000000000000004 or abs(latency.ewma["p/slow"] - 0.3) < 1e-9
    order = _ids(order_deployments(route, random.Random(1), latency, lambda key: key == "p/broken"))
    # never-measured first (so it gets measured), then by EWMA; the open circuit last.
    assert order == ["new", "fast", "slow", "broken"]


def test_weighted_routing_through_the_gateway(
    gateway: Any, fake_openai: FakeUpstream, fake_anthropic: FakeUpstream
) -> None:
    models = {
        "m": {
            "strategy": "weighted",
            "deployments": [
                {"provider": "openai", "model": "a", "weight": 1},
                {"provider": "anthropic", "model": "b", "weight": 1},
            ],
        }
    }

    def run() -> list[str]:
        with gateway(models, seed=11) as gw:
            client = gw.client()
            return [
                client.chat.completions.with_raw_response.create(model="m", messages=USER).headers[
                    "x-aigw-deployment"
                ]
                for _ in range(12)
            ]

    first, second = run(), run()
    assert first == second  # seeded: the same split every run
    assert set(first) == {"openai/a", "anthropic/b"}
