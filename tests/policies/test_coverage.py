"""The coverage table of the anchor rule sets is generated, current and honest."""

from __future__ import annotations

from infra.offline import Plan
from policies import coverage
from policies.pack import all_policies
from tests.conftest import ROOT


def test_the_coverage_doc_is_generated_from_the_catalog() -> None:
    doc = (ROOT / "docs" / "policy-coverage.md").read_text()
    assert doc == coverage.render(), "run: python -m policies.coverage > docs/policy-coverage.md"


def test_every_registered_type_is_in_the_catalog(plans: dict[str, Plan]) -> None:
    registered = {
        r.type
        for plan in plans.values()
        for r in plan.resources
        if r.custom and not r.type.startswith("pulumi:providers:")
    }
    assert registered - set(coverage.CATALOG) == set()


def test_each_covering_policy_exists_and_guards_the_type() -> None:
    policies = {p.name: p for p in all_policies()}
    for type_token, anchor in coverage.rows():
        if anchor.policy is None:
            assert anchor.reason, f"{type_token} {anchor.check}: uncovered without a reason"
            continue
        policy = policies.get(anchor.policy)
        assert policy is not None, f"{anchor.check}: no policy {anchor.policy}"
        # It guards this type, or (a setting carried by a related resource, such as a
        # VPC's default security group) one of the types the catalog lists.
        guarded = set(policy.resource_types) or {type_token}
        assert guarded & set(coverage.CATALOG) or type_token in guarded, (type_token, anchor)


def test_the_covered_share_meets_the_target() -> None:
    assert coverage.covered_share() >= coverage.TARGET
