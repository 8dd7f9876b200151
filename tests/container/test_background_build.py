"""The session's collection hook: podman tests last, their image build started at once.

The build itself is exercised by every test that uses ``gateway_image``; this checks
the order and the start decision on stand-in items, without podman.
"""

from __future__ import annotations

from dataclasses import dataclass
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
