"""The semantic-quality evaluations, run in a background process from collection on.

``test_semantic_quality.py`` scores the development pairs (with validation) and
sealed split v3 through the gateway's cache hook: about 3,900 forward passes of
the local model, a minute or more of one core, all CPU and nothing to wait on.
The rest of the suite mostly waits (servers, subprocesses, podman), so the
evaluation runs beside it: :func:`start` (called from tests/conftest.py when the
quality tests are collected) launches ``python -m tests.gateway.cache.quality_job``
at a lower CPU priority, and :func:`result` hands each test the same document
``bench.semantic_eval.evaluate`` returns in-process (the job calls exactly that,
with the same arguments, and writes it as JSON). Without a started job (the
module run alone) :func:`result` starts it and waits. Under xdist the job is the
controller's (once per run, tests/workers.py): it publishes the document in the run's
directory, where the worker running the quality tests waits for it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from tests import workers

ROOT = Path(__file__).resolve().parents[3]
PAIRS = Path(__file__).parent / "pairs"
DEV = sorted(PAIRS.glob("dev_*.yaml"))
SEALED_3 = PAIRS / "sealed_test_3.yaml"
MODULE = "tests/gateway/cache/test_semantic_quality.py"
"""The test module whose tests read the job's results."""
USERS = (
    "test_precision_holds_on_authors_the_judge_was_not_fitted_on",
    "test_sealed_split_3_keeps_the_precision_bar_as_a_regression_test",
)
"""Its tests that read them (run last, after the job has had the suite's time)."""
JOB = "tests.gateway.cache.quality_job"
"""This module, run as the job."""
NICE = 10
"""Below the tests' own priority: the job takes the core the suite leaves idle."""


def evaluations() -> dict[str, dict[str, Any]]:
    """What the tests assert on, by name: ``bench.semantic_eval.evaluate`` of each split."""
    from bench.semantic_eval import evaluate

    return {
        # The development pairs with 5-fold and leave-one-source-out validation.
        "dev": evaluate(DEV, folds=5),
        # Sealed split v3 at the default profile; the wrong hits listed for the message.
        "sealed_3": evaluate([SEALED_3], show_errors=True),
    }


class _Job:
    """One evaluation process per session, its output in a private directory."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None
        self.dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def out(self) -> Path:
        assert self.dir is not None
        return Path(self.dir.name) / "quality.json"

    def start(self, publish: bool = False) -> None:
        with self.lock:
            if self.process is not None:
                return
            self.dir = tempfile.TemporaryDirectory(prefix="aigw-quality-")
            with open(Path(self.dir.name) / "stderr", "wb") as stderr:
                self.process = subprocess.Popen(
                    ["nice", "-n", str(NICE), sys.executable, "-m", JOB, str(self.out)],
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                )
            if publish:
                threading.Thread(target=self._publish, name="quality-job", daemon=True).start()

    def _publish(self) -> None:
        """The xdist controller's: the job's outcome, for the worker running its tests."""
        assert self.process is not None and self.dir is not None
        code = self.process.wait()
        try:
            stderr = (Path(self.dir.name) / "stderr").read_text(errors="replace")[-4000:]
            try:
                document = json.loads(self.out.read_text()) if code == 0 else None
            except ValueError as exc:  # the reader must hear of it, not wait out its timeout
                code, stderr, document = 1, f"its result is not JSON: {exc}\n{stderr}", None
            workers.publish("quality", {"exit": code, "stderr": stderr, "result": document})
        except OSError:
            pass  # the run ended first (stop() removed the directories): no reader is left

    def result(self, timeout: float) -> dict[str, dict[str, Any]]:
        shared = workers.run_dir()
        if shared is not None and (shared / "needs-quality").exists():
            outcome = workers.published("quality", timeout)  # an xdist worker
            code, stderr, document = outcome["exit"], outcome["stderr"], outcome["result"]
        else:
            self.start()
            assert self.process is not None and self.dir is not None
            try:
                code = self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.stop()
                raise AssertionError(
                    f"the semantic-quality evaluation did not finish within {timeout:.0f} s"
                ) from None
            stderr = (Path(self.dir.name) / "stderr").read_text(errors="replace")
            document = json.loads(self.out.read_text()) if code == 0 else None
        if code != 0:
            raise AssertionError(
                f"the semantic-quality evaluation exited {code}:\n{stderr[-4000:]}"
            )
        assert isinstance(document, dict)
        return document

    def stop(self) -> None:
        with self.lock:
            if self.process is not None and self.process.poll() is None:
                self.process.kill()
                self.process.wait()


_JOB = _Job()


def start(publish: bool = False) -> None:
    """Start the evaluation in the background (once per session); ``publish``: the xdist
    controller's job, its outcome for the workers (:func:`tests.workers.publish`)."""
    _JOB.start(publish)


def result(name: str, timeout: float) -> dict[str, Any]:
    """The evaluation ``name`` (``dev``, ``sealed_3``): waits for the job, starts it if needed."""
    return _JOB.result(timeout)[name]


def stop() -> None:
    """End a job still running when the session ends (``-x``, an interrupt)."""
    _JOB.stop()
    if _JOB.dir is not None:
        with contextlib.suppress(OSError):
            _JOB.dir.cleanup()


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as in the gateway and tests/conftest.py
    Path(sys.argv[1]).write_text(json.dumps(evaluations()))
