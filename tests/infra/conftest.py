"""Fixtures of the infra tests. The stack plans (``plans``) live in tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.offline import Plan, record
from tests.conftest import ROOT, STACKS

__all__ = ["FIXTURES", "ROOT", "STACKS"]

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def fixture_plan() -> Plan:
    """The tagged fixture program (resources of all three clouds) on the dev stack file."""
    return record("dev", project_dir=ROOT, program=FIXTURES / "tagged_program" / "__main__.py")
