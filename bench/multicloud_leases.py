"""One team budget spent from three clouds at once: islands, periodic sync and escrow leases.

The prototype behind the budget section of docs/decisions/0001-global-governance-plane.md.
Three clouds, each with its own redis-server; a home cloud (aws) keeps the
ledger and serves it over HTTP; every other cloud reaches it through a link of
the fault injector (tests/multicloud/faults.py) with ``--delay`` one-way latency.
Each cloud receives ``--requests`` requests within half a second (3 x 200 by
default): a request reserves its maximum cost ``R`` in its own cloud's Redis
(one script, the hot path), "calls the upstream" (1-2 s), then settles to
its actual cost (0.3-1.0 R). The budget is ``--budget`` reservations.

Strategies (each a fresh set of counters):

* ``islands``: each cloud enforces the whole budget alone (the gateway today).
* ``periodic``: each cloud enforces the budget minus the others' spend as last
  reported to the home, synced every ``--tick`` seconds ("report after").
* ``single``: one counter in the home's Redis for every cloud, no added delay:
  the ideal (one cloud's behaviour), for reference.
* ``global``: the same counter reached through the links (``--delay``): a
  globally consistent store on the hot path (a quorum write is no faster).
* ``escrow-F``: leases (escrow): the home grants each cloud a share of the
  budget; a cloud admits only within what it holds (sum of holdings <= budget,
  always). Target lease = demand over ``cover_s`` within [lease_min, F x budget];
  a request that finds its cloud's lease spent waits up to ``--wait`` for one
  coalesced urgent renewal; idle holdings are reclaimed for clouds that need them.
* ``escrow-5%-partitioned``: the same while gcp is cut off from the home for the
  whole burst (drop partition), then healed and reconciled.
* ``escrow-5%-partitioned-overdraft``: as above, with the optional partition
  overdraft: a cut-off cloud may admit one lease (5%) beyond what it holds.

Loopback only, bounded (each strategy at most ~15 s), servers stopped by PID:

    .venv/bin/python bench/multicloud_leases.py            # writes bench/multicloud-leases.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import redis.asyncio as aioredis
import uvloop
from aiohttp import ClientSession, ClientTimeout, web

from tests.gateway.governance.services import RedisServer
from tests.multicloud.faults import Injector
from tests.ports import kept_port

CLOUDS = ("aws", "azure", "gcp")
HOME = "aws"
R = 600_000  # nano-USD: one request's maximum cost (1,000 output tokens of gpt-4o-mini)

# The hot path's budget check, with the limit read from the cloud's lease key
# (phase B: the gateway's reserve script gains this one GET; same round trip).
RESERVE = """
local held = tonumber(redis.call('GET', KEYS[2]) or '0')
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
if spent + amount > held then return {0, spent, held} end
redis.call('INCRBY', KEYS[1], amount)
return {1, spent, held}
"""
# A grant is the home's cumulative total for this cloud: applied once, in any order.
APPLY_GRANT = """
local seen = tonumber(redis.call('GET', KEYS[2]) or '0')
local total = tonumber(ARGV[1])
if total > seen then
  redis.call('INCRBY', KEYS[1], total - seen)
  redis.call('SET', KEYS[2], total)
