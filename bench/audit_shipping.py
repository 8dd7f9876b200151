"""How many audit events per second one follower cloud ships to the home, and what it costs.

With ``governance.global``, every follower ships its stored audit events to the home's
PostgreSQL (``POST /internal/v1/audit``, ``audit.store_shipped`` at the home). At
50,000 requests/s for the platform the followers together ship ~33,000 events/s; a
follower that ships slower than its clouds serve never catches up
(``aigw_gov_audit_unshipped`` grows). This measures it on the real code path:

* two simulated clouds on loopback (``tests/multicloud``): ``aws`` (the home) and
  ``gcp`` (a follower), each a real gateway process with its own Redis and PostgreSQL,
  ``gcp`` reaching ``aws``'s internal listener through a link (``--one-way-ms`` of
  delay each way: the inter-cloud round trip);
* **end to end** (``e2e``): ``--events`` request events are stored in gcp's PostgreSQL
  (unshipped, as its drainer stores them) and gcp's own gateway ships them: the rate
  is events / time until none is unshipped there;
* **per stage** (``stages``, gcp's gateway stopped): the shipper's steps run here, one
  batch at a time as the gateway ships them, timed apiece: ``select``
  (``audit.unshipped``), ``post`` (the HTTP call, the home's ``store_shipped``
  included) and ``mark`` (``audit.mark_shipped``), for each ``--batches`` size;
* the home's PostgreSQL CPU (every process of its cluster, from ``/proc``) and the home
  gateway's CPU per 1,000 events stored: what the home pays per 1,000 shipped events/s.

Loopback only, bounded (a few minutes), every server stopped by PID. Run it alone::

    flock -x /work/bench.lock .venv/bin/python bench/audit_shipping.py \\
        --label after --out bench/audit-shipping-after.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import orjson

from gateway_app.governance import audit
from gateway_app.governance.peers import OwnToken
from gateway_app.governance.storage import Database
from tests.multicloud.clouds import Cloud, Multicloud, run

_TICK = os.sysconf("SC_CLK_TCK")


def _events(n: int, seq: int) -> list[dict[str, Any]]:
    """``n`` served chat requests' events of cloud gcp, as the gateway records them."""
    audit.set_cloud("gcp")
    try:
        return [
            audit.request_event(
                f"req-{seq:04d}-{i:012x}",
                "key_0123456789abcdef",
                "team-a",
                "project-a",
                None,
                "gpt-4o-mini",
                "gpt-4o-mini-openai",
                "openai",
                200,
                9,
                3,
                3.15e-06,
                1.234,
                None,
                None,
                "reported",
                None,
            )
            for i in range(n)
        ]
    finally:
        audit.set_cloud(None)


def _cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) of these processes so far."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rpartition(")")[2].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICK


def _cluster(cloud: Cloud) -> list[int]:
    """The PIDs of cloud's PostgreSQL cluster: the postmaster and its children."""
    with open(os.path.join(cloud.postgres.data, "postmaster.pid")) as handle:
        master = int(handle.readline())
    pids = [master]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                pids.append(int(entry))
    return pids


class HomeCost:
    """The home's CPU (its PostgreSQL cluster, its gateway) over a measured span."""

    def __init__(self, home: Cloud) -> None:
        self.home = home
        assert home.gateway is not None and home.gateway.process is not None
        self.gateway_pid = home.gateway.process.pid

    def __enter__(self) -> HomeCost:
        self.pg_pids = _cluster(self.home)
        self.pg0, self.gw0 = _cpu(self.pg_pids), _cpu([self.gateway_pid])
        return self

    def __exit__(self, *exc: object) -> None:
        self.pg_s = _cpu(self.pg_pids) - self.pg0
        self.gw_s = _cpu([self.gateway_pid]) - self.gw0

    def per_thousand(self, events: int) -> dict[str, float]:
        """CPU ms per 1,000 events (= cores x 1000 per 1,000 events/s)."""
        return {
            "home_postgres_cpu_ms_per_1000": round(self.pg_s / events * 1e6, 1),
            "home_gateway_cpu_ms_per_1000": round(self.gw_s / events * 1e6, 1),
        }


def _unshipped(db: Database) -> int:
    return int(db.fetch("SELECT COUNT(*) AS n FROM audit_events WHERE shipped_at IS NULL")[0]["n"])


def _stored_at_home(home: Database, tag: str) -> int:
    rows = home.fetch(
        "SELECT COUNT(*) AS n FROM audit_events WHERE cloud = 'gcp' AND request_id LIKE ?",
        (f"req-{tag}-%",),
    )
    return int(rows[0]["n"])


def end_to_end(clouds: Multicloud, events: int, seq: int, timeout_s: float) -> dict[str, Any]:
    """gcp's gateway ships a backlog of ``events``: its rate and the home's cost."""
    gcp, home = clouds["gcp"].database(), clouds["aws"].database()
    try:
        backlog = _events(events, seq)
        audit.insert_events(gcp, backlog)
        # From the shipper's first batch of the backlog (it may be idle for up to
        # audit_ship_s when the backlog lands) until none is left.
        deadline = time.monotonic() + timeout_s
        while (left := _unshipped(gcp)) == events:
            assert time.monotonic() < deadline, "the shipper never started"
            time.sleep(0.002)
        with HomeCost(clouds["aws"]) as cost:
            started = time.monotonic()
            while _unshipped(gcp):
                assert time.monotonic() < deadline, f"{_unshipped(gcp)} unshipped"
                time.sleep(0.02)
            elapsed = time.monotonic() - started
        events = left  # measured: what was left when the first batch was marked
        stored = _stored_at_home(home, f"{seq:04d}")
        assert stored == len(backlog), (stored, len(backlog))  # each once
        if not events:  # (the warm-up: one batch held it all)
            return {"events": 0}
        return {
            "events": events,
            "seconds": round(elapsed, 3),
            "events_per_s": round(events / elapsed),
            **cost.per_thousand(events),
        }
    finally:
        gcp.close()
        home.close()


