"""The "Add a model" guide's steps (a provider key and a model), executed on a copy of a stack file.

The steps are read from ``docs/how-to/add-model.md`` (between the
``howto-steps:add-model`` markers), so the test fails when the documented steps
stop working. There is no Pulumi CLI here: ``pulumi config set --secret --path``
is applied to the copy as the CLI writes it (:mod:`tests.docs.stackfile`),
``aigw plan`` is the offline plan and the policy gate, and ``pulumi up`` is
the planned pod run under podman (:mod:`tests.container.planned_pod`). The
guides' other steps are run by ``tests/docs/test_howto.py``.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from infra.cli import PROJECT_POLICY_CONFIG
from infra.offline import Plan, record
from infra.offline.policy_gate import evaluate, load_policy_config
from tests.conftest import ROOT
from tests.container.planned_pod import PodBench
from tests.docs.stackfile import config_set, merge, step_blocks

GUIDE = ROOT / "docs" / "how-to" / "add-model.md"

pytestmark = pytest.mark.timeout(900)


def test_the_add_model_guide_gives_a_serving_pod(bench: PodBench, tmp_path: Path) -> None:
    stack_file = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    copy_path = tmp_path / "Pulumi.dev.yaml"
    plan: Plan | None = None
    ran = []
    for kind, body in step_blocks(GUIDE.read_text(), "add-model"):
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
                # With the project's reviewed pack config, as `aigw plan` reads it.
                verdict = evaluate(
                    plan,
                    pack_dir=ROOT / "policies",
                    config=load_policy_config(ROOT / PROJECT_POLICY_CONFIG),
                    transport="in-process",
                )
                assert verdict.passed, verdict.render()
                ran.append("plan")
            elif command[:2] == ["pulumi", "up"]:
                assert plan is not None, "the guide deploys before it plans"
                # `pulumi up` deploys the plan: its pod must serve the new model with the new key.
                report = bench.run_track(plan, "aws")
                assert "llama-3.3-70b" in report.models
                assert report.served["llama-3.3-70b"] == "groq/llama-3.3-70b-versatile"
                assert "GROQ_API_KEY" in report.observed
                ran.append("up")
            else:
                raise AssertionError(f"the guide runs {line!r}, which the test cannot run")
    assert ran == ["set ai-gateway:providerKeys.groq", "edit", "plan", "up"], ran
