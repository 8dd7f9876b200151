"""Every command a how-to guide shows that can run offline is run here, as the guide says.

Each guide (``docs/how-to/*.md``) is read as a reader follows it: the blocks
between ``<!-- howto-steps:NAME:start -->`` and ``...:end -->`` are run in page
order on one copy of ``Pulumi.dev.yaml`` and one local gateway:

* ``pulumi config set|rm`` edit the copy as the CLI would (:mod:`tests.docs.stackfile`),
  and a YAML snippet is merged into it;
* ``.venv/bin/aigw plan --stack dev`` is the offline plan of the copy, with the
  policy gate: it must exit 0;
* ``pulumi up`` deploys the copy: here its plan must succeed (the last plan
  when nothing changed since);
* ``aigw admin ...`` runs the installed command against a gateway started with
  ``aigw serve`` and an admin key, as the guide's ``export AIGW_URL=...`` lines
  would point it at a deployed one; a placeholder in capitals (``KEY_ID``) is
  filled as a reader fills it (from ``aigw admin keys list``).

Every other line of every shell block of every guide must be a command that
needs a cloud, a Pulumi backend or a deployed stack (:data:`NEEDS_CLOUD`); an
offline command outside a steps block, or a command of neither kind, fails the
test, so a new command in a guide cannot go unrun. What each guide's steps must
have achieved is checked at the end (:data:`OUTCOMES`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from infra.cli import main as aigw_main
from tests.conftest import ROOT
from tests.docs.stackfile import BLOCK, STEPS, config_rm, config_set, merge, step_blocks
from tests.ports import kept_port

GUIDES = ROOT / "docs" / "how-to"
AIGW = Path(sys.executable).with_name("aigw")
ADMIN_TOKEN = "howto-admin-key-0123456789abcdef"

#: Steps run by another test (the planned pod under podman), and that test.
RUN_ELSEWHERE = {"add-model": ROOT / "tests" / "container" / "test_howto_add_model.py"}

#: Commands a guide may show that need a real cloud, a Pulumi backend or a deployed stack.
NEEDS_CLOUD = re.compile(
    r"^(pulumi (up|preview|destroy|login|refresh|import|stack|config get)\b"
    r"|curl |kubectl |gh |aws |az |gcloud |for |done$|[A-Z_]+=\$\((az|gcloud|aws) "
    r"|export (AIGW_URL|AIGW_ADMIN_TOKEN)="
    # A coding agent pointed at a deployed gateway (the agents themselves are driven
    # through the gateway by tests/gateway/test_claude_code_replay.py and
    # tests/gateway/responses/test_codex.py).
    r"|export (ANTHROPIC|OPENAI)_[A-Z_]+=|claude$|codex\b)"
)
#: Commands run here, offline.
OFFLINE = re.compile(r"^(pulumi config (set|rm)|\.venv/bin/aigw plan|aigw admin) ")


def _commands(body: str) -> Iterator[str]:
    """The command lines of a shell block: continuations joined, comments and blanks skipped."""
    for line in body.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if words:
            yield line.strip()


def _guides() -> list[Path]:
    return sorted(GUIDES.glob("*.md"))


@dataclass
class Reader:
    """One reader following one guide: a stack file copy, its last plan, the gateway."""

    tmp: Path
    gateway: str
    stack_file: dict[str, Any] = field(default_factory=dict)
    plan: list[dict[str, Any]] | None = None
    ran: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.stack_file = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
        self.copy = self.tmp / "Pulumi.dev.yaml"
        self._save()

    def _save(self) -> None:
        self.copy.write_text(yaml.safe_dump(self.stack_file, sort_keys=False))
        self.plan = None  # an edit makes the last plan stale

    def edit(self, snippet: str) -> None:
        merge(self.stack_file, yaml.safe_load(snippet))
        self._save()
        self.ran.append("edit")

    def run(self, line: str) -> None:
        words = shlex.split(line, comments=True)
        if words[:3] == ["pulumi", "config", "set"]:
            self.ran.append(f"set {config_set(self.stack_file, words[3:], 'dev')}")
            self._save()
        elif words[:3] == ["pulumi", "config", "rm"]:
            self.ran.append(f"rm {config_rm(self.stack_file, words[3:], 'dev')}")
            self._save()
        elif words[:2] == [".venv/bin/aigw", "plan"]:
            assert words[2:] == ["--stack", "dev"], words
            self.plan = self._plan()
            self.ran.append("plan")
        elif words[:2] == ["pulumi", "up"]:
            if self.plan is None:
                self.plan = self._plan()  # what `up` would deploy must plan cleanly
            self.ran.append("up")
        elif words[:2] == ["aigw", "admin"]:
            self.ran.append(" ".join(words[:4]))
            self._admin(words[2:])
        else:
            assert NEEDS_CLOUD.match(line), f"the guide runs {line!r}, which nothing runs"

    def _plan(self) -> list[dict[str, Any]]:
        """``aigw plan --stack dev`` of the copy, through the CLI's own entry point."""
        out, err = io.StringIO(), io.StringIO()
        argv = ["plan", "--stack", "dev", "--stack-file", str(self.copy), "--json", "-q"]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = aigw_main([*argv, "--policy-transport", "in-process"])
        assert code == 0, err.getvalue()[-3000:]
        return json.loads(out.getvalue())

    def _admin(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        args = [self._placeholder(arg) for arg in args]
        done = subprocess.run(
            [str(AIGW), "admin", *args],
            env={
                **os.environ,
                "AIGW_URL": self.gateway,
                "AIGW_ADMIN_TOKEN": ADMIN_TOKEN,
                "HOME": str(self.tmp),  # no admin config file of the machine's
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    def _placeholder(self, arg: str) -> str:
        if arg == "KEY_ID":
            keys = self.admin("GET", "/admin/keys")["data"]
            active = [k for k in keys if not k["revoked_at"]]
            assert active, "the guide needs a key; create one first"
            return active[-1]["id"]
        assert not re.fullmatch(r"[A-Z][A-Z_]+", arg), f"placeholder {arg} is not filled"
        return arg

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        """The admin API, as the checks below read it."""
        response = httpx.request(
            method,
            self.gateway + path,
            headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=30,
            **kwargs,
        )
        response.raise_for_status()
        return response.json()


def _of(plan: list[dict[str, Any]], type_token: str) -> list[dict[str, Any]]:
    return [r for r in plan if r["type"] == type_token]


def _catalogues(plan: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        r["name"]: yaml.safe_load(r["inputs"]["data"]["config.yaml"])
        for r in _of(plan, "kubernetes:core/v1:ConfigMap")
        if r["inputs"]["metadata"]["name"] == "ai-gateway-config"
    }


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["inputs"]["spec"]["template"]["spec"]["containers"][0]


def _deployments(plan: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [
        r
        for r in _of(plan, "kubernetes:apps/v1:Deployment")
        if r["inputs"]["metadata"]["name"] == name
    ]


def _add_model(reader: Reader) -> None:
    for cluster, catalogue in _catalogues(reader.plan).items():
        deployments = catalogue["models"]["chat-lite"]["deployments"]
        own = {"aws": "aws-bedrock", "azure": "azure-openai", "gcp": "vertex"}
        cloud = next(c for c in own if f"-{c}-" in cluster)
        assert deployments[0]["provider"] == own[cloud], (cluster, deployments)


def _provider_key(reader: Reader) -> None:
    for catalogue in _catalogues(reader.plan).values():
        assert catalogue["providers"]["mistral"]["api_key"] == "${MISTRAL_API_KEY}"
        assert "mistral-small" in catalogue["models"]
    for deployment in _deployments(reader.plan, "ai-gateway"):
        env = {e["name"]: e.get("valueFrom") for e in _container(deployment)["env"]}
        assert env["MISTRAL_API_KEY"]["secretKeyRef"]["key"] == "mistral-api-key"


def _canary(reader: Reader) -> None:
    # The guide ends by promoting the canary: one track, on the new image.
    assert _deployments(reader.plan, "ai-gateway-canary") == []
    stable = _deployments(reader.plan, "ai-gateway")
    assert stable and {_container(d)["image"] for d in stable} == {"ghcr.io/acme/ai-gateway:1.1.0"}


def _drain(reader: Reader) -> None:
    routed = {
        r["inputs"]["setIdentifier"]: r["inputs"]
        for r in _of(reader.plan, "aws:route53/record:Record")
        if r["inputs"].get("setIdentifier")
    }
    assert {c: p["weightedRoutingPolicies"][0]["weight"] for c, p in routed.items()} == {
        "aws": 100,
        "azure": 100,
        "gcp": 0,
    }


def _team_budget(reader: Reader) -> None:
    limit = reader.admin("GET", "/admin/limits/team/search")
    assert (limit["monthly_usd"], limit["rpm"], limit["tpm"]) == (500, 600, 200000)
    keys = reader.admin("GET", "/admin/keys", params={"team_id": "search"})["data"]
    assert {(k["name"], k["role"]) for k in keys} >= {
        ("search-lead", "team_admin"),
        ("web-frontend", "member"),
    }
    web = next(k for k in keys if k["name"] == "web-frontend")
    assert web["models"] == ["chat", "chat-fast"] and web["project_id"] == "search-web"
    assert reader.admin("GET", f"/admin/limits/key/{web['id']}")["monthly_usd"] == 100


def _rotate(reader: Reader) -> None:
    for deployment in _deployments(reader.plan, "ai-gateway"):
        env = {e["name"]: e.get("valueFrom") for e in _container(deployment)["env"]}
        assert env["OPENAI_API_KEY"]["secretKeyRef"]["key"] == "openai-api-key"
    keys = reader.admin("GET", "/admin/keys")["data"]
    assert any(k["revoked_at"] for k in keys), "the guide's revoke did not revoke"


def _a_key_to_rotate(reader: Reader) -> None:
    reader.admin("POST", "/admin/keys", json={"team_id": "search", "project_id": "search-web"})


#: What a reader of a guide already has (the guide's "you have a key" starting point).
SETUP: dict[str, Callable[[Reader], None]] = {"rotate-secret.md": _a_key_to_rotate}

#: What each guide's steps must have achieved, checked after its last step.
OUTCOMES: dict[str, Callable[[Reader], None]] = {
    "add-model.md": _add_model,
    "add-provider-key.md": _provider_key,
    "canary.md": _canary,
    "drain-a-cloud.md": _drain,
    "team-budget.md": _team_budget,
    "read-spend.md": lambda reader: None,  # every command exits 0 on a live gateway
    "rotate-secret.md": _rotate,
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``aigw serve`` with the bundled example config and an admin key, on loopback."""
    folder = tmp_path_factory.mktemp("gateway")
    port = kept_port()
    env = {**os.environ, "AIGW_ADMIN_KEY": ADMIN_TOKEN, "HOME": str(folder)}
    for name in ("AIGW_CONFIG", "AIGW_REDIS_URL", "AIGW_DATABASE_URL", "OPENAI_API_KEY"):
        env.pop(name, None)
    log = (folder / "serve.log").open("w")
    process = subprocess.Popen(
        [str(AIGW), "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=folder,  # the embedded SQLite database lands here
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (folder / "serve.log").read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health/live", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, (folder / "serve.log").read_text()
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_every_guide_command_is_run_or_needs_a_cloud() -> None:
    """The classification is total: a command of neither kind, or an offline one outside
    a steps block, fails (so adding a command to a guide means adding it to a test)."""
    for guide in _guides():
        text = guide.read_text()
        inside = "".join(body for _, body in STEPS.findall(text))
        stepped = {
            cmd for kind, body in BLOCK.findall(inside) if kind == "sh" for cmd in _commands(body)
        }
        for kind, body in BLOCK.findall(text):
            if kind != "sh":
                continue
            for command in _commands(body):
                if OFFLINE.match(command):
                    assert command in stepped, (
                        f"{guide.name}: {command!r} runs offline but no test runs it: "
                        "put it in a howto-steps block"
                    )
                else:
                    assert NEEDS_CLOUD.match(command), (
                        f"{guide.name}: {command!r} is neither run here nor a cloud command"
                    )
    assert set(OUTCOMES) == {
        guide.name for guide in _guides() if "<!-- howto-steps:" in guide.read_text()
    }


def test_steps_run_elsewhere_are_run_there() -> None:
    for name, test_file in RUN_ELSEWHERE.items():
        assert f'"{name}"' in test_file.read_text(), (name, test_file)


@pytest.mark.parametrize("guide", sorted(OUTCOMES))
def test_the_guide_runs_as_written(guide: str, gateway: str, tmp_path: Path) -> None:
    reader = Reader(tmp_path, gateway)
    text = (GUIDES / guide).read_text()
    names = [name for name, _ in STEPS.findall(text) if name not in RUN_ELSEWHERE]
    assert names, guide
    SETUP.get(guide, lambda reader: None)(reader)
    for name in names:
        for kind, block in step_blocks(text, name):
            if kind == "yaml":
                reader.edit(block)
            else:
                for command in _commands(block):
                    reader.run(command)
    OUTCOMES[guide](reader)
