"""Where an ``aigw plan`` spends its CPU (not a test): py-spy samples, grouped.

    .venv/bin/python bench/plan_profile.py --py-spy PATH [--stack prod] [--raw plan.txt]
        [--checkout DIR]    # another checkout (e.g. `git archive main`) with this .venv
    .venv/bin/python bench/plan_profile.py --summarize plan.txt

Runs ``python -m infra.cli plan --stack STACK --json`` under ``py-spy record
--subprocesses`` (the plan and the policy pack's process) at 100 samples a
second and prints the share of samples per part of the run, per process.
Samples of threads blocked in native code (no Python frame, or a queue's,
gRPC's or a condition's wait as the innermost frame) are left out: py-spy
counts them although they use no CPU. py-spy is not a
project dependency: ``bench/setup.sh`` installs one in the bench cache
(``~/.cache/aigw/bench/variants/bin/py-spy``), or ``pip install py-spy``
anywhere.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (part, a frame that marks it), first match wins, innermost parts first.
PLAN_PARTS = [
    ("imports (SDK modules' class bodies, pulumi, grpc)", ("_find_and_load", "_LazyModule")),
    ("policy gate, client side (requests, gRPC)", ("evaluate (infra/offline/policy_gate.py",)),
    ("engine's mock monitor (RegisterResource, fakes)", ("_RecordingMonitor.", "_Mocks.")),
    ("program and Pulumi SDK runtime (resources, outputs)", ("record (infra/offline/engine.py",)),
]
# Innermost frames of threads blocked in native code (a queue, gRPC's completion
# queue, a condition): py-spy counts them, they use no CPU.
WAITING = ("_worker (concurrent/futures/thread.py", "_serve (grpc/_server.py", "Condition.wait (")
PACK_PARTS = [
    ("pack: Analyze and AnalyzeStack", ("_call_behavior",)),
    ("pack: start (interpreter, imports, PolicyPack)", ("<module>",)),
]


def summarize(raw: Path) -> str:
    """The Markdown table of sample shares per process and part."""
    per_process: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not any(f and not f.startswith("process ") for f in frames):
            continue  # no Python frame: a thread waiting in native code
        if frames[-1].startswith(WAITING):
            continue
        processes = [f for f in frames if f.startswith("process ")]
        pack = "pulumi.policy" in processes[-1]
        parts = PACK_PARTS if pack else PLAN_PARTS
        part = next(
            (name for name, marks in parts if any(m in f for f in frames for m in marks)),
            "pack: other" if pack else "start-up, CLI, output",
        )
        per_process["policy pack" if pack else "aigw plan"][part] += int(count)
    total = sum(sum(c.values()) for c in per_process.values())
    lines = ["| process | part | samples | share |", "|---|---|---:|---:|"]
    for process, parts in per_process.items():
        for part, samples in parts.most_common():
            lines.append(f"| {process} | {part} | {samples} | {samples / total:.0%} |")
    return "\n".join(lines)


def main() -> None:
    """Profile one plan (or summarize a raw file) and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--py-spy", dest="py_spy", help="the py-spy executable")
    parser.add_argument("--stack", default="prod")
    parser.add_argument(
        "--checkout", type=Path, default=ROOT, help="plan in this checkout (default: this one)"
    )
    parser.add_argument("--raw", type=Path, help="keep py-spy's raw samples here")
    parser.add_argument("--summarize", type=Path, help="only summarize this raw file")
    args = parser.parse_args()
    if args.summarize:
        print(summarize(args.summarize))
        return
    if not args.py_spy:
        parser.error("--py-spy PATH is required to profile")
    with tempfile.TemporaryDirectory() as scratch:
        raw = args.raw or Path(scratch) / "plan.txt"
        spy = [args.py_spy, "record", "-r", "100", "-f", "raw", "--subprocesses", "-o", str(raw)]
        plan = [sys.executable, "-m", "infra.cli", "plan", "--stack", args.stack, "--json"]
        subprocess.run(
            [*spy, "--", *plan],
            cwd=args.checkout,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        print(summarize(raw))


if __name__ == "__main__":
    main()
