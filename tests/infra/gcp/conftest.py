"""GCP fixtures: the contract program's plan, recorded once per session."""

from __future__ import annotations

import pytest

from infra.offline import Plan, record
from tests.infra.conftest import FIXTURES, ROOT


@pytest.fixture(scope="session")
def contract_plan() -> Plan:
    """A program that builds only the GCP footprint (dev) and exports its contract."""
    return record("dev", project_dir=ROOT, program=FIXTURES / "gcp_contract" / "__main__.py")
