"""Where a bench target's CPU goes, the whole gateway process (issue 24 item 1).

Starts a target as ``bench/bench.py`` does (pinned on CPU 1, wrk on CPU 0, loopback
only: nginx as the upstream, and for ``governance`` redis-server and PostgreSQL),
warms it up, then runs one ``wrk`` load per tool at 16 connections while the tool
watches the gateway process:

* ``plain``: no tool (CPU µs per request, as bench.py measures it);
* ``stat``: ``perf stat`` (task clock, context switches, syscalls: per request);
* ``strace``: ``strace -c -f`` (syscalls by name, all threads; slows the process);
* ``pyspy``: ``py-spy record --threads --nonblocking`` (Python stacks, every thread),
  summed into the shares of :data:`CATEGORIES` in CPU µs per request;
* ``perf``: ``perf record -g`` (native and kernel: ``perf report --sort dso``).

::

    .venv/bin/python bench/whole_process.py --target governance --out /tmp/gov.json
    .venv/bin/python bench/whole_process.py --target default --out /tmp/plain.json
    .venv/bin/python bench/whole_process.py --compare /tmp/gov.json /tmp/plain.json

Run each under ``flock -x /work/bench.lock`` on a shared machine. py-spy is the one
bench.py uses (``$AIGW_BENCH_CACHE/variants/bin/py-spy``); ``perf`` and ``strace``
come from the distribution. Results: ``bench/partial-governance-cpu-3.md``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # bench/bench.py: the targets and their processes

# (share, substrings of a Python frame's name): a sample counts for the first share
# one of its frames matches (outermost categories first), else "rest".
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("audit drainer", ("AuditDrainer.",)),
    ("settle batcher flush", ("SettleBatcher._flush",)),
    ("admission refill", ("Admission._refill",)),
    ("check (Governance.check)", ("Governance.check", "GovernanceHook.before")),
    ("authenticate", ("Governance.authenticate", "KeyAuthentication.before")),
    ("settle (Governance.settle)", ("Governance.settle", "GovernanceHook.after")),
    ("circuit breaker store", ("CircuitBreakerStore.",)),
    ("Redis replies", ("resp.py",)),
    ("admission (other tasks)", ("Admission.", "RedisGovernanceState.")),
    ("logging", ("logging/__init__.py", "logs.py")),
    ("metrics", ("metrics.py", "values.py")),
    ("other threads (waits)", ("concurrent/futures/thread.py", "threading.py")),
)


def attribute(raw: Path) -> dict[str, float]:
    """Shares (fractions of all samples) of a ``py-spy record --format raw`` file."""
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        samples = int(n)
        total += samples
        frames = stack.split(";")[1:]  # the first is the thread
        for name, patterns in CATEGORIES:
            if any(p in frame for frame in frames for p in patterns):
                counts[name] += samples
                break
        else:
            counts["rest (server, routing, upstream client, loop)"] += samples
    return {name: n / total for name, n in counts.items()} if total else {}


def measure(target_alias: str, out: Path, tools: list[str], seconds: int) -> dict[str, Any]:
    pinned, _ = bench.build_targets()
    template = next(t for t in pinned if t.alias == target_alias)
    target = replace(template, headers=dict(template.headers))
    result: dict[str, Any] = {"target": target.name, "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="aigw-whole-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        nginx, upstream = bench.start_nginx(work)
        proc = None
        try:
            proc, port = target.start(work, upstream, target.cpu)
            assert proc is not None
            if target.prepare:
                target.prepare(target, port)
            chat = dict(bench.REQUEST)
            bench.wrk(port, target.path, target.headers, chat, 16, 3, work)  # warm-up
            pid = str(proc.pid)
            spy = out.with_suffix(".pyspy.txt")
            sleep = ["--", "sleep", str(seconds)]
            commands: dict[str, list[str]] = {
                "plain": [],
                "stat": [
                    *("perf", "stat", "-x,", "-e", "task-clock,context-switches"),
                    *("-e", "raw_syscalls:sys_enter", "-p", pid, *sleep),
                ],
                "strace": ["timeout", "-s", "INT", str(seconds), "strace", "-c", "-f", "-p", pid],
                "pyspy": [
                    *(str(bench.CACHE / "variants/bin/py-spy"), "record", "--threads", "-r", "250"),
                    *("-p", pid, "-d", str(seconds), "-f", "raw", "-o", str(spy), "--nonblocking"),
                ],
                "perf": [
                    *("perf", "record", "-g", "-F", "999", "-o", str(out.with_suffix(".perf"))),
                    *("-p", pid, *sleep),
                ],
            }
            for tool in tools:
                cpu = bench.cpu_seconds(proc.pid)
                watcher = (
                    subprocess.Popen(commands[tool], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                    if commands[tool]
                    else None
                )
                time.sleep(0.3)  # attached before the load starts
                load = bench.wrk(port, target.path, target.headers, chat, 16, seconds, work)
                _, err = watcher.communicate(timeout=120) if watcher else (b"", b"")
                entry: dict[str, Any] = {
                    "requests": load["requests"],
                    "rps": load["rps"],
                    "cpu_us_per_req": 1e6 * (bench.cpu_seconds(proc.pid) - cpu) / load["requests"],
                }
                if tool in ("stat", "strace"):
                    entry["output"] = err.decode(errors="replace")[-6000:]
                if tool == "pyspy":
                    entry["shares"] = attribute(spy)
                result[tool] = entry
                print(f"{tool}: {load['rps']:.0f} req/s, {entry['cpu_us_per_req']:.0f} µs/req")
        finally:
            if proc is not None:
                bench.stop(proc)
            bench.stop(nginx)
            if "proc" in bench._REDIS:
                bench.stop(bench._REDIS.pop("proc"))
            bench.stop_postgres()
    result["load_after"] = os.getloadavg()
    out.write_text(json.dumps(result, indent=1))
    return result


def compare(governed: dict[str, Any], plain: dict[str, Any]) -> str:
    """The py-spy shares of two runs in CPU µs per request (the ``plain`` run's CPU)."""
    lines = ["| share | governance µs/req | plain µs/req | difference |", "|---|---:|---:|---:|"]
    g_us, p_us = governed["plain"]["cpu_us_per_req"], plain["plain"]["cpu_us_per_req"]
    g, p = governed["pyspy"]["shares"], plain["pyspy"]["shares"]
    for name in sorted(set(g) | set(p), key=lambda k: -(g.get(k, 0) * g_us)):
        a, b = g.get(name, 0.0) * g_us, p.get(name, 0.0) * p_us
        lines.append(f"| {name} | {a:.1f} | {b:.1f} | {a - b:+.1f} |")
    lines.append(f"| **whole process** | {g_us:.0f} | {p_us:.0f} | {g_us - p_us:+.0f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", default="governance", help="bench.py alias")
    parser.add_argument("--tools", default="plain,stat,strace,pyspy,perf")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("/tmp/whole-process.json"))
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("GOVERNED", "PLAIN"))
    args = parser.parse_args()
    if args.compare:
        print(compare(*(json.loads(p.read_text()) for p in args.compare)))
        return 0
    measure(args.target, args.out, args.tools.split(","), args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
