"""The pack as a whole: conventions, coverage of the program's types, the stacks' verdicts."""

from __future__ import annotations

import re

import pytest

from infra import tags as infra_tags
from infra.cli import PROJECT_POLICY_CONFIG
from infra.offline import Plan
from infra.offline.policy_gate import load_policy_config
from policies import config as pack_config
from policies import tagging
from policies.pack import all_policies
from tests.conftest import ROOT, STACKS
from tests.policies.conftest import verdict

NAME = re.compile(r"^(aws|azure|gcp|kubernetes|multicloud)-[a-z0-9]+-[a-z0-9]+-[a-z0-9-]+$")


def test_policy_names_follow_the_convention_and_descriptions_say_how_to_fix() -> None:
    for policy in all_policies():
        assert NAME.match(policy.name), policy.name
        assert "Fix:" in policy.description, policy.name
        assert policy.enforcement_level is not None


def test_encryption_tagging_and_exposure_default_to_mandatory() -> None:
    from pulumi_policy import EnforcementLevel

    for category in (
        pack_config.Category.ENCRYPTION,
        pack_config.Category.TAGGING,
        pack_config.Category.EXPOSURE,
    ):
        assert pack_config.DEFAULT_LEVELS[category] == EnforcementLevel.MANDATORY
    for policy in all_policies():
        hygiene = policy.category == pack_config.Category.HYGIENE
        expected = EnforcementLevel.ADVISORY if hygiene else EnforcementLevel.MANDATORY
        assert policy.enforcement_level == expected, policy.name


def _types_seen(plans: dict[str, Plan], compliant_plan: Plan, broken_plan: Plan) -> set[str]:
    from tests.policies.test_resource_policies import VARIANTS

    every = [*plans.values(), compliant_plan, broken_plan]
    return {r.type for plan in every for r in plan.resources} | {v[0] for v in VARIANTS}


def test_every_policy_type_is_registered_by_a_stack_or_a_fixture(
    plans: dict[str, Plan], compliant_plan: Plan, broken_plan: Plan
) -> None:
    seen = _types_seen(plans, compliant_plan, broken_plan)
    for policy in all_policies():
        missing = set(policy.resource_types) - seen
        assert not missing, f"{policy.name} guards {sorted(missing)}, which nothing registers"
        if not policy.resource_types:  # tagging: every taggable type of its packages
            taggable = [
                t for t in seen if t.split(":")[0] in policy.packages and tagging.tag_path(t)
            ]
            assert taggable, f"{policy.name} matches no registered resource"


def test_the_pack_reads_taggability_like_the_tag_transform(
    plans: dict[str, Plan], compliant_plan: Plan, broken_plan: Plan
) -> None:
    for type_token in sorted(_types_seen(plans, compliant_plan, broken_plan)):
        if type_token.split(":")[0] in {"aws", "azure-native", "gcp"}:
            assert tagging.tag_path(type_token) == infra_tags.tag_path(type_token), type_token


def test_required_tag_keys_match_the_program() -> None:
    assert pack_config.REQUIRED_TAG_KEYS == infra_tags.REQUIRED_KEYS
    for key in infra_tags.REQUIRED_KEYS:
        assert tagging.gcp_label_key(key) == infra_tags.gcp_label_key(key)


@pytest.mark.parametrize("stack", STACKS)
def test_stack_plans_have_no_mandatory_violation(plans: dict[str, Plan], stack: str) -> None:
    result = verdict(plans[stack], load_policy_config(ROOT / PROJECT_POLICY_CONFIG))
    assert result.mandatory == (), result.render()


def test_every_project_exemption_is_needed_and_reasoned(plans: dict[str, Plan]) -> None:
    """The project's pack config exempts only what the real stacks need, each with a reason."""
    config = load_policy_config(ROOT / PROJECT_POLICY_CONFIG)
    resources = [r for plan in plans.values() for r in plan.resources]
    # Without any exemption, which resources does each policy flag?
    fired: dict[str, set[str]] = {}
    for plan in plans.values():
        for violation in verdict(plan).violations:
            fired.setdefault(violation.policy, set()).add(violation.urn)
    for policy, entry in config.items():
        for exemption in entry["exempt"]:
            assert len(exemption["reason"]) > 40, (policy, exemption)
            hits = {
                r.urn
                for r in resources
                if exemption.get("urn") == r.urn or exemption.get("type") == r.type
            }
            assert hits, f"{policy}: exemption {exemption} matches nothing in the stacks"
            assert hits & fired.get(policy, set()), f"{policy}: {exemption} exempts nothing"


def test_the_policy_reference_lists_every_policy() -> None:
    section = (ROOT / "docs" / "reference" / "policies.md").read_text()
    for policy in all_policies():
        assert f"| `{policy.name}` |" in section, policy.name
