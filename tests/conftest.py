"""Fixtures shared by every test area: the recorded plans of the repository's stacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.offline import Plan, record

ROOT = Path(__file__).resolve().parents[1]
STACKS = ("dev", "staging", "prod")


@pytest.fixture(scope="session")
def plans() -> dict[str, Plan]:
    """The real program's plan for each stack file in the repository, recorded once."""
    return {stack: record(stack, project_dir=ROOT) for stack in STACKS}
