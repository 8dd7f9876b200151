"""What each global-governance option adds to a request's hot path, measured.

The hot path's only state call is the reservation (``RedisGovernanceState.reserve_exact``,
one Lua script checks and counts every rate limit and budget level; admission leases,
``gateway_app/state/admission.py``, spare most requests even that call). Measured
here, one call at a time (like one request), with the real script and client:

1. ``local``: the gateway today, against its own cloud's Redis;
2. ``local+lease-keys``: the escrow design's script: each budget level's limit
   is read from the cloud's lease key inside the same script (one more GET per
   level, same round trip);
3. ``remote-<d>ms``: the same reservation against a Redis in another cloud
   through a fault-injector link with ``d`` ms one-way delay: the floor of any
   design that checks a globally consistent counter per request (a consensus
   write of CockroachDB, YugabyteDB or Spanner needs at least this round trip,
   usually more); ``remote-0ms`` is the injector's own cost per round trip.

Levels per request: key (rpm, tpm), team (daily, monthly), project (monthly),
org (monthly): 2 rate items and 4 budget items. Loopback only, bounded, the
redis-servers stopped by PID:

    .venv/bin/python bench/multicloud_hotpath.py     # writes bench/multicloud-hotpath.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import uvloop

from gateway_app.state.governance import BudgetItem, RateItem, lease_key
from gateway_app.state.governance_redis import RedisGovernanceState
from tests.gateway.governance.services import RedisServer
from tests.multicloud.faults import Injector

RATE = (RateItem("key:k1", "rpm", 10**9, 1), RateItem("key:k1", "tpm", 10**12, 1200))
BUDGETS = tuple(
    BudgetItem(scope, period, "2026-12", 10**18, 600_000, 3600)
    for scope, period in (
        ("team:t1", "daily"),
        ("team:t1", "monthly"),
        ("project:p1", "monthly"),
        ("org:*", "monthly"),
    )
)


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "calls": len(ordered),
        "p50_ms": round(statistics.median(ordered), 3),
        "p90_ms": round(ordered[int(0.90 * len(ordered))], 3),
        "p99_ms": round(ordered[int(0.99 * len(ordered))], 3),
    }


async def reserve_times(state: RedisGovernanceState, calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        began = time.perf_counter()
        decision = await state.reserve_exact(RATE, BUDGETS, time.time())
        times.append((time.perf_counter() - began) * 1000)
        assert decision.allowed
    return times


async def leased_times(state: RedisGovernanceState, calls: int) -> list[float]:
    """The gateway's own script with leases on (``leased=True``: the global plane)."""
    for budget in BUDGETS:  # each cloud's lease: what the home granted it
        await state.client.set(state.prefix + lease_key(budget), 10**18)
    return await reserve_times(state, calls)


async def main_async(args: Any) -> dict[str, Any]:
    server = RedisServer()
    injector = Injector()
    results: dict[str, Any] = {}
    try:
        local = RedisGovernanceState.from_url(server.url)
        with_leases = RedisGovernanceState.from_url(server.url, leased=True)
        await reserve_times(local, 200)  # warm up (script load, connection)
        await leased_times(with_leases, 200)
        # Interleaved in rounds, so a burst of load from elsewhere hits both alike.
        plain: list[float] = []
        leased: list[float] = []
        for _ in range(6):
            plain += await reserve_times(local, args.calls // 6)
            leased += await leased_times(with_leases, args.calls // 6)
        results["local"] = stats(plain)
        results["local+lease-keys"] = stats(leased)
        await local.close()
        await with_leases.close()
        for delay in args.delays:
            link = injector.link(f"remote-{delay}", ("127.0.0.1", server.port)).delay(delay)
            remote = RedisGovernanceState.from_url(f"redis://127.0.0.1:{link.port}/0")
            await reserve_times(remote, 5)
            calls = args.calls if delay == 0 else args.remote_calls
            results[f"remote-{round(delay * 1000)}ms"] = stats(await reserve_times(remote, calls))
            await remote.close()
        return results
    finally:
        injector.close()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--remote-calls", type=int, default=100)
    parser.add_argument("--delays", type=float, nargs="+", default=[0.0, 0.010, 0.040])
    parser.add_argument(
        "--out", default=os.path.join(os.path.dirname(__file__), "multicloud-hotpath.json")
    )
    args = parser.parse_args()
    results = uvloop.run(main_async(args))
    print(json.dumps(results, indent=2))
    with open(args.out, "w") as handle:
        json.dump(
            {
                "settings": {k: v for k, v in vars(args).items() if k != "out"},
                "results": results,
            },
            handle,
            indent=2,
        )
        handle.write("\n")


if __name__ == "__main__":
    main()