end
return redis.call('GET', KEYS[1])
"""
# Give back up to ARGV[1] of what is held and not spent or reserved (atomic with reservations).
RETURN = """
local held = tonumber(redis.call('GET', KEYS[1]) or '0')
local spent = tonumber(redis.call('GET', KEYS[2]) or '0')
local give = math.min(tonumber(ARGV[1]), math.max(0, held - spent))
redis.call('DECRBY', KEYS[1], give)
return give
"""


class Ledger:
    """The home's escrow ledger for one budget (phase B: rows locked per renewal in PostgreSQL).

    Invariant: the sum over clouds of (granted - returned) never exceeds the limit,
    so reservations admitted anywhere never exceed it either.
    """

    def __init__(self, limit: int, lease_min: int, lease_max: int, cover_s: float) -> None:
        self.limit = limit
        self.lease_min = lease_min
        self.lease_max = lease_max
        self.cover_s = cover_s
        self.granted = dict.fromkeys(CLOUDS, 0)
        self.returned = dict.fromkeys(CLOUDS, 0)
        self.spent = dict.fromkeys(CLOUDS, 0)
        self.want = dict.fromkeys(CLOUDS, 0)
        self.last_seq = dict.fromkeys(CLOUDS, 0)
        self.replies: dict[str, dict[str, int]] = {}

    def free(self) -> int:
        return self.limit - sum(self.granted[c] - self.returned[c] for c in CLOUDS)

    def renew(self, cloud: str, seq: int, report: dict[str, Any]) -> dict[str, int]:
        """One renewal: record the cloud's report, grant (fair share when short), ask returns."""
        if seq <= self.last_seq[cloud]:
            return self.replies[cloud]  # a retried renewal: the same answer (idempotent)
        self.last_seq[cloud] = seq
        self.spent[cloud] = report["spent"]
        self.returned[cloud] = max(self.returned[cloud], report["returned"])
        remainder = self.granted[cloud] - self.returned[cloud] - report["spent"]
        target = min(max(report["rate"] * self.cover_s, self.lease_min), self.lease_max)
        self.want[cloud] = max(0, int(target) - remainder, report["need"] - remainder)
        free = self.free()
        total_want = sum(self.want.values())
        grant = self.want[cloud] if total_want <= free else free * self.want[cloud] // total_want
        grant = min(grant, free)
        self.granted[cloud] += grant
        self.want[cloud] -= grant
        # Reclaim: while others wait and the pool is dry, idle holdings above target go back.
        give_back = 0
        others_want = total_want - self.want[cloud] - grant
        if self.free() < self.lease_min and others_want > 0 and report["need"] == 0:
            give_back = max(0, remainder + grant - int(target))
        # Exhausted: nothing free and nothing the others hold unspent (as last reported).
        others_left = sum(
            self.granted[c] - self.returned[c] - self.spent[c] for c in CLOUDS if c != cloud
        )
        exhausted = self.free() < self.lease_min and others_left < self.lease_min
        reply = {"granted": self.granted[cloud], "return": give_back, "exhausted": exhausted}
        self.replies[cloud] = reply
        return reply

    def others_spent(self, cloud: str) -> int:
        """For the periodic strategy: what the other clouds reported."""
        return sum(v for c, v in self.spent.items() if c != cloud)


@dataclass
class Outcome:
    """What happened to one strategy's requests."""

    served: int = 0
    refused: int = 0
    waited: int = 0
    spend: int = 0
    wait_ms: list[float] = field(default_factory=list)
    served_by: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLOUDS, 0))


