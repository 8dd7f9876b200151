"""Fixtures shared by every test area: the recorded plans of the repository's stacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

# One BLAS thread, as in the gateway (gateway_app/cache/minilm.py): set before any test
# module imports numpy (test_cache_config.py does, before minilm), else each of the
# semantic tests' ~4,000 forward passes fans out a thread per core on a shared machine.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest

from infra.offline import Plan, record
from tests import workers

ROOT = Path(__file__).resolve().parents[1]
STACKS = ("dev", "staging", "prod")
DEPLOYER_SECRETS = {
    "ai-gateway:providerKeys": {"openai": "sk-test-openai", "anthropic": "sk-ant-test-anthropic"}
}
"""What a deployer sets with `pulumi config set --secret` besides the stack file (the README)."""


def imported_modules(code: str) -> set[str]:
    """Every module a fresh interpreter has imported after running ``code`` (import closures)."""
    script = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


@pytest.fixture(scope="session")
def plans() -> dict[str, Plan]:
    """The real program's plan for each stack file in the repository, recorded once.

    With the provider keys a deployer sets (:data:`DEPLOYER_SECRETS`), so every
    provider of the stack files' catalogues has its key.
    """
    return {
        stack: record(stack, project_dir=ROOT, secret_config=DEPLOYER_SECRETS) for stack in STACKS
    }


@pytest.fixture(scope="session")
def k8s_plans() -> dict[int | None, Plan]:
    """The k8s fixture program's plans: no canary, and canary weights 0, 10 and 100.

    Shared by the infra tests and the pod test (the canary track), recorded once.
    """
    from tests.infra.k8s.conftest import WEIGHTS, gateway_config, record_fixture

    return {w: record_fixture({"ai-gateway:gateway": gateway_config(w)}) for w in WEIGHTS}


def _uses_quality_job(item: pytest.Item) -> bool:
    from tests.gateway.cache.quality_job import MODULE, USERS

    module = getattr(item, "nodeid", "").split("::")[0]
    return module == MODULE and getattr(item, "originalname", "") in USERS


def pytest_configure(config: pytest.Config) -> None:
    """Under xdist, the controller makes the directory its workers share (tests/workers.py)."""
    if workers.is_controller(config):
        workers.create_run_dir()


def pytest_unconfigure(config: pytest.Config) -> None:
    """The controller removes the run's shared directory."""
    if workers.is_controller(config):
        workers.remove_run_dir()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile``: a test file per unit, the podman and quality tests by group."""
    if config.option.dist == "loadfile":
        return workers.FileScheduling(config, log)
    return None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: Any) -> None:
    """The controller starts the background jobs the workers' collection asked for (once)."""
    shared = workers.run_dir()
    if shared is None:
        return
    if (shared / "needs-quality").exists():
        from tests.gateway.cache import quality_job

        quality_job.start(publish=True)
    if (shared / "needs-image").exists():
        from tests.container.conftest import start_background_build

        start_background_build(publish=True)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start the suite's long background work now, and run the tests that wait on it last.

    Two jobs are CPU or network work with nothing of the suite's to wait on, while the
    suite itself mostly waits on servers and subprocesses: they run beside it, at a
    lower CPU priority, and the tests that read their results run at the end (the
    semantic-quality ones, then the podman ones).

    - A cold build of the gateway image (tests/container/conftest.py: a debootstrap
      base, the gateway's wheels) waits on the network for minutes.
    - The semantic-quality evaluations (tests/gateway/cache/quality_job.py) take
      a minute or more of one core.

    On an xdist worker (tests/workers.py) the jobs are the controller's, started once
    for the run when a worker's collection asks for them (``needs-*`` files in the run's
    directory), and each kind of these tests is one work unit (a group): the podman tests
    share one set of pod fixtures, on one worker.
    """
    podman_tests = [item for item in items if "podman" in getattr(item, "fixturenames", ())]
    quality_tests = [item for item in items if _uses_quality_job(item)]
    last = set(podman_tests) | set(quality_tests)
    if last:
        items[:] = [item for item in items if item not in last] + quality_tests + podman_tests
    if config.option.collectonly:
        return
    needs_image = any("gateway_image" in getattr(item, "fixturenames", ()) for item in podman_tests)
    if needs_image:
        from tests.container.conftest import BUILD_WAIT_S

        # The first podman test waits for the build (minutes, when cold): its bound is the
        # build's, not pytest-timeout's per-test 300 s.
        podman_tests[0].add_marker(pytest.mark.timeout(BUILD_WAIT_S + 300))
    if workers.is_worker(config):
        groups = {item.nodeid: "quality" for item in quality_tests}
        groups.update({item.nodeid: "podman" for item in podman_tests})
        workers.write_groups(groups)
        shared = workers.run_dir()
        assert shared is not None, f"an xdist worker without {workers.RUN_DIR_ENV}"
        if quality_tests:
            (shared / "needs-quality").touch()
        if needs_image:
            (shared / "needs-image").touch()
        return
    if quality_tests:
        from tests.gateway.cache import quality_job

        quality_job.start()
    if needs_image:
        from tests.container.conftest import start_background_build

        start_background_build()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """End background work still running (``-x``, an interrupt)."""
    from tests.container.conftest import stop_background_build
    from tests.gateway.cache import quality_job

    stop_background_build()
    quality_job.stop()
