"""The pack's contents: its name and every policy, in one list.

``__main__.py`` builds the :class:`pulumi_policy.PolicyPack` from these; the
offline gate's in-process path uses the same list, so both always agree.
"""

from __future__ import annotations

import os

from pulumi_policy import EnforcementLevel, Policy

from policies import (
    aws,
    azure,
    gateway_api,
    gcp,
    governance,
    iam,
    kubernetes,
    speedup,
    stack,
    tagging,
)

PACK_NAME = "ai-gateway-guardrails"
PACK_LEVEL = EnforcementLevel.MANDATORY
"""Level for a policy that sets none (each of ours does, by category)."""


def all_policies() -> list[Policy]:
    """Every policy of the pack (names are unique).

    Also makes the SDK decode each resource once per request rather than once
    per policy (:mod:`policies.speedup`; ``AIGW_POLICY_NO_MEMO=1`` turns it off).
    """
    if os.environ.get("AIGW_POLICY_NO_MEMO") != "1":
        speedup.install()
    found: list[Policy] = [
        *aws.policies(),
        *iam.policies(),
        *azure.policies(),
        *gcp.policies(),
        *kubernetes.policies(),
        *gateway_api.policies(),
        *governance.policies(),
        *tagging.policies(),
        *stack.policies(),
    ]
    names = [p.name for p in found]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"duplicate policy names: {sorted(duplicates)}")
    return found
