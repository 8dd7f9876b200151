"""Writes bench/RESULTS.md from bench/results.json (and bench/soak.json, bench/notes.md).

``--results``/``--out`` render another results file elsewhere (e.g. a partial run).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parent
# The target names bench/bench.py writes.
DIRECT = "direct (nginx)"
FLOOR = "floor: nginx reverse proxy (pinned like the gateway)"
DEFAULT = "gateway: own server + raw client (default)"
GOVERNED = (
    "gateway: full governance path (virtual key + limits + budget + audit; Redis + PostgreSQL)"
)
PEERS = (("Portkey gateway", 6), ("LiteLLM proxy", 50))  # issue 24, item 1
REFERENCES = (DIRECT, FLOOR)


def ms(us: float) -> str:
    return f"{us / 1000:.2f}"


def above(targets: dict, name: str, ref: str, run: str, pct: str) -> str:
    """``name``'s latency minus ``ref``'s at one percentile of one run, in ms (or —)."""
    mine, theirs = targets.get(name, {}).get(run), targets.get(ref, {}).get(run)
    if name in (ref, DIRECT) or not mine or not theirs:
        return "—"
    return ms(mine[pct] - theirs[pct])


def cell(result: dict, run: str, key: str) -> str:
    r = result.get(run)
    if not r:
        return "—"
    if key == "rps":
        return f"{r['rps']:.0f}"
    if key == "cpu":
        return f"{r['cpu_us_per_req']:.0f}" if "cpu_us_per_req" in r else "—"
    return ms(r[key])


def rss(result: dict) -> str:
    if not result.get("rss_before_kib"):
        return "—"
    return f"{result['rss_before_kib'] / 1024:.0f} → {result['rss_after_kib'] / 1024:.0f}"


def ratio(mine: dict, theirs: dict, run: str) -> str | None:
    if run not in mine or run not in theirs:
        return None
    other = theirs[run]["rps"]
    return f"{mine[run]['rps'] / other:.1f}x" if other else "∞ (peer completed none)"


def headline(data: dict) -> list[str]:
    """Pinned, one process on one core: the full governance path against the issue's targets."""
    targets, same = data["targets"], data.get("same_cpu", {})
    name = GOVERNED if "chat_c1" in targets.get(GOVERNED, {}) else DEFAULT
    ours = targets.get(name, {})
    if "chat_c1" not in ours or "chat_c1" not in targets.get(DIRECT, {}):
        return []
    has_floor = "chat_c1" in targets.get(FLOOR, {})
    lines = [
        "## Headline (pinned, one gateway process on one core)",
        "",
        f"Target measured: **{name}**.",
        "",
        f"- Overhead at 1 connection above direct: p50 {above(targets, name, DIRECT, 'chat_c1', 'p50')}"
        f" ms (target ≤ 0.3), p99 {above(targets, name, DIRECT, 'chat_c1', 'p99')} ms "
        "(target ≤ 1).",
    ]
    if has_floor:
        lines.append(
            f"- Above the floor (an nginx proxy placed like the gateway, which itself adds p50 "
            f"{above(targets, FLOOR, DIRECT, 'chat_c1', 'p50')} / p99 "
            f"{above(targets, FLOOR, DIRECT, 'chat_c1', 'p99')} ms to direct): p50 "
            f"{above(targets, name, FLOOR, 'chat_c1', 'p50')} ms, p99 "
            f"{above(targets, name, FLOOR, 'chat_c1', 'p99')} ms: the gateway's own cost."
        )
    if "chat_c1" in same.get(name, {}) and "chat_c1" in same.get(DIRECT, {}):
        floor = (
            f"; above the floor p50 {above(same, name, FLOOR, 'chat_c1', 'p50')}, p99 "
            f"{above(same, name, FLOOR, 'chat_c1', 'p99')} ms"
            if "chat_c1" in same.get(FLOOR, {})
            else ""
        )
        lines.append(
            "- Same-CPU overhead (every process on CPU 0, no cross-CPU wake-ups): above direct "
            f"p50 {above(same, name, DIRECT, 'chat_c1', 'p50')}, p99 "
            f"{above(same, name, DIRECT, 'chat_c1', 'p99')} ms{floor}."
        )
    if "chat_c16" in ours:
        at64 = f", {ours['chat_c64']['rps']:.0f} at 64" if "chat_c64" in ours else ""
        lines.append(f"- Throughput: {ours['chat_c16']['rps']:.0f} req/s at 16 connections{at64}.")
    plain = targets.get(DEFAULT, {}).get("chat_c16", {}).get("cpu_us_per_req")
    governed = targets.get(GOVERNED, {}).get("chat_c16", {}).get("cpu_us_per_req")
    if plain and governed:
        lines.append(
            f"- CPU per request at 16 connections: governance {governed:.0f} µs, plain "
            f"{plain:.0f} µs: {governed / plain:.2f}x (target ≤ 1.4x)."
        )
    pairs = data.get("cpu_pairs", {})
    if "ratio" in pairs:
        lines.append(
            f"- The same in {len(pairs['rounds'])} alternating rounds of {pairs['seconds']} s "
            f"at {pairs['conns']} connections, both gateways running (less exposed to the "
            f"machine's drift between the targets' own runs): governance "
            f"{pairs['governed_cpu_us_per_req']:.0f} µs, plain {pairs['plain_cpu_us_per_req']:.0f}"
            f" µs: {pairs['ratio']:.2f}x (rounds {pairs['ratio_min']:.2f}-"
            f"{pairs['ratio_max']:.2f}x, median {pairs['ratio_median']:.2f}x)."
        )
    for peer, goal in PEERS:
        theirs = targets.get(peer, {})
        ratios = [
            f"{r} at {conns}"
            for conns in (16, 64)
            if (r := ratio(ours, theirs, f"chat_c{conns}")) is not None
        ]
        if ratios:
            lines.append(
                f"- vs {peer}'s req/s: {', '.join(ratios)} connections (target ≥ {goal}x)."
            )
    if "stream_c1" in ours and "stream_c1" in targets[DIRECT]:
        floor = (
            f", above the floor {above(targets, name, FLOOR, 'stream_c1', 'p50')} ms"
            if "stream_c1" in targets.get(FLOOR, {})
            else ""
        )
        broken = sum(ours[r]["broken"] for r in ("stream_c1", "stream_c16") if r in ours)
        lines.append(
            "- Stream added time to first byte at 1 connection: p50 "
            f"{above(targets, name, DIRECT, 'stream_c1', 'p50')} ms above direct "
            f"(target ≤ 0.5){floor}; broken streams: {broken}."
        )
    plain = targets.get(DEFAULT, {})
    if name != DEFAULT and "chat_c1" in plain:
        floor = (
            f" ({above(targets, DEFAULT, FLOOR, 'chat_c1', 'p50')} above the floor)"
            if has_floor
            else ""
        )
        rps = f", {plain['chat_c16']['rps']:.0f} req/s at 16" if "chat_c16" in plain else ""
        lines.append(
            f"- Without governance ({DEFAULT}): p50 overhead "
            f"{above(targets, DEFAULT, DIRECT, 'chat_c1', 'p50')} ms{floor}{rps}."
        )
    return [*lines, ""]


