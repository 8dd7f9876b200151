"""Shared fixtures: the recorded plans of every stack file, recorded once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.offline import Plan, record

ROOT = Path(__file__).resolve().parents[2]
STACKS = ("dev", "staging", "prod")
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def plans() -> dict[str, Plan]:
    """The real program's plan for each stack file in the repository."""
    return {stack: record(stack, project_dir=ROOT) for stack in STACKS}


@pytest.fixture(scope="session")
def fixture_plan() -> Plan:
    """The tagged fixture program (resources of all three clouds) on the dev stack file."""
    return record("dev", project_dir=ROOT, program=FIXTURES / "tagged_program" / "__main__.py")
