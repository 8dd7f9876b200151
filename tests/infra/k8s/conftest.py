"""The k8s fixture program: its stack file and recording helpers (``k8s_plans`` is in
tests/conftest.py, shared with the pod test)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.offline import Plan, record
from tests.infra.conftest import FIXTURES, ROOT

PROGRAM = FIXTURES / "k8s_program" / "__main__.py"
STACK_FILE = FIXTURES / "k8s_program" / "Pulumi.k8s.yaml"
STABLE_IMAGE = "ghcr.io/acme/ai-gateway:1.0.0"
CANARY_IMAGE = "ghcr.io/acme/ai-gateway:1.1.0"
WEIGHTS = (None, 0, 10, 100)
"""None: no canary image at all; 0/10/100: a canary image with that weight."""


def gateway_config(weight: int | None, **extra: Any) -> dict[str, Any]:
    """The fixture's ``ai-gateway:gateway`` section with a canary at ``weight`` (None: no canary)."""
    import yaml

    section = dict(yaml.safe_load(Path(STACK_FILE).read_text())["config"]["ai-gateway:gateway"])
    if weight is not None:
        section.update(canaryImage=CANARY_IMAGE, canaryWeight=weight)
    section.update(extra)
    return section


def catalogue_with(**model: Any) -> dict[str, Any]:
    """The fixture's ``appConfig`` with extra settings on its model ``chat``."""
    import copy

    catalogue = copy.deepcopy(gateway_config(None)["appConfig"])
    catalogue["models"]["chat"].update(model)
    return catalogue


def record_fixture(config: dict[str, Any] | None = None) -> Plan:
    """Record the fixture program with config overrides."""
    return record(
        "k8s", project_dir=ROOT, stack_file=STACK_FILE, program=PROGRAM, config=config or {}
    )


@pytest.fixture(scope="session")
def k8s_plan(k8s_plans: dict[int | None, Plan]) -> Plan:
    """The plan with a 10% canary: every object kind exists in it."""
    return k8s_plans[10]
