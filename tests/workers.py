"""The suite on several pytest-xdist workers (``./scripts/test`` runs two): what they share.

``./scripts/test`` runs ``pytest -n 2 --dist loadfile --no-loadscope-reorder``: the
suite mostly waits on servers, subprocesses and sleeps of the timing tests, so a second
worker uses the core the first leaves idle (``bench/suite-time.md``). The workers of one
run keep out of each other's way here:

- **Work units** (:class:`FileScheduling`, this suite's ``loadfile`` scheduler): a test
  file's tests run on one worker, in order, so a module's fixtures (its gateways, Redis
  and PostgreSQL servers) start once; the tests of a group (:func:`write_groups`: the
  podman tests, the semantic-quality tests that read the background evaluation) form a
  unit of their own, wherever their files are. Units go to the workers in collection
  order (``--no-loadscope-reorder``): tests/conftest.py puts the groups last.
- **Background jobs** (the gateway image build, the semantic-quality evaluation): started
  once per run, by the controller process (:func:`run_dir` holds their results), not once
  per worker; the worker running their tests waits for the result there.
- **Ports**: each worker takes its own residue class of :func:`tests.ports.kept_port`'s
  span (:func:`worker`), so a port one worker keeps free is never another's server's.
- **Installs** into the machine's caches (apt-get, ``npm ci``): :func:`machine_lock`.
  **Once-per-run setup** in the checkout (``npm ci`` of an in-tree package):
  :func:`once_per_run`.

Outside xdist (``pytest`` run by hand) every helper here behaves as for a single process.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

RUN_DIR_ENV = "AIGW_SUITE_RUN_DIR"
"""Environment variable naming the run's shared directory (set by the controller, inherited
by the workers it starts)."""
CACHE = Path(os.environ.get("AIGW_CACHE_DIR", Path.home() / ".cache" / "aigw"))
"""The suite's cache on this machine (the base image, npm installs, locks): kept between runs."""

try:
    from xdist.scheduler import LoadScopeScheduling
except ImportError:  # xdist not installed: nothing below is used then
    LoadScopeScheduling = object  # type: ignore[assignment,misc]


class FileScheduling(LoadScopeScheduling):  # type: ignore[misc,valid-type]
    """xdist's ``loadfile`` (a test file per unit), but a test of a group
    (:func:`write_groups`) goes with its group.

    Not xdist's ``loadgroup``: it appends the group to a test's node id, which pytest 9
    no longer lets a plugin change (the mark is read, the id stays as it was), and it
    makes every other test a unit of its own, so a module's fixtures would start on
    both workers."""

    _groups: dict[str, str] | None = None

    def _split_scope(self, nodeid: str) -> str:
        if self._groups is None:  # the workers wrote them before reporting their collection
            self._groups = read_groups()
        return self._groups.get(nodeid) or nodeid.split("::", 1)[0]


def is_controller(config: pytest.Config) -> bool:
    """This process hands tests to xdist workers (it runs none itself): xdist's own
    condition for its distributed session (a distribution mode, workers to start, not
    ``--collect-only``)."""
    option = config.option
    return (
        not hasattr(config, "workerinput")
        and getattr(option, "dist", "no") != "no"
        and bool(getattr(option, "tx", None))
        and not getattr(option, "collectonly", False)
    )


def is_worker(config: Any) -> bool:
    """This process is an xdist worker."""
    return hasattr(config, "workerinput")


def worker() -> tuple[int, int]:
    """(this worker's index, the run's worker count); (0, 1) outside xdist."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if not name.startswith("gw") or not count.isdigit():
        return 0, 1
    return int(name[2:]), max(1, int(count))


def run_dir() -> Path | None:
    """The directory the controller and workers of this run share; None outside xdist."""
    value = os.environ.get(RUN_DIR_ENV)
    return Path(value) if value else None


def create_run_dir() -> Path:
    """The controller's: a fresh shared directory, named in the environment the workers
    inherit (they start after ``pytest_configure``)."""
    path = Path(tempfile.mkdtemp(prefix="aigw-suite-"))
    os.environ[RUN_DIR_ENV] = str(path)
    return path


def remove_run_dir() -> None:
    """The controller's, at the end of the run."""
    path = run_dir()
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)
        os.environ.pop(RUN_DIR_ENV, None)


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def machine_lock(name: str) -> Iterator[None]:
    """Hold the machine-wide lock ``name`` (``~/.cache/aigw/locks/NAME.lock``): for an
    install another process of this or another run may be making at the same time
    (``apt-get``: dpkg's own lock refuses a second one rather than waiting; ``npm ci``
    into a shared cache directory)."""
    with _flock(CACHE / "locks" / f"{name}.lock"):
        yield


@contextlib.contextmanager
def once_per_run(name: str) -> Iterator[bool]:
    """Yield True in the first process of the run to get here, False in the others
    (which wait while the first one's block runs). If the first one's block raises, the
    next one to get here gets True. Outside xdist: always True, nothing to wait for."""
    shared = run_dir()
    if shared is None:
        yield True
        return
    done = shared / f"{name}.done"
    with _flock(shared / f"{name}.lock"):
        if done.exists():
            yield False
            return
        yield True
        done.touch()


def _write_json(path: Path, value: Any) -> None:
    """``value`` as JSON at ``path``, whole or not at all (readers poll for the file; two
    processes may write the same one)."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(value))
    partial.rename(path)


def write_groups(groups: dict[str, str]) -> None:
    """A worker's, at collection: {node id: group} of the tests that form a unit of
    their own (every worker collects the same tests, so writes the same map)."""
    shared = run_dir()
    assert shared is not None, "write_groups() is an xdist worker's"
    _write_json(shared / "groups.json", groups)


def read_groups() -> dict[str, str]:
    """The controller's: the groups its workers wrote ({} when none did)."""
    shared = run_dir()
    path = None if shared is None else shared / "groups.json"
    if path is None or not path.exists():
        return {}
    groups: dict[str, str] = json.loads(path.read_text())
    return groups


def publish(name: str, value: dict[str, Any]) -> None:
    """Write the result ``name`` of a background job into the run's directory (atomically)."""
    shared = run_dir()
    assert shared is not None, "publish() is the xdist controller's"
    _write_json(shared / f"{name}.json", value)


def published(name: str, timeout: float) -> dict[str, Any]:
    """Wait for the controller's result ``name`` (:func:`publish`) at most ``timeout``
    seconds; AssertionError if it does not come."""
    shared = run_dir()
    assert shared is not None, "published() is an xdist worker's"
    path = shared / f"{name}.json"
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the background job {name!r} (run by the xdist controller) gave no result "
                f"within {timeout:.0f} s"
            )
        time.sleep(0.25)
    result: dict[str, Any] = json.loads(path.read_text())
    return result
