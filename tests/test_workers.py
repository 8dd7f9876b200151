"""The suite on several xdist workers (tests/workers.py): units, background jobs, locks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import tests.conftest
from tests import workers
from tests.container.test_background_build import Item
from tests.gateway.cache import quality_job

ROOT = Path(__file__).resolve().parents[1]


def test_a_file_is_one_unit_and_a_group_one_unit_across_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(workers.RUN_DIR_ENV, str(tmp_path))
    workers.write_groups(
        {"tests/a/test_x.py::test_four": "podman", "tests/b/test_y.py::test_five[p]": "podman"}
    )
    scheduler: Any = object.__new__(workers.FileScheduling)
    split = scheduler._split_scope
    assert split("tests/a/test_x.py::test_one") == "tests/a/test_x.py"
    assert split("tests/a/test_x.py::TestK::test_two[p-1]") == "tests/a/test_x.py"
    assert split("tests/a/test_x.py::test_three[a::b]") == "tests/a/test_x.py"
    assert split("tests/a/test_x.py::test_four") == "podman"
    assert split("tests/b/test_y.py::test_five[p]") == "podman"
    assert split("tests/b/test_y.py::test_five[q]") == "tests/b/test_y.py"


def test_on_a_worker_the_jobs_are_asked_of_the_controller_and_their_tests_grouped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A worker starts no job itself: it leaves ``needs-*`` files for the controller
    (which starts each once per run) and makes the jobs' tests one unit each."""
    monkeypatch.setenv(workers.RUN_DIR_ENV, str(tmp_path))
    started: list[tuple[str, dict[str, Any]]] = []
    import tests.container.conftest

    monkeypatch.setattr(
        tests.container.conftest,
        "start_background_build",
        lambda **kw: started.append(("build", kw)),
    )
    monkeypatch.setattr(quality_job, "start", lambda **kw: started.append(("quality", kw)))
    dev = Item("dev", (), f"{quality_job.MODULE}::{quality_job.USERS[0]}", quality_job.USERS[0])
    pod = Item("pod", ("bench", "podman", "gateway_image"), "tests/container/test_p.py::pod")
    plain = Item("plain", ("plans",), "tests/test_plain.py::plain")
    items: list[Any] = [pod, plain, dev]
    config = SimpleNamespace(option=SimpleNamespace(collectonly=False), workerinput={})
    tests.conftest.pytest_collection_modifyitems(config, items)  # type: ignore[arg-type]
    assert started == []
    assert [item.name for item in items] == ["plain", "dev", "pod"]
    assert workers.read_groups() == {dev.nodeid: "quality", pod.nodeid: "podman"}
    assert {p.name for p in tmp_path.iterdir()} == {"needs-quality", "needs-image", "groups.json"}

    # The controller, told a worker has collected, starts both, publishing their results.
    tests.conftest.pytest_xdist_node_collection_finished(node=None, ids=[])
    assert started == [("quality", {"publish": True}), ("build", {"publish": True})]


def test_podman_tests_without_the_image_ask_for_no_build(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(workers.RUN_DIR_ENV, str(tmp_path))
    items: list[Any] = [Item("podman-only", ("podman",)), Item("a")]
    config = SimpleNamespace(option=SimpleNamespace(collectonly=False), workerinput={})
    tests.conftest.pytest_collection_modifyitems(config, items)  # type: ignore[arg-type]
    assert [p.name for p in tmp_path.iterdir()] == ["groups.json"]


_ONCE = """
import sys, time
from tests.workers import once_per_run
with once_per_run("setup") as first:
    print(first, flush=True)
    time.sleep(0.3)
    if first and sys.argv[1] == "fail":
        raise SystemExit(3)
"""


def _once(tmp_path: Path, *modes: str) -> list[tuple[int, str]]:
    env = {**os.environ, workers.RUN_DIR_ENV: str(tmp_path)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(_ONCE), mode],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for mode in modes
    ]
    return [(p.wait(60), (p.stdout.read() if p.stdout else "").strip()) for p in processes]


def test_once_per_run_runs_its_block_in_one_process_of_the_run(tmp_path: Path) -> None:
    outcomes = _once(tmp_path, "ok", "ok", "ok")
    assert sorted(out for _, out in outcomes) == ["False", "False", "True"], outcomes
    assert all(code == 0 for code, _ in outcomes)


def test_once_per_run_hands_the_block_on_when_the_first_one_fails(tmp_path: Path) -> None:
    outcomes = _once(tmp_path, "fail", "fail")
    # The first to enter fails (exit 3) without marking it done: the other runs it too.
    assert [out for _, out in outcomes] == ["True", "True"], outcomes
    assert sorted(code for code, _ in outcomes) == [3, 3]
    assert _once(tmp_path, "ok") == [(0, "True")]
    assert _once(tmp_path, "ok") == [(0, "False")]


def test_outside_xdist_once_per_run_always_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(workers.RUN_DIR_ENV, raising=False)
    for _ in range(2):
        with workers.once_per_run("anything") as first:
            assert first


def test_a_published_result_reaches_a_waiting_worker_and_a_missing_one_times_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(workers.RUN_DIR_ENV, str(tmp_path))
    with pytest.raises(AssertionError, match=r"'image'.*gave no result within 1 s"):
        workers.published("image", timeout=1)
    workers.publish("image", {"image_id": "sha256:abc", "skip": None, "error": None})
    assert workers.published("image", timeout=1)["image_id"] == "sha256:abc"
    assert not list(tmp_path.glob("*.partial"))


def test_the_controller_is_told_apart_from_workers_and_single_runs() -> None:
    def config(**option: Any) -> Any:
        return SimpleNamespace(option=SimpleNamespace(**option))

    two = {"dist": "loadfile", "tx": ["popen", "popen"], "collectonly": False}
    assert workers.is_controller(config(**two))
    assert not workers.is_controller(config(**{**two, "collectonly": True}))  # no workers
    assert not workers.is_controller(config(dist="no", tx=[]))  # -n 0
    assert not workers.is_controller(config())  # xdist not loaded
    worker = config(**two)
    worker.workerinput = {}
    assert not workers.is_controller(worker) and workers.is_worker(worker)


def test_the_evaluations_outcome_reaches_the_worker_even_when_unreadable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The controller publishes the quality job's outcome whatever it is: a result that is
    not JSON fails the worker's tests at once, saying so, instead of their timeout."""
    import tempfile

    monkeypatch.setenv(workers.RUN_DIR_ENV, str(tmp_path))
    job = quality_job._Job()
    job.dir = tempfile.TemporaryDirectory(prefix="aigw-quality-test-")
    (Path(job.dir.name) / "stderr").write_text("")
    job.process = subprocess.Popen(["sh", "-c", f"printf 'not json' > {job.out}"])
    job._publish()
    assert workers.published("quality", timeout=5)["exit"] == 1
    (tmp_path / "needs-quality").touch()  # this process as the worker that asked for it
    with pytest.raises(AssertionError, match=r"exited 1:\s+its result is not JSON"):
        quality_job._Job().result(timeout=5)
    job.dir.cleanup()
