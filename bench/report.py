"""Writes bench/RESULTS.md from bench/results.json (and bench/soak.json, bench/notes.md)."""

from __future__ import annotations

import json
from pathlib import Path

BENCH = Path(__file__).resolve().parent
DIRECT = "direct (nginx)"
DEFAULT = "gateway: own server + raw client (default)"


def ms(us: float) -> str:
    return f"{us / 1000:.2f}"


def headline(targets: dict) -> list[str]:
    """Pinned, one process: the default gateway's figures against the targets."""
    ours, direct = targets.get(DEFAULT, {}), targets.get(DIRECT, {})
    if "chat_c1" not in ours or "chat_c1" not in direct:
        return []
    c1, d1 = ours["chat_c1"], direct["chat_c1"]
    s1, ds = ours["stream_c1"], direct["stream_c1"]
    lines = [
        "## Headline (pinned, one gateway process on one core)",
        "",
        f"- Overhead at 1 connection: p50 {ms(c1['p50'] - d1['p50'])} ms (target ≤ 0.3), "
        f"p99 {ms(c1['p99'] - d1['p99'])} ms (target ≤ 1).",
        f"- Throughput: {ours['chat_c16']['rps']:.0f} req/s at 16 connections, "
        f"{ours['chat_c64']['rps']:.0f} at 64.",
    ]
    for peer, goal in (("Portkey gateway", 3), ("LiteLLM proxy", 10)):
        theirs = targets.get(peer, {})
        if "chat_c16" in theirs and theirs["chat_c16"]["rps"]:
            ratio = ours["chat_c16"]["rps"] / theirs["chat_c16"]["rps"]
            lines.append(f"- {ratio:.1f}x {peer}'s req/s at 16 connections (target ≥ {goal}x).")
    lines += [
        f"- Stream added time to first byte: p50 {ms(s1['p50'] - ds['p50'])} ms "
        f"(target ≤ 0.5); broken streams: {s1['broken'] + ours['stream_c16']['broken']}.",
        "",
    ]
    return lines


