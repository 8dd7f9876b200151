"""The k8s fixture program: its stack file and recording helpers (``k8s_plans`` is in
tests/conftest.py, shared with the pod test)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.offline import Plan, record
from tests.infra.conftest import FIXTURES, ROOT
from tests.workers import once_per_run

PROGRAM = FIXTURES / "k8s_program" / "__main__.py"
STACK_FILE = FIXTURES / "k8s_program" / "Pulumi.k8s.yaml"
GATEWAY_API_JUDGE = Path(__file__).parent / "gateway_api_judge"
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
def judge() -> Path:
    """The judge's pinned packages, installed once per run (``npm ci``; under xdist by the
    first worker to need them: a second ``npm ci`` would empty ``node_modules`` under the
    first one's judge)."""
    npm = shutil.which("npm")
    assert npm, "npm is needed for the Gateway API schema judge (Debian package npm)"
    with once_per_run("gateway-api-judge") as first:
        if first:
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=GATEWAY_API_JUDGE,
                check=True,
                capture_output=True,
                timeout=600,
            )
    return GATEWAY_API_JUDGE


@pytest.fixture(scope="session")
def k8s_plan(k8s_plans: dict[int | None, Plan]) -> Plan:
    """The plan with a 10% canary: every object kind exists in it."""
    return k8s_plans[10]


CONSOLE_NETWORKS = ["10.0.0.0/8", "198.51.100.0/24"]
OIDC_SECRET = {"ai-gateway:oidcClientSecret": "oidc-client-secret-of-the-stack"}


def console_app_config() -> dict[str, Any]:
    """The fixture's ``appConfig`` with people's sign-in (a confidential OIDC client)."""
    import copy

    catalogue = copy.deepcopy(gateway_config(None)["appConfig"])
    catalogue["identity"] = {
        "public_url": "https://gateway.ai.example.com",
        "oidc": {"issuer": "https://login.example.com", "client_id": "aigw-console"},
        "roles": [{"group": "platform-admins", "role": "org_admin"}],
    }
    return catalogue


@pytest.fixture(scope="session")
def console_plan() -> Plan:
    """The fixture program with the console: sign-in, its client secret, an allow-list, a canary."""
    section = gateway_config(
        10, appConfig=console_app_config(), consoleAllowedCidrs=CONSOLE_NETWORKS
    )
    return record(
        "k8s",
        project_dir=ROOT,
        stack_file=STACK_FILE,
        program=PROGRAM,
        config={"ai-gateway:gateway": section},
        secret_config=OIDC_SECRET,
    )