def check_lines(name: str, check: dict) -> list[str]:
    """What the governance target recorded: audit rows in PostgreSQL, Redis commands."""
    if "audit_rows" not in check:
        return []
    rows = ", ".join(f"{k} {v}" for k, v in sorted(check["audit_rows"].items()))
    models = ", ".join(f"{k} {v}" for k, v in sorted(check["audit_requests_by_model"].items()))
    calls = ", ".join(
        f"{k} {v}" for k, v in sorted(check["redis_calls"].items(), key=lambda kv: -kv[1])
    )
    return [
        f"- {name}: audit rows in PostgreSQL after the load: {rows} (requests by model: "
        f"{models}; every request of the run, warm-up included). Redis commands "
        f"(commandstats, commands inside scripts included): {calls}.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", type=Path, default=BENCH / "results.json")
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS.md")
    args = parser.parse_args()
    data = json.loads(args.results.read_text())
    targets: dict = data["targets"]
    same: dict = data.get("same_cpu", {})
    scaling: dict = data.get("scaling", {})
    out: list[str] = ["# Benchmark results", ""]
    # Where the targets stand (the latest side-by-side run), before the history.
    standing = BENCH / "standing.md"
    if standing.exists():
        out += [standing.read_text().strip(), ""]
    # Later partial runs (a few targets, hand-written from their own results file) first.
    for partial in sorted(BENCH.glob("partial-*.md"), reverse=True):
        out += [partial.read_text().strip(), ""]
    out += [
        f"Run {data['started']} with `bench/run` ({data['seconds']} s per wrk run, one wrk "
        "thread). **Pinned**: each target on CPU 1; nginx (the fake upstream, canned chat "
        "completion and canned 8-event SSE stream), wrk, and the run's private redis-server "
        "and PostgreSQL on CPU 0; everything on loopback.",
        "",
        f"Machine: {data['machine']}. Load average at start: "
        f"{', '.join(f'{x:.1f}' for x in data['load'])} — other sessions share this machine, "
        "so absolute figures are noisy; every target ran in the same run, back to back, so "
        "the comparison between them holds better than any absolute number.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in data["versions"].items()) + ".",
        "",
        *headline(data),
        "## Overhead at 1 connection (no queueing)",
        "",
        "Latency in ms; above direct = target minus direct at the same percentile; above "
        "floor = target minus the floor (an nginx reverse proxy with upstream keep-alive, "
        "pinned on CPU 1 like every target): what the pinned placement costs per request "
        "before any gateway code runs (loopback hops, cross-CPU wake-ups) is in the floor, "
        "so above floor is the target's own cost.",
        "",
        "| target | p50 | p90 | p99 | above direct p50 | p99 | above floor p50 | p99 | "
        "req/s | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, result in targets.items():
        if "error" in result:
            out.append(f"| {name} | failed: {result['error']} | | | | | | | | |")
            continue
        if "chat_c1" not in result:
            continue
        r = result["chat_c1"]
        out.append(
            f"| {name} | {ms(r['p50'])} | {ms(r['p90'])} | {ms(r['p99'])} | "
            f"{above(targets, name, DIRECT, 'chat_c1', 'p50')} | "
            f"{above(targets, name, DIRECT, 'chat_c1', 'p99')} | "
            f"{above(targets, name, FLOOR, 'chat_c1', 'p50')} | "
            f"{above(targets, name, FLOOR, 'chat_c1', 'p99')} | {r['rps']:.0f} | {r['errors']} |"
        )
    if same:
        out += [
            "",
            "## Overhead at 1 connection, every process on one CPU",
            "",
            "Not the headline: the same 1-connection chat and stream runs with the target, "
            "nginx, wrk, redis-server and PostgreSQL all on CPU 0. At one connection the "
            "request path is serial (client → target → upstream → target → client), so one "
            "CPU loses no parallelism and this removes the cross-CPU wake-ups the pinned "
            "placement pays on every hop. Latency in ms; stream = time to first byte.",
            "",
            "| target | p50 | p99 | above direct p50 | p99 | above floor p50 | p99 | "
            "CPU µs/req | stream p50 | added p50 above direct | above floor | errors |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, result in same.items():
            if "error" in result:
                out.append(f"| {name} | failed: {result['error']} |" + " |" * 10)
                continue
            errors = sum(result[r]["errors"] for r in ("chat_c1", "stream_c1") if r in result)
            out.append(
                f"| {name} | {cell(result, 'chat_c1', 'p50')} | {cell(result, 'chat_c1', 'p99')} | "
                f"{above(same, name, DIRECT, 'chat_c1', 'p50')} | "
                f"{above(same, name, DIRECT, 'chat_c1', 'p99')} | "
                f"{above(same, name, FLOOR, 'chat_c1', 'p50')} | "
                f"{above(same, name, FLOOR, 'chat_c1', 'p99')} | "
                f"{cell(result, 'chat_c1', 'cpu')} | {cell(result, 'stream_c1', 'p50')} | "
                f"{above(same, name, DIRECT, 'stream_c1', 'p50')} | "
                f"{above(same, name, FLOOR, 'stream_c1', 'p50')} | {errors} |"
            )
    out += [
        "",
        "## Throughput of one process on one pinned core",
        "",
        "| target | 16 conns req/s | p50 | p90 | p99 | 64 conns req/s | p50 | p90 | p99 | "
        "errors | CPU µs/req at 16 | RSS before → after (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, result in targets.items():
        if "error" in result or "chat_c16" not in result:
            continue
        errors = sum(result[r]["errors"] for r in ("chat_c16", "chat_c64") if r in result)
        out.append(
            f"| {name} | "
            + " | ".join(cell(result, "chat_c16", k) for k in ("rps", "p50", "p90", "p99"))
            + " | "
            + " | ".join(cell(result, "chat_c64", k) for k in ("rps", "p50", "p90", "p99"))
            + f" | {errors} | {cell(result, 'chat_c16', 'cpu')} | {rss(result)} |"
        )
    out.append("")
    out.append(
        "CPU µs/req: user + system CPU time of the target process and its children over "
        "the run, per request served."
    )
    for name in (GOVERNED, DEFAULT):
        ours = targets.get(name, {})
        if "chat_c16" not in ours:
            continue
        ratios = [
            f"- {conns} connections: {r} {peer}'s req/s (target ≥ {goal}x)"
            for peer, goal in PEERS
            for conns in (16, 64)
            if (r := ratio(ours, targets.get(peer, {}), f"chat_c{conns}")) is not None
        ]
        if ratios:
            out += ["", f"Ratios ({name} vs the peers, same run):", "", *ratios]
    checks = [
        line
        for section, where in ((targets, "pinned"), (same, "same CPU"))
        for name, result in section.items()
        for line in check_lines(f"{name}, {where}", result.get("check", {}))
    ]
    if checks:
        out += ["", "What the governance path recorded (checked after the load):", "", *checks]
    if scaling:
        pinned = targets.get(DEFAULT, {})
        rows = [(f"{DEFAULT}, pinned on CPU 1 (from above)", pinned)] if pinned else []
        rows += list(scaling.items())
        out += [
            "",
            "## Multi-process scaling",
            "",
            "Not the headline: the gateway not pinned (the scheduler places it on either "
            "core), once as one process and once with `serve --workers 2` (two processes "
            "sharing one listening socket), at 16 and 64 connections. wrk and nginx stay on "
            "CPU 0, so they share the same two cores with the gateway: on this 2-core "
            "machine the 2-worker figure is bounded by the load generator and the upstream, "
            "not only by the gateway. RSS and CPU are the parent plus its workers.",
            "",
            "| target | 16 conns req/s | p50 | p99 | 64 conns req/s | p50 | p99 | errors | "
            "CPU µs/req at 16 | RSS before → after (MiB) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for name, result in rows:
            if "error" in result:
                out.append(f"| {name} | failed: {result['error']} |" + " |" * 8)
                continue
            errors = sum(result[r]["errors"] for r in ("chat_c16", "chat_c64") if r in result)
            out.append(
                f"| {name} | "
                + " | ".join(cell(result, "chat_c16", k) for k in ("rps", "p50", "p99"))
                + " | "
                + " | ".join(cell(result, "chat_c64", k) for k in ("rps", "p50", "p99"))
                + f" | {errors} | {cell(result, 'chat_c16', 'cpu')} | {rss(result)} |"
            )
    out += [
        "",
        "## Streams",
        "",
        "Added time to first byte at 1 connection: the canned stream arrives in one read, so "
        "the full-response latency is the time to first byte (p50/p99 minus direct, and p50 "
        "minus the floor). Broken = responses that were not 200 or lacked `data: [DONE]`.",
        "",
        "| target | 1 conn p50 | p99 | added p50 | added p99 | above floor p50 | "
        "16 conns req/s | p99 | broken/errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, result in targets.items():
        if "error" in result or "stream_c1" not in result:
            continue
        errors = sum(result[r]["errors"] for r in ("stream_c1", "stream_c16") if r in result)
        out.append(
            f"| {name} | {cell(result, 'stream_c1', 'p50')} | {cell(result, 'stream_c1', 'p99')}"
            f" | {above(targets, name, DIRECT, 'stream_c1', 'p50')} | "
            f"{above(targets, name, DIRECT, 'stream_c1', 'p99')} | "
            f"{above(targets, name, FLOOR, 'stream_c1', 'p50')} | "
            f"{cell(result, 'stream_c16', 'rps')} | {cell(result, 'stream_c16', 'p99')} | "
            f"{errors} |"
        )
    broken = {
        n: r["stream_sample"]
        for n, r in targets.items()
        if "stream_sample" in r
        and any(r[k]["broken"] for k in ("stream_c1", "stream_c16") if k in r)
    }
    for name, sample in broken.items():
        out += ["", f"A stream from {name} (head ... tail):", "", "```", sample.strip(), "```"]
    out += [
        "",
        "## JSON library (parse a chat request + serialize a chat response, µs)",
        "",
    ]
    out += [f"- {k}: {v:.1f} µs" for k, v in data["json_us"].items()]
    clients_file = BENCH / "http-clients.json"
    if clients_file.exists():
        clients = json.loads(clients_file.read_text())
        out += [
            "",
            "## Upstream HTTP client and event loop (per call, `bench/http_clients.py`)",
            "",
            f"Run {clients['started']} (load {', '.join(f'{x:.1f}' for x in clients['load'])}): "
            f"{clients['calls']} sequential keep-alive POSTs of the chat request to the nginx "
            "upstream, three rounds (median), client pinned on CPU 1 and nginx on CPU 0. CPU = "
            "the client process's CPU time per call; wall = time per call.",
            "",
            "| client | event loop | CPU µs/call | wall µs/call |",
            "|---|---|---:|---:|",
        ]
        for row in clients["rows"]:
            if "error" in row:
                out.append(f"| {row['client']} | {row['loop']} | failed: {row['error']} | |")
            else:
                out.append(
                    f"| {row['client']} | {row['loop']} | {row['cpu_us']:.0f} | "
                    f"{row['wall_us']:.0f} |"
                )
    soak_file = BENCH / "soak.json"
    if soak_file.exists():
        soak_data = json.loads(soak_file.read_text())
        soak = soak_data["soak"]
        out += [
            "",
            "## Soak",
            "",
            f"Run {soak_data.get('started', 'n/a')}: "
            f"{soak['seconds']} s at {soak['rate']:.0f} req/s (one keep-alive connection, "
            f"fixed rate) against {soak.get('target', 'the default gateway')}: "
            f"{soak['ok']} responses, "
            f"{soak['errors']} errors. RSS every 10 s (MiB): "
            + ", ".join(f"{kib / 1024:.1f}" for _, kib in soak["samples"])
            + f". End vs first sample after warm-up: {soak['growth_pct']:+.1f}% "
            f"(max {soak['max_growth_pct']:+.1f}%); target within ±10%: "
            + ("**met**" if abs(soak["growth_pct"]) <= 10 else "**not met**")
            + ".",
        ]
    notes = BENCH / "notes.md"
    if notes.exists():
        out += ["", notes.read_text().strip()]
    profile_file = BENCH / "profile.json"
    if profile_file.exists():
        prof_data = json.loads(profile_file.read_text())
        prof = prof_data["profile"]
        out += [
            "",
            f"py-spy (run {prof_data.get('started', 'n/a')}), "
            f"{prof.get('target', 'default gateway')} at 1 connection ({prof['samples']} samples, "
            f"{prof['rps']:.0f} req/s during sampling), share of samples by innermost "
            "Python frame:",
            "",
            "| frame | % |",
            "|---|---:|",
        ]
        out += [f"| `{name or '(native)'}` | {share} |" for name, share in prof["self"][:15]]
    args.out.write_text("\n".join(out) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