def main() -> None:
    data = json.loads((BENCH / "results.json").read_text())
    targets: dict = data["targets"]
    direct = targets.get(DIRECT, {})
    out: list[str] = ["# Benchmark results", ""]
    # Later partial runs (a few targets, hand-written from their own results file) first.
    for partial in sorted(BENCH.glob("partial-*.md"), reverse=True):
        out += [partial.read_text().strip(), ""]
    out += [
        f"Run {data['started']} with `bench/run` ({data['seconds']} s per wrk run, one wrk "
        "thread). **Pinned**: each target on CPU 1; nginx (the fake upstream, canned chat "
        "completion and canned 8-event SSE stream) and wrk on CPU 0; everything on loopback.",
        "",
        f"Machine: {data['machine']}. Load average at start: "
        f"{', '.join(f'{x:.1f}' for x in data['load'])} — other sessions share this machine, "
        "so absolute figures are noisy; every target ran in the same run, back to back, so "
        "the comparison between them holds better than any absolute number.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in data["versions"].items()) + ".",
        "",
        *headline(targets),
        "## Overhead at 1 connection (no queueing)",
        "",
        "Latency in ms; overhead = target minus direct at the same percentile.",
        "",
        "| target | p50 | p90 | p99 | overhead p50 | overhead p99 | req/s | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    d1 = direct.get("chat_c1", {})
    for name, result in targets.items():
        if "error" in result:
            out.append(f"| {name} | failed: {result['error']} | | | | | | |")
            continue
        r = result["chat_c1"]
        over50 = ms(r["p50"] - d1["p50"]) if d1 and name != DIRECT else "—"
        over99 = ms(r["p99"] - d1["p99"]) if d1 and name != DIRECT else "—"
        out.append(
            f"| {name} | {ms(r['p50'])} | {ms(r['p90'])} | {ms(r['p99'])} | {over50} | "
            f"{over99} | {r['rps']:.0f} | {r['errors']} |"
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
        if "error" in result:
            continue
        a, b = result["chat_c16"], result["chat_c64"]
        rss = (
            f"{result['rss_before_kib'] / 1024:.0f} → {result['rss_after_kib'] / 1024:.0f}"
            if result["rss_before_kib"]
            else "—"
        )
        cpu = f"{a['cpu_us_per_req']:.0f}" if "cpu_us_per_req" in a else "—"
        out.append(
            f"| {name} | {a['rps']:.0f} | {ms(a['p50'])} | {ms(a['p90'])} | {ms(a['p99'])} | "
            f"{b['rps']:.0f} | {ms(b['p50'])} | {ms(b['p90'])} | {ms(b['p99'])} | "
            f"{a['errors'] + b['errors']} | {cpu} | {rss} |"
        )
    ours = targets.get(DEFAULT, {})
    if "chat_c16" in ours:
        out += ["", "Ratios (this gateway's default vs the peers, same run):", ""]
        for peer in ("Portkey gateway", "LiteLLM proxy"):
            theirs = targets.get(peer, {})
            if "chat_c16" not in theirs:
                continue
            for conns in (16, 64):
                mine, other = ours[f"chat_c{conns}"]["rps"], theirs[f"chat_c{conns}"]["rps"]
                ratio = f"{mine / other:.1f}x" if other else "∞ (peer completed none)"
                out.append(f"- {conns} connections: {ratio} {peer}'s req/s")
    out += [
        "",
        "## Streams",
        "",
        "Added time to first byte at 1 connection: the canned stream arrives in one read, so "
        "the full-response latency is the time to first byte (p50/p99 minus direct). Broken = "
        "responses that were not 200 or lacked `data: [DONE]`.",
        "",
        "| target | 1 conn p50 | p99 | added p50 | added p99 | 16 conns req/s | p99 | "
        "broken/errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ds = direct.get("stream_c1", {})
    for name, result in targets.items():
        if "error" in result:
            continue
        s1, s16 = result["stream_c1"], result["stream_c16"]
        add50 = ms(s1["p50"] - ds["p50"]) if ds and name != DIRECT else "—"
        add99 = ms(s1["p99"] - ds["p99"]) if ds and name != DIRECT else "—"
        out.append(
            f"| {name} | {ms(s1['p50'])} | {ms(s1['p99'])} | {add50} | {add99} | "
            f"{s16['rps']:.0f} | {ms(s16['p99'])} | {s1['errors'] + s16['errors']} |"
        )
    broken = {
        n: r["stream_sample"]
        for n, r in targets.items()
        if "stream_sample" in r and (r["stream_c1"]["broken"] or r["stream_c16"]["broken"])
    }
    for name, sample in broken.items():
        out += ["", f"A stream from {name} (head ... tail):", "", "```", sample.strip(), "```"]
    out += [
        "",
        "## JSON library (parse a chat request + serialize a chat response, µs)",
        "",
    ]
    out += [f"- {k}: {v:.1f} µs" for k, v in data["json_us"].items()]
    soak_file = BENCH / "soak.json"
    if soak_file.exists():
        soak = json.loads(soak_file.read_text())["soak"]
        out += [
            "",
            "## Soak",
            "",
            f"{soak['seconds']} s at {soak['rate']:.0f} req/s (one keep-alive connection, "
            f"fixed rate) against the default gateway: {soak['ok']} responses, "
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
        prof = json.loads(profile_file.read_text())["profile"]
        out += [
            "",
            f"py-spy, default gateway at 1 connection ({prof['samples']} samples, "
            f"{prof['rps']:.0f} req/s during sampling), share of samples by innermost "
            "Python frame:",
            "",
            "| frame | % |",
            "|---|---:|",
        ]
        out += [f"| `{name or '(native)'}` | {share} |" for name, share in prof["self"][:15]]
    (BENCH / "RESULTS.md").write_text("\n".join(out) + "\n")
    print(f"wrote {BENCH / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
