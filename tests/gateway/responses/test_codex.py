"""OpenAI's Codex CLI through the gateway, configured as docs/how-to/coding-agents.md says:
a virtual key, a custom provider with ``wire_api = "responses"``, a tool loop (Codex runs the
command the model asks for and sends its output back), audited under the key's team.

``codex/package.json`` and ``codex/package-lock.json`` pin the CLI; ``npm ci`` installs it
once into a cache directory keyed by the lock file's hash (``AIGW_CACHE_DIR``, default
``~/.cache/aigw``): a fresh machine needs only node, npm and the npm registry.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from gateway_app.governance.service import Governance
from tests.fakes import FakeUpstream, ok
from tests.gateway.conftest import Running
from tests.workers import CACHE, machine_lock

CODEX_DIR = Path(__file__).resolve().parent / "codex"
# The docs' config.toml, with the gateway's URL filled in.
CONFIG = """model = "{model}"
model_provider = "aigw"

[model_providers.aigw]
name = "Company AI gateway"
base_url = "{url}/v1"
env_key = "AIGW_API_KEY"
wire_api = "responses"
"""


@pytest.fixture(scope="session")
def codex() -> Path:
    """The Codex CLI of the committed lock file."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed to run Codex: install Debian's nodejs and npm")
    lock = (CODEX_DIR / "package-lock.json").read_bytes()
    target = CACHE / f"codex-{hashlib.sha256(lock).hexdigest()[:16]}"
    binary = target / "node_modules" / ".bin" / "codex"
    with machine_lock(target.name):  # another run may be installing it
        _npm_ci(target, binary)
    return binary


def _npm_ci(target: Path, binary: Path) -> None:
    if not binary.exists():
        target.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json", ".npmrc"):
            shutil.copy(CODEX_DIR / name, target / name)
        result = subprocess.run(
            ["npm", "ci", "--ignore-scripts", "--loglevel=error"],
            cwd=target,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            shutil.rmtree(target / "node_modules", ignore_errors=True)
            raise AssertionError(f"npm ci of the Codex CLI failed:\n{result.stderr}")


def _run(codex: Path, gw: Running, key: str, model: str, prompt: str, home: Path) -> Any:
    home.mkdir()
    (home / "config.toml").write_text(CONFIG.format(model=model, url=gw.url))
    work = home.parent / f"{home.name}-work"
    work.mkdir()
    env = {**os.environ, "CODEX_HOME": str(home), "AIGW_API_KEY": key}
    return subprocess.run(
        [str(codex), "exec", "--skip-git-repo-check", prompt],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


def test_codex_runs_a_tool_loop_through_the_gateway_under_a_virtual_key(
    codex: Path,
    teams: tuple[Running, dict[str, str], Governance],
    fake_openai: FakeUpstream,
    tmp_path: Path,
) -> None:
    running, keys, gov = teams
    command = {"cmd": "echo gateway-tool-ok"}
    fake_openai.script(ok(content="", tool_calls=[{"name": "exec_command", "arguments": command}]))
    done = _run(codex, running, keys["red"], "gpt-5-mini", "Run the check", tmp_path / "home")
    assert done.returncode == 0, done.stderr
    # The model's second turn echoes the tool output Codex sent back: the command ran.
    assert "tool said" in done.stdout and "gateway-tool-ok" in done.stdout
    first, second = (r["json"] for r in fake_openai.requests)
    assert first["stream"] is True and first["store"] is False
    call = next(item for item in second["input"] if item.get("type") == "function_call")
    result = next(item for item in second["input"] if item.get("type") == "function_call_output")
    assert call["name"] == "exec_command" and result["call_id"] == call["call_id"]
    assert "gateway-tool-ok" in str(result["output"])
    deadline = time.monotonic() + 5
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline and len(rows) < 2:
        rows = gov.db.fetch("SELECT * FROM audit_events WHERE kind = 'request' AND status = 200")
        time.sleep(0.05)
    assert [(r["team_id"], r["model"]) for r in rows] == [("red", "gpt-5-mini")] * 2


def test_codex_sees_the_gateways_refusals(
    codex: Path,
    teams: tuple[Running, dict[str, str], Governance],
    fake_anthropic: FakeUpstream,
    tmp_path: Path,
) -> None:
    running, keys, _ = teams
    bad_key = _run(codex, running, "sk-aigw-revoked", "gpt-5-mini", "hi", tmp_path / "a")
    assert bad_key.returncode != 0
    assert "401 Unauthorized: Invalid, expired or revoked API key" in bad_key.stderr
    # Codex's built-in tools cannot go through chat translation: refused by name, not dropped.
    claude = _run(codex, running, keys["red"], "claude-sonnet-4-6", "hi", tmp_path / "b")
    assert claude.returncode != 0
    assert '"code":"unsupported_feature"' in claude.stderr
    assert "is not available for model 'claude-sonnet-4-6'" in claude.stderr
    assert fake_anthropic.requests == []
