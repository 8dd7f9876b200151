"""The README's "add a provider key and a model" steps, executed on a copy of a stack file.

The steps are read from the README (between the ``readme-steps:add-model``
markers), so the test fails when the documented steps stop working. There is
no Pulumi CLI here: ``pulumi config set --secret --path`` is applied to the
copy as the CLI writes it (an encrypted ``secure:`` value under the path),
``aigw plan`` is the offline plan and the policy gate, and ``pulumi up`` is
the planned pod run under podman (:mod:`tests.container.planned_pod`).
"""

from __future__ import annotations

import copy
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.offline import Plan, record
from infra.offline.policy_gate import evaluate
from tests.conftest import ROOT
from tests.container.planned_pod import PodBench

pytestmark = pytest.mark.timeout(900)

_STEPS = re.compile(
    r"<!-- readme-steps:add-model:start -->(.*?)<!-- readme-steps:add-model:end -->", re.S
)
_BLOCK = re.compile(r"```(sh|yaml)\n(.*?)```", re.S)


def readme_blocks() -> list[tuple[str, str]]:
    """The fenced blocks of the README's add-a-model steps, in order, unindented."""
    (steps,) = _STEPS.findall((ROOT / "README.md").read_text())
    blocks = []
    for kind, body in _BLOCK.findall(steps):
        lines = body.splitlines()
        indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
        blocks.append((kind, "\n".join(line[indent:] for line in lines)))
    return blocks


def config_set(stack_file: dict[str, Any], argv: list[str], stack: str) -> str:
    """``pulumi config set [--secret] [--path] KEY [VALUE] --stack S`` on a stack file's mapping.

    Returns the config key it set. A missing VALUE is what the CLI prompts for.
    """
    secret = path = False
    positional: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--secret":
            secret = True
        elif arg == "--path":
            path = True
        elif arg in ("--stack", "-s"):
            assert next(args) == stack, f"the step targets another stack: {argv}"
        elif arg.startswith("-"):
            raise AssertionError(f"pulumi config set option {arg} is not emulated")
        else:
            positional.append(arg)
    key, *value = positional
    entered = value[0] if value else f"prompted-value-for-{key}"
    stored: Any = {"secure": f"v1:encrypted:{entered}"} if secret else entered
    config = stack_file.setdefault("config", {})
    if not path:
        config[key] = stored
        return key
    namespace, _, dotted = key.partition(":")
    top, *rest = dotted.split(".")
    node = config.setdefault(f"{namespace}:{top}", {})
    for part in rest[:-1]:
        node = node.setdefault(part, {})
    node[rest[-1]] = stored
    return key


def merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    """Merge ``update`` into ``into`` the way a reader merges a snippet into a file."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def test_readme_add_model_steps_give_a_serving_pod(bench: PodBench, tmp_path: Path) -> None:
    stack_file = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    copy_path = tmp_path / "Pulumi.dev.yaml"
    plan: Plan | None = None
    ran = []
    for kind, body in readme_blocks():
        if kind == "yaml":
            merge(stack_file, yaml.safe_load(body))
            copy_path.write_text(yaml.safe_dump(stack_file, sort_keys=False))
            ran.append("edit")
            continue
        for line in body.splitlines():
            command = shlex.split(line, comments=True)
            if not command:
                continue
            if command[:3] == ["pulumi", "config", "set"]:
                key = config_set(stack_file, command[3:], "dev")
                copy_path.write_text(yaml.safe_dump(stack_file, sort_keys=False))
                ran.append(f"set {key}")
            elif command[:2] == [".venv/bin/aigw", "plan"]:
                assert command[2:] == ["--stack", "dev"], command
                plan = record("dev", project_dir=ROOT, stack_file=copy_path)
                verdict = evaluate(plan, pack_dir=ROOT / "policies", transport="in-process")
                assert verdict.passed, verdict.render()
                ran.append("plan")
            elif command[:2] == ["pulumi", "up"]:
                assert plan is not None, "the README deploys before it plans"
                # `pulumi up` deploys the plan: its pod must serve the new model with the new key.
                report = bench.run_track(plan, "aws")
                assert "llama-3.3-70b" in report.models
                assert report.served["llama-3.3-70b"] == "groq/llama-3.3-70b-versatile"
                assert "GROQ_API_KEY" in report.observed
                ran.append("up")
            else:
                raise AssertionError(f"the README step runs {line!r}, which the test cannot run")
    assert ran == ["set ai-gateway:providerKeys.groq", "edit", "plan", "up"], ran
