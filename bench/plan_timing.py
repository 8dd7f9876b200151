"""Time ``aigw plan`` (not a test): wall and CPU time of whole runs, best of several.

Each configuration runs ``python -m infra.cli plan --stack STACK --json``
in a checkout, ``--runs`` times in turn with the others (so load from other
processes falls on all alike), and keeps the best wall time and the best
user+system CPU time (the plan's process and its children: the policy pack).
Every run's ``--json`` output is compared, sorted, with the first
configuration's: a configuration that plans something else fails the run.

    .venv/bin/python bench/plan_timing.py                      # this checkout, with bytecode
    .venv/bin/python bench/plan_timing.py --base main --runs 5  # also main, both ways, and
                                                                # this checkout's eager imports

``--base REV`` exports that revision (``git archive``) to a temporary
directory sharing this checkout's ``.venv``, and adds "REV without bytecode"
(``PYTHONPYCACHEPREFIX`` pointing at an empty directory: Python then finds no
``.pyc`` and, with ``PYTHONDONTWRITEBYTECODE=1``, writes none, as before
``--compile-bytecode``), "REV" and "this checkout with eager SDK imports"
(``AIGW_EAGER_SDK_IMPORTS=1``). Results go to stdout as a Markdown table and,
with ``--out``, to a JSON file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Config:
    """One way of running the plan."""

    name: str
    checkout: Path
    env: dict[str, str] = field(default_factory=dict)
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def canonical(output: str) -> list[str]:
    """The plan's resources, sorted, with sorted dependencies (the SDK keeps them in sets)."""
    return sorted(
        json.dumps({**r, "dependencies": sorted(r["dependencies"])}, sort_keys=True)
        for r in json.loads(output)
    )


def run_once(config: Config, stack: str) -> tuple[float, float, str]:
    """Wall seconds, user+sys CPU seconds (with children) and stdout of one plan."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **config.env}
    command = [str(ROOT / ".venv/bin/python"), "-m", "infra.cli", "plan", "--stack", stack]
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(
            [*command, "--json"],
            cwd=config.checkout,
            env=env,
            stdout=out,
            stderr=subprocess.DEVNULL,
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise SystemExit(f"{config.name}: exit code {process.returncode}")
        out.seek(0)
        return wall, usage.ru_utime + usage.ru_stime, out.read().decode()


def export(revision: str, directory: Path) -> Path:
    """``revision`` of this repository as files in ``directory``, with this ``.venv``."""
    archive = subprocess.run(
        ["git", "archive", revision], cwd=ROOT, check=True, capture_output=True
    ).stdout
    with tempfile.TemporaryFile() as file:
        file.write(archive)
        file.seek(0)
        with tarfile.open(fileobj=file) as tar:
            tar.extractall(directory, filter="data")
    (directory / ".venv").symlink_to(ROOT / ".venv")
    return directory


def main() -> None:
    """Run the configurations and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="prod")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--base", help="also time this revision (e.g. main), both ways")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        empty_cache = Path(scratch) / "no-pyc"
        empty_cache.mkdir()
        configs = []
        if args.base:
            base = export(args.base, Path(scratch) / "base")
            configs += [
                Config(
                    f"{args.base} without bytecode", base, {"PYTHONPYCACHEPREFIX": str(empty_cache)}
                ),
                Config(args.base, base),
                Config("this checkout, eager SDK imports", ROOT, {"AIGW_EAGER_SDK_IMPORTS": "1"}),
            ]
        configs.append(Config("this checkout", ROOT))
        reference: list[str] | None = None
        load_before = os.getloadavg()
        for _ in range(args.runs):
            for config in configs:
                wall, cpu, output = run_once(config, args.stack)
                plan = canonical(output)
                if reference is None:
                    reference = plan
                elif plan != reference:
                    raise SystemExit(f"{config.name} planned something else than {configs[0].name}")
                config.wall.append(wall)
                config.cpu.append(cpu)
                print(f"{config.name}: {wall:.2f}s wall, {cpu:.2f}s CPU", file=sys.stderr)
        load_after = os.getloadavg()

    print(
        f"`aigw plan --stack {args.stack}`, best of {args.runs} runs; load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after; --json output identical.\n"
    )
    print("| configuration | wall (best) | user+sys CPU (best) | wall of each run |")
    print("|---|---:|---:|---|")
    for config in configs:
        runs = ", ".join(f"{w:.1f}" for w in config.wall)
        print(f"| {config.name} | {min(config.wall):.2f} s | {min(config.cpu):.2f} s | {runs} |")
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "stack": args.stack,
                    "runs": args.runs,
                    "loadavg": [load_before, load_after],
                    "configs": {c.name: {"wall": c.wall, "cpu": c.cpu} for c in configs},
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