async def _ship_stages(
    clouds: Multicloud, url: str, events: int, batch: int, seq: int
) -> dict[str, Any]:
    """The shipper's loop, stage by stage, for one batch size (gcp's gateway stopped)."""
    gcp, home = clouds["gcp"].database(), clouds["aws"].database()
    token = OwnToken(clouds.identities["gcp"].token_file)
    audit.insert_events(gcp, _events(events, seq))
    times: dict[str, list[float]] = {"select": [], "post": [], "mark": []}
    sizes: list[int] = []
    try:
        async with aiohttp.ClientSession() as http:
            with HomeCost(clouds["aws"]) as cost:
                started = time.monotonic()
                while True:
                    t0 = time.perf_counter()
                    rows = await asyncio.to_thread(audit.unshipped, gcp, batch)
                    t1 = time.perf_counter()
                    if not rows:
                        break
                    body = orjson.dumps({"events": rows, "through": time.time() - 2})
                    sizes.append(len(body) // len(rows))
                    headers = {**token.header(), "content-type": "application/json"}
                    async with http.post(
                        f"{url}/internal/v1/audit", data=body, headers=headers
                    ) as r:
                        answer = await r.read()
                        assert r.status == 200, answer
                    t2 = time.perf_counter()
                    await asyncio.to_thread(audit.mark_shipped, gcp, rows, time.time())
                    t3 = time.perf_counter()
                    times["select"].append(t1 - t0)
                    times["post"].append(t2 - t1)
                    times["mark"].append(t3 - t2)
                elapsed = time.monotonic() - started
        assert _stored_at_home(home, f"{seq:04d}") == events
        return {
            "batch": batch,
            "events": events,
            "body_bytes_per_event": statistics.median(sizes),
            "events_per_s": round(events / elapsed),
            "ms_per_batch_median": {
                stage: round(statistics.median(ts) * 1000, 2) for stage, ts in times.items()
            },
            **cost.per_thousand(events),
        }
    finally:
        gcp.close()
        home.close()


async def _shipper(
    clouds: Multicloud, url: str, events: int, batch: int, seq: int
) -> dict[str, Any]:
    """The gateway's :class:`AuditShipper` itself (here, gcp's gateway stopped) with
    ``audit_ship_batch`` = ``batch``: events/s until the backlog is shipped."""
    from gateway_app.governance.shipping import AuditShipper  # (not before issue 24)

    gcp, home = clouds["gcp"].database(), clouds["aws"].database()
    token = OwnToken(clouds.identities["gcp"].token_file)
    audit.insert_events(gcp, _events(events, seq))
    try:
        async with aiohttp.ClientSession() as http:

            async def post(body: bytes) -> None:
                headers = {**token.header(), "content-type": "application/json"}
                async with http.post(f"{url}/internal/v1/audit", data=body, headers=headers) as r:
                    answer = await r.read()
                    if r.status != 200:
                        raise ConnectionError(f"HTTP {r.status} {answer[:300]!r}")

            shipper = AuditShipper(gcp, post, None, batch=batch, interval_s=1.0, max_body=8 << 20)
            with HomeCost(clouds["aws"]) as cost:
                started = time.monotonic()
                while True:
                    await shipper.ship_once()
                    if shipper.caught_up:
                        break
                await shipper.marked()
                elapsed = time.monotonic() - started
        assert _stored_at_home(home, f"{seq:04d}") == events
        assert _unshipped(gcp) == 0
        await shipper.stop()
        return {
            "batch": batch,
            "events": events,
            "batches": shipper.batches,
            "events_per_s": round(events / elapsed),
            **cost.per_thousand(events),
        }
    finally:
        gcp.close()
        home.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=20000, help="events per run")
    parser.add_argument("--batches", default="200,1000,2000", help="stage runs' batch sizes")
    parser.add_argument(
        "--one-way-ms", type=float, default=0.0, help="link delay gcp<->aws, each way"
    )
    parser.add_argument("--label", default="", help="a name for this run (before / after)")
    parser.add_argument(
        "--stages-only", action="store_true", help="no AuditShipper runs (before it existed)"
    )
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()

    results: dict[str, Any] = {
        "label": args.label,
        "command": " ".join(sys.argv),
        "loadavg_before": os.getloadavg(),
        "one_way_ms": args.one_way_ms,
    }
    clouds = Multicloud.start(("aws", "gcp"))
    try:
        for source, target in (("gcp", "aws"), ("aws", "gcp")):
            clouds.link(source, target).delay(args.one_way_ms / 1000)
        # Warm-up: connections, the home's first batch.
        end_to_end(clouds, 1000, 0, 120)
        results["end_to_end"] = end_to_end(clouds, args.events, 1, 600)
        print("end to end:", results["end_to_end"], flush=True)
        gateway = clouds["gcp"].gateway
        assert gateway is not None
        gateway.stop()  # from here the stages run here, one shipper
        url = clouds.link("gcp", "aws").url
        results["stages"], results["shipper"] = [], []
        for i, batch in enumerate(int(b) for b in args.batches.split(",")):
            stage = run(_ship_stages(clouds, url, args.events, batch, 10 + i))
            print("stages:", stage, flush=True)
            results["stages"].append(stage)
            if not args.stages_only:
                shipped = run(_shipper(clouds, url, args.events, batch, 20 + i))
                print("shipper:", shipped, flush=True)
                results["shipper"].append(shipped)
    finally:
        clouds.stop()
    results["loadavg_after"] = os.getloadavg()
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