class Cloud:
    """One cloud: its Redis, its lease keys and its agent towards the home's ledger."""

    def __init__(
        self, name: str, redis_url: str, home_url: str, args: Any, prefix: str | None = None
    ) -> None:
        self.name = name
        # Requests beyond the pool wait for a connection (as the gateway's client does).
        self.redis = aioredis.Redis(
            connection_pool=aioredis.BlockingConnectionPool.from_url(
                redis_url, max_connections=64, timeout=20
            )
        )
        self.home_url = home_url
        self.args = args
        prefix = prefix or name  # "global": every cloud uses the home's keys
        self.spent_key, self.held_key, self.seen_key = (
            f"{{b}}:{prefix}:spent",
            f"{{b}}:{prefix}:held",
            f"{{b}}:{prefix}:seen",
        )
        self.reserve = self.redis.register_script(RESERVE)
        self.apply_grant = self.redis.register_script(APPLY_GRANT)
        self.give = self.redis.register_script(RETURN)
        self.seq = 0
        self.returned = 0
        self.need = 0
        self.rate = 0.0
        self._last = (time.monotonic(), 0)
        self._renewal: asyncio.Task[bool] | None = None
        self.http: ClientSession | None = None
        self.unreachable = False
        self.last_ok = time.monotonic()
        self.exhausted = False
        self.overdraft_used = 0

    async def spent(self) -> int:
        return int(await self.redis.get(self.spent_key) or 0)

    async def renew(self) -> bool:
        """One renewal round trip to the home (``False``: unreachable within the timeout)."""
        assert self.http is not None
        spent = await self.spent()
        now = time.monotonic()
        then, before = self._last
        if now - then >= 0.2:
            self.rate = max(0.0, (spent - before) / (now - then))
            self._last = (now, spent)
        self.seq += 1
        body = {
            "cloud": self.name,
            "seq": self.seq,
            "report": {
                "spent": spent,
                "returned": self.returned,
                "need": self.need,
                "rate": self.rate,
            },
        }
        try:
            async with self.http.post(self.home_url + "/renew", json=body) as response:
                reply = await response.json()
        except (TimeoutError, OSError, Exception):
            self.unreachable = True
            return False
        self.unreachable = False
        self.last_ok = time.monotonic()
        # Nothing left to grant: requests that find the lease spent are refused at once.
        self.exhausted = bool(reply.get("exhausted"))
        await self.apply_grant(keys=[self.held_key, self.seen_key], args=[reply["granted"]])
        if reply["return"]:
            self.returned += int(
                await self.give(keys=[self.held_key, self.spent_key], args=[reply["return"]])
            )
        if "others" in reply:  # periodic strategy: the budget minus the others' spend
            await self.redis.set(self.held_key, self.args.budget * R - reply["others"])
        return True

    async def urgent(self, amount: int) -> None:
        """Coalesce waiting requests' needs into one renewal, waited for at most ``--wait``."""
        self.need += amount
        if self._renewal is None or self._renewal.done():
            self._renewal = asyncio.create_task(self.renew())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.args.wait):
                await asyncio.shield(self._renewal)
        self.need = max(0, self.need - amount)

    async def ticker(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.renew()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.args.tick):
                    await stop.wait()


