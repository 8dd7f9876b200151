"""``./scripts/test`` (= ``.ci/run``): mypy alongside pytest, either failing fails it.

The command runs against a copy of ``scripts/`` whose virtualenv holds stand-in
tools (shell scripts), so what is checked is the command's own control flow:
that mypy and pytest overlap (a cold mypy is about a minute of one core on a
fresh clone, bench/suite-time.md), that mypy's report is shown, and the exit status.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# mypy's stand-in finishes only once pytest's has started: run one after the other,
# it gives up and fails.
MYPY = """#!/bin/sh
for _ in $(seq 100); do
  [ -e "$MARKERS/pytest-started" ] && { echo "mypy: $MYPY_SAYS"; exit "$MYPY_EXIT"; }
  sleep 0.05
done
echo "mypy: pytest never started while mypy ran"; exit 3
"""
PYTEST = """#!/bin/sh
touch "$MARKERS/pytest-started"
echo "pytest: $*"
exit "$PYTEST_EXIT"
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A checkout whose scripts are the real ones and whose tools are stand-ins."""
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    tools = tmp_path / ".venv" / "bin"
    tools.mkdir(parents=True)
    for name, body in {
        "python": "#!/bin/sh\nexit 0\n",  # bootstrap.sh's scripts/compile_bytecode.py
        "ruff": "#!/bin/sh\nexit 0\n",
        "lint-imports": "#!/bin/sh\nexit 0\n",
        "mypy": MYPY,
        "pytest": PYTEST,
    }.items():
        (tools / name).write_text(body)
        (tools / name).chmod(0o755)
    bin_dir = tmp_path / "bin"  # uv, found on PATH by bootstrap.sh: its sync is a no-op here
    bin_dir.mkdir()
    (bin_dir / "uv").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "uv").chmod(0o755)
    return tmp_path


def _run(checkout: Path, *, mypy: int, pytest_: int) -> subprocess.CompletedProcess[str]:
    if shutil.which("redis-server") is None or (
        shutil.which("initdb") is None
        and not list(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    ):
        pytest.skip("needs redis-server and initdb installed (else the command installs them)")
    env = {
        **os.environ,
        "PATH": f"{checkout / 'bin'}:{os.environ['PATH']}",
        "MARKERS": str(checkout),
        "MYPY_SAYS": "Success: no issues found",
        "MYPY_EXIT": str(mypy),
        "PYTEST_EXIT": str(pytest_),
    }
    env.pop("AIGW_TEST_WORKERS", None)  # the command's default, two workers
    return subprocess.run(
        [str(checkout / "scripts" / "test"), "-q", "tests/x"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_mypy_runs_alongside_pytest_and_its_report_follows(checkout: Path) -> None:
    done = _run(checkout, mypy=0, pytest_=0)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    pytest_line = "pytest: -n 2 --dist loadfile --no-loadscope-reorder -q tests/x"
    assert pytest_line in out  # two xdist workers (tests/workers.py), the caller's args last
    assert out.index(pytest_line) < out.index("mypy: Success: no issues found")


@pytest.mark.parametrize(("mypy", "pytest_", "expected"), [(1, 0, 1), (0, 2, 2), (1, 5, 5)])
def test_either_failing_fails_the_command(
    checkout: Path, mypy: int, pytest_: int, expected: int
) -> None:
    done = _run(checkout, mypy=mypy, pytest_=pytest_)
    assert done.returncode == expected, done.stdout + done.stderr
    assert f"--- mypy (exit {mypy})" in done.stdout  # mypy's report is shown either way
