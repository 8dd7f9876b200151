"""The session's collection hook: podman tests last, their image build started at once.

The same for the semantic-quality tests and their evaluation job
(tests/gateway/cache/quality_job.py): they run just before the podman tests.
The build and the job themselves are exercised by the tests that use them; this
checks the order and the start decisions on stand-in items, without podman.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import tests.conftest
import tests.container.conftest
from tests.gateway.cache import quality_job


@dataclass(eq=False)
class Item:
    """What the hook reads of a collected test."""

    name: str
    fixturenames: tuple[str, ...] = ()
    nodeid: str = ""
    originalname: str = ""
    marks: list[Any] = field(default_factory=list)

    def add_marker(self, mark: Any) -> None:
        self.marks.append(mark)


def _quality(name: str) -> Item:
    """A stand-in for one of the semantic-quality tests that read the background job."""
    return Item(name, ("tmp_path",), f"{quality_job.MODULE}::{name}", name)


def _collect(
    items: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    collectonly: bool = False,
    jobs: list[bool] | None = None,
) -> int:
    """Run the hook over ``items``; how many builds it started (quality jobs into ``jobs``)."""
    started: list[bool] = []
    monkeypatch.setattr(
        tests.container.conftest, "start_background_build", lambda: started.append(True)
    )
    jobs = [] if jobs is None else jobs
    monkeypatch.setattr(quality_job, "start", lambda: jobs.append(True))
    config = SimpleNamespace(option=SimpleNamespace(collectonly=collectonly))
    tests.conftest.pytest_collection_modifyitems(config, items)  # type: ignore[arg-type]
    return len(started)


def test_podman_tests_run_last_in_their_order_and_the_build_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image = Item("image", ("podman", "gateway_image"))
    pod = Item("pod", ("bench", "podman", "gateway_image"))
    plain = [Item("a", ("plans",)), Item("b"), Item("c", ("tmp_path",))]
    items: list[Any] = [plain[0], image, plain[1], pod, plain[2]]
    assert _collect(items, monkeypatch) == 1
    assert [item.name for item in items] == ["a", "b", "c", "image", "pod"]
    # The first waits for the build: its time bound is the build's.
    assert [(mark.name, mark.args) for mark in image.marks] == [
        ("timeout", (tests.container.conftest.BUILD_WAIT_S + 300,))
    ]
    assert pod.marks == []


def test_no_build_without_a_test_that_needs_the_image(monkeypatch: pytest.MonkeyPatch) -> None:
    items: list[Any] = [Item("a"), Item("podman-only", ("podman",))]
    assert _collect(items, monkeypatch) == 0
    items = [Item("a"), Item("b", ("plans",))]
    assert _collect(items, monkeypatch) == 0
    assert [item.name for item in items] == ["a", "b"]


def test_collect_only_builds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    items: list[Any] = [Item("image", ("podman", "gateway_image")), Item("a")]
    items.insert(0, _quality(quality_job.USERS[0]))
    jobs: list[bool] = []
    assert _collect(items, monkeypatch, collectonly=True, jobs=jobs) == 0
    assert jobs == []
    assert [item.name for item in items] == ["a", quality_job.USERS[0], "image"]


def test_quality_tests_run_before_the_podman_ones_and_their_job_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dev, sealed = (_quality(name) for name in quality_job.USERS)
    # The module's other tests read no job result: they keep their place.
    pairs = _quality("test_a_malformed_pair_file_names_the_entry_and_the_fix")
    image = Item("image", ("podman", "gateway_image"))
    items: list[Any] = [Item("a"), dev, pairs, image, sealed, Item("b")]
    jobs: list[bool] = []
    assert _collect(items, monkeypatch, jobs=jobs) == 1
    assert jobs == [True]
    assert [item.name for item in items] == ["a", pairs.name, "b", dev.name, sealed.name, "image"]


def test_the_quality_jobs_readers_are_the_modules_tests() -> None:
    # A renamed test would no longer be ordered last (its job then runs in its setup).
    from tests.gateway.cache import test_semantic_quality

    assert quality_job.MODULE == "tests/gateway/cache/test_semantic_quality.py"
    assert all(callable(getattr(test_semantic_quality, name, None)) for name in quality_job.USERS)


def test_no_quality_job_without_its_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    jobs: list[bool] = []
    items: list[Any] = [
        Item("a"),
        _quality("test_the_numpy_model_reproduces_the_reference_similarities"),
    ]
    _collect(items, monkeypatch, jobs=jobs)
    assert jobs == []


def test_the_build_runs_niced_and_ending_the_session_ends_it_with_its_children() -> None:
    # A build of its own: the session's (started at collection) is left alone.
    build = tests.container.conftest._Build()
    ran: list[subprocess.CompletedProcess[str]] = []
    build.start(  # a build step with a child process of its own
        lambda _: ran.append(
            tests.container.conftest._run(["sh", "-c", "sleep 60 & sleep 60; wait"], timeout=120)
        )
    )
    deadline = time.monotonic() + 10
    while not build.processes and time.monotonic() < deadline:
        time.sleep(0.01)
    group = build.processes[0].pid
    stat = Path(f"/proc/{group}/stat").read_text()
    assert int(stat.rsplit(")", 1)[1].split()[16]) == 10  # field 19, nice: 10

    started = time.monotonic()
    build.stop()
    assert build.thread is not None and not build.thread.is_alive()
    assert time.monotonic() - started < 10
    assert build.done.is_set() and build.error is None
    assert ran and ran[0].returncode == -signal.SIGTERM
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # both sleeps, not just the shell
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"process group {group} still has processes after the stop")
    # The session's build state was not touched, and a foreground step is not tracked.
    assert tests.container.conftest._BUILD is not build
    assert tests.container.conftest._run(["true"], timeout=10).returncode == 0


def test_a_failed_build_is_handed_to_the_fixture() -> None:
    build = tests.container.conftest._Build()

    def fail(_: object) -> None:
        raise AssertionError("debootstrap failed: E: Couldn't download packages")

    build.start(fail)
    assert build.done.wait(10)
    assert isinstance(build.error, AssertionError) and "debootstrap" in str(build.error)