async def run_strategy(
    name: str, args: Any, redis_urls: dict[str, str], injector: Injector
) -> dict[str, Any]:
    escrow = name.startswith("escrow")
    fraction = float(name.split("-")[1].rstrip("%")) / 100 if escrow else 0.0
    partitioned = "partitioned" in name
    overdraft = "overdraft" in name
    limit = args.budget * R
    lease_max = max(R, int(fraction * limit))
    ledger = Ledger(limit, lease_min=max(R, lease_max // 4), lease_max=lease_max, cover_s=2.0)

    async def renew(request: web.Request) -> web.Response:
        body = await request.json()
        reply = ledger.renew(body["cloud"], body["seq"], body["report"])
        if name == "periodic":
            reply = {"granted": 0, "return": 0, "others": ledger.others_spent(body["cloud"])}
        return web.json_response(reply)

    app = web.Application()
    app.router.add_post("/renew", renew)
    runner = web.AppRunner(app)
    await runner.setup()
    port = kept_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    links = {
        c: injector.link(f"{name}#{args.seed}:{c}->{HOME}", ("127.0.0.1", port)).delay(
            0 if c == HOME else args.delay
        )
        for c in CLOUDS
    }
    if name in ("global", "single"):
        # One counter in the home's Redis, reached from the other clouds through their link:
        # what a globally consistent store on the hot path costs (a quorum write is no faster).
        home_redis = redis_urls[HOME].rsplit(":", 1)[0].rsplit("//", 1)[1]
        port_of = int(redis_urls[HOME].rsplit(":", 1)[1].split("/")[0])
        redis_links = {
            c: injector.link(f"{name}#{args.seed}:{c}->{HOME}-redis", (home_redis, port_of)).delay(
                args.delay
            )
            for c in CLOUDS
            if c != HOME
        }
        clouds = {
            c: Cloud(
                c,
                redis_urls[HOME] if c == HOME else f"redis://127.0.0.1:{redis_links[c].port}/0",
                links[c].url,
                args,
                prefix=HOME,
            )
            for c in CLOUDS
        }
    else:
        clouds = {c: Cloud(c, redis_urls[c], links[c].url, args) for c in CLOUDS}
    outcome = Outcome()
    rng = random.Random(args.seed)
    for cloud in clouds.values():
        await cloud.redis.delete(cloud.spent_key, cloud.held_key, cloud.seen_key)
        # Renewals time out after 1 s (the home shares this process's loop with 600 requests).
        cloud.http = ClientSession(timeout=ClientTimeout(total=1.0))
        if name in ("islands", "global", "single"):
            await cloud.redis.set(cloud.held_key, limit)
        else:
            await cloud.renew()  # the initial lease (or, periodic, the initial sync)
    peaks = dict.fromkeys(CLOUDS, 0)
    stop = asyncio.Event()
    tickers = (
        []
        if name in ("islands", "global", "single")
        else [asyncio.create_task(c.ticker(stop)) for c in clouds.values()]
    )
    if partitioned:
        # Cut gcp off a while before the burst: it has noticed by the time traffic comes.
        links["gcp"].partition("drop")
        await asyncio.sleep(2 * args.tick + 1.2)

    async def request(cloud: Cloud, start: float, upstream_s: float, actual: int) -> None:
        await asyncio.sleep(start)
        allowed, before, _ = await cloud.reserve(keys=[cloud.spent_key, cloud.held_key], args=[R])
        cut_off = time.monotonic() - cloud.last_ok > 2 * args.tick
        if not allowed and overdraft and cut_off and cloud.overdraft_used == 0:
            # Cut off from the home: the optional partition overdraft, one lease, once.
            cloud.overdraft_used = ledger.lease_max
            await cloud.redis.incrby(cloud.held_key, ledger.lease_max)
            allowed, before, _ = await cloud.reserve(
                keys=[cloud.spent_key, cloud.held_key], args=[R]
            )
        if not allowed and (escrow or name == "periodic") and not cloud.exhausted and not cut_off:
            began = time.monotonic()
            outcome.waited += 1
            await cloud.urgent(R)
            allowed, before, _ = await cloud.reserve(
                keys=[cloud.spent_key, cloud.held_key], args=[R]
            )
            outcome.wait_ms.append((time.monotonic() - began) * 1000)
        if not allowed:
            outcome.refused += 1
            return
        # Each counter's highest value, from Redis' own replies; summed over the clouds'
        # counters it bounds the peak of all reservations from above.
        counter = HOME if name in ("global", "single") else cloud.name
        peaks[counter] = max(peaks[counter], int(before) + R)
        await asyncio.sleep(upstream_s)
        await cloud.redis.incrby(cloud.spent_key, actual - R)  # settle: actual - reserved
        outcome.served += 1
        outcome.served_by[cloud.name] += 1
        outcome.spend += actual

    started = time.monotonic()
    await asyncio.gather(
        *(
            request(
                cloud, rng.uniform(0, 0.5), rng.uniform(0.1, 0.3), int(R * rng.uniform(0.3, 1.0))
            )
            for cloud in clouds.values()
            for _ in range(args.requests)
        )
    )
    burst_s = time.monotonic() - started
    if partitioned:
        links["gcp"].heal()
    # Reconcile: one more renewal from everyone after healing; the ledger then knows all spend.
    await asyncio.sleep(args.tick)
    stop.set()
    await asyncio.gather(*tickers)
    for cloud in clouds.values():
        await cloud.renew()
    true_spend = sum([await c.spent() for c in clouds.values()])
    if name in ("global", "single"):
        true_spend //= len(CLOUDS)  # one shared counter, read three times
    assert true_spend == outcome.spend, (true_spend, outcome.spend)
    held = {c: int(await clouds[c].redis.get(clouds[c].held_key) or 0) for c in CLOUDS}
    result = {
        "strategy": name,
        "requests": args.requests * len(CLOUDS),
        "served": outcome.served,
        "served_by_cloud": outcome.served_by,
        "refused": outcome.refused,
        "spend_over_budget": round(outcome.spend / limit, 4),
        "overspend_in_R": round(max(0, outcome.spend - limit) / R, 2),
        "unspent_at_end_in_R": round(max(0, limit - outcome.spend) / R, 2),
        "peak_reserved_over_budget": round(sum(peaks.values()) / limit, 4),
        "requests_that_waited": outcome.waited,
        "wait_ms_p50": round(statistics.median(outcome.wait_ms), 1) if outcome.wait_ms else 0.0,
        "wait_ms_max": round(max(outcome.wait_ms), 1) if outcome.wait_ms else 0.0,
        "ledger_reported_spend_equals_true_spend": (
            sum(ledger.spent.values()) == true_spend if name.startswith("escrow") else None
        ),
        "sum_held_over_budget": round(sum(held.values()) / limit, 4),
        "overdraft_used_in_R": round(sum(c.overdraft_used for c in clouds.values()) / R, 2),
        "burst_s": round(burst_s, 2),
    }
    for cloud in clouds.values():
        assert cloud.http is not None
        await cloud.http.close()
        await cloud.redis.aclose()
    await runner.cleanup()
    return result


def summarize(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Worst case for the bounds, medians for the rest (timing varies run to run)."""

    def median(key: str) -> float:
        return statistics.median(run[key] for run in runs)

    return {
        "strategy": name,
        "runs": len(runs),
        "requests_per_run": runs[0]["requests"],
        "max_spend_over_budget": max(run["spend_over_budget"] for run in runs),
        "max_overspend_in_R": max(run["overspend_in_R"] for run in runs),
        "max_peak_reserved_over_budget": max(run["peak_reserved_over_budget"] for run in runs),
        "median_served": median("served"),
        "median_unspent_at_end_in_R": median("unspent_at_end_in_R"),
        "median_requests_that_waited": median("requests_that_waited"),
        "median_wait_ms_p50": median("wait_ms_p50"),
        "max_wait_ms": max(run["wait_ms_max"] for run in runs),
        "ledger_reported_spend_equals_true_spend": (
            all(run["ledger_reported_spend_equals_true_spend"] for run in runs)
            if name.startswith("escrow")
            else None
        ),
        "max_overdraft_used_in_R": max(run["overdraft_used_in_R"] for run in runs),
    }


async def main_async(args: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    servers = {c: RedisServer() for c in CLOUDS}
    injector = Injector()
    try:
        urls = {c: s.url for c, s in servers.items()}
        runs, summaries = [], []
        for strategy in args.strategies.split(","):
            these = []
            for run in range(args.runs):
                args.seed = args.base_seed + run
                async with asyncio.timeout(60):
                    result = await run_strategy(strategy, args, urls, injector)
                these.append({"seed": args.seed, **result})
            runs += these
            summaries.append(summarize(strategy, these))
            print(json.dumps(summaries[-1]))
        return summaries, runs
    finally:
        injector.close()
        for server in servers.values():
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per cloud")
    parser.add_argument("--budget", type=int, default=150, help="budget in max reservations R")
    parser.add_argument("--delay", type=float, default=0.04, help="one-way delay to the home, s")
    parser.add_argument("--tick", type=float, default=0.5, help="renewal / sync interval, s")
    parser.add_argument("--wait", type=float, default=0.3, help="max wait for an urgent grant, s")
    parser.add_argument("--base-seed", type=int, default=29)
    parser.add_argument("--runs", type=int, default=3, help="runs per strategy (seeds)")
    parser.add_argument(
        "--upstream",
        type=float,
        nargs=2,
        default=(1.0, 2.0),
        help="upstream time range, s (long: all 3 x 200 requests are in flight together)",
    )
    parser.add_argument(
        "--strategies",
        default="islands,periodic,single,global,escrow-1%,escrow-5%,escrow-20%,"
        "escrow-5%-partitioned,escrow-5%-partitioned-overdraft",
    )
    parser.add_argument(
        "--out", default=os.path.join(os.path.dirname(__file__), "multicloud-leases.json")
    )
    args = parser.parse_args()
    summaries, runs = uvloop.run(main_async(args))
    with open(args.out, "w") as handle:
        json.dump(
            {
                "settings": {k: v for k, v in vars(args).items() if k not in ("out", "seed")},
                "R_nusd": R,
                "summary": summaries,
                "runs": runs,
            },
            handle,
            indent=2,
        )
        handle.write("\n")


if __name__ == "__main__":
    main()
