"""``aigw plan`` and ``aigw config-reference`` as a user runs them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infra.cli import EXIT_ERROR, EXIT_OK, main
from tests.infra.conftest import ROOT


def _aigw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_plan_exits_zero_for_every_stack(stack: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--stack", stack, "--project-dir", str(ROOT)]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith(f"Plan for stack {stack} of ai-gateway:")
    assert f'environment: "{stack}"' in out


def test_plan_json_lists_recorded_resources(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--stack", "dev", "--project-dir", str(ROOT), "--json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert isinstance(data, list)
    for item in data:
        assert {"type", "name", "parent", "provider", "inputs"} <= set(item)


def test_bad_config_exits_two_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "Pulumi.dev.yaml"
    bad.write_text(
        (ROOT / "Pulumi.dev.yaml")
        .read_text()
        .replace("region: us-east-1", "region: us-east-1\n    nodeCount: -1", 1)
    )
    result = _aigw("plan", "--stack", "dev", "--stack-file", str(bad))
    assert result.returncode == EXIT_ERROR
    assert (
        "ai-gateway:aws.nodeCount: -1 is not allowed; use an integer from 1 to 100" in result.stderr
    )
    assert result.stdout == ""


def test_bad_app_config_exits_two_naming_the_key_path(tmp_path: Path) -> None:
    """The gateway's own model judges appConfig before any resource is registered."""
    bad = tmp_path / "Pulumi.dev.yaml"
    text = (ROOT / "Pulumi.dev.yaml").read_text()
    assert "{provider: openai, model: gpt-4o, priority: 1}" in text
    bad.write_text(
        text.replace(
            "{provider: openai, model: gpt-4o, priority: 1}",
            "{provider: openia, model: gpt-4o, priority: first}",
        )
    )
    result = _aigw("plan", "--stack", "dev", "--stack-file", str(bad))
    assert result.returncode == EXIT_ERROR, result.stderr
    assert (
        "ai-gateway:gateway.appConfig.models.chat.deployments[3].priority: Input should be a "
        "valid integer, unable to parse string as an integer (got 'first')" in result.stderr
    )
    assert result.stdout == ""


def test_missing_stack_file_exits_two() -> None:
    result = _aigw("plan", "--stack", "nosuchstack")
    assert result.returncode == EXIT_ERROR
    assert "Pulumi.nosuchstack.yaml does not exist" in result.stderr


def test_readme_config_reference_is_current() -> None:
    from infra.docs import config_reference

    readme = (ROOT / "README.md").read_text()
    match = re.search(
        r"<!-- config-reference:start -->\n(.*)<!-- config-reference:end -->", readme, re.S
    )
    assert match, "README.md lacks the config-reference markers"
    assert match.group(1) == config_reference(), (
        "README config reference is stale: run `aigw config-reference`"
    )


def test_readme_quick_start_has_exactly_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    first_section = readme.split("\n## ")[1]
    commands = re.findall(r"```(?:sh|bash)\n(.*?)```", first_section, re.S)
    lines = [line for block in commands for line in block.strip().splitlines()]
    assert lines == ["./scripts/plan", "./scripts/test"]
    for line in lines:
        assert (ROOT / line.removeprefix("./")).stat().st_mode & 0o111
