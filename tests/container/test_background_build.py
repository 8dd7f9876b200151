"""The session's collection hook: podman tests last, their image build started at once.

The build itself is exercised by every test that uses ``gateway_image``; this checks
the order and the start decision on stand-in items, without podman.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import tests.conftest
import tests.container.conftest


@dataclass(eq=False)
class Item:
    """What the hook reads of a collected test."""

    name: str
    fixturenames: tuple[str, ...] = ()


def _collect(items: list[Any], monkeypatch: pytest.MonkeyPatch, collectonly: bool = False) -> int:
    """Run the hook over ``items``; how many builds it started."""
    started: list[bool] = []
    monkeypatch.setattr(
        tests.container.conftest, "start_background_build", lambda: started.append(True)
    )
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


def test_no_build_without_a_test_that_needs_the_image(monkeypatch: pytest.MonkeyPatch) -> None:
    items: list[Any] = [Item("a"), Item("podman-only", ("podman",))]
    assert _collect(items, monkeypatch) == 0
    items = [Item("a"), Item("b", ("plans",))]
    assert _collect(items, monkeypatch) == 0
    assert [item.name for item in items] == ["a", "b"]


def test_collect_only_builds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    items: list[Any] = [Item("image", ("podman", "gateway_image")), Item("a")]
    assert _collect(items, monkeypatch, collectonly=True) == 0
    assert [item.name for item in items] == ["a", "image"]


def test_the_build_runs_niced_and_ending_the_session_ends_it_with_its_children(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = tests.container.conftest
    monkeypatch.setattr(module, "_BUILD", module._Build())
    ran: list[subprocess.CompletedProcess[str]] = []

    def slow_build() -> None:  # a build step with a child process of its own
        try:
            ran.append(module._run(["sh", "-c", "sleep 60 & sleep 60; wait"], timeout=120))
        finally:
            module._BUILD.done.set()

    monkeypatch.setattr(module, "_build_in_background", slow_build)
    module.start_background_build()
    deadline = time.monotonic() + 10
    while not module._BUILD.processes and time.monotonic() < deadline:
        time.sleep(0.01)
    group = module._BUILD.processes[0].pid
    stat = Path(f"/proc/{group}/stat").read_text()
    assert int(stat.rsplit(")", 1)[1].split()[16]) == 10  # field 19, nice: 10

    started = time.monotonic()
    module.stop_background_build()
    assert module._BUILD.thread is not None and not module._BUILD.thread.is_alive()
    assert time.monotonic() - started < 10
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
