"""The pure decisions behind the gateway's Kubernetes objects, including bad input."""

from __future__ import annotations

import pytest

from infra.config import Environment
from infra.decisions import k8s as decisions
from infra.decisions.k8s import CanaryPlan, Resources, Scaling
from infra.k8s.edge import namespace_labels
from infra.k8s.gateway import network_policy_egress, secret_key_for, topology_spread

# ----------------------------------------------------------------------- names


def test_dns_label_joins_and_keeps_short_names() -> None:
    assert decisions.dns_label("ai-gateway", "canary") == "ai-gateway-canary"


def test_dns_label_shortens_long_names_with_a_distinguishing_hash() -> None:
    long_a = decisions.dns_label("a" * 60, "stable")
    long_b = decisions.dns_label("a" * 60, "canary")
    assert len(long_a) == len(long_b) == 63
    assert long_a != long_b
    assert decisions._DNS_LABEL.fullmatch(long_a)
    assert len(decisions.dns_label("x" * 80, max_length=20)) == 20


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        (("Gateway_1",), "not a valid Kubernetes name"),
        (("-gateway",), "not a valid Kubernetes name"),
        (("gateway", ""), "empty part"),
        ((), "empty part"),
    ],
)
def test_dns_label_rejects_bad_names(parts: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decisions.dns_label(*parts)


def test_migration_job_name_changes_with_image_and_config_only() -> None:
    name = decisions.migration_job_name("ai-gateway", "img:1", "a: 1\n")
    assert name.startswith("ai-gateway-migrate-") and len(name) <= 63
    assert name == decisions.migration_job_name("ai-gateway", "img:1", "a: 1\n")
    assert name != decisions.migration_job_name("ai-gateway", "img:2", "a: 1\n")
    assert name != decisions.migration_job_name("ai-gateway", "img:1", "a: 2\n")
    # Length-prefixed parts: moving text between image and config is a change too.
    assert decisions.content_hash("ab", "c") != decisions.content_hash("a", "bc")
    with pytest.raises(ValueError, match="image is empty"):
        decisions.migration_job_name("ai-gateway", "", "")


def test_gateway_hostnames() -> None:
    assert decisions.gateway_hostnames("ai.example.com", "gateway", "gcp") == (
        "gateway.ai.example.com",
        "gateway-gcp.ai.example.com",
    )
    with pytest.raises(ValueError, match=r"ai-gateway:dns\.hostname"):
        decisions.gateway_hostnames("ai.example.com", "g" * 63, "azure")
    with pytest.raises(ValueError, match="not a valid DNS name"):
        decisions.gateway_hostnames("ai.example.com", "Gate_way", "aws")


# --------------------------------------------------------------------- scaling


def test_scaling_accepts_bounds_per_environment() -> None:
    assert decisions.scaling(Environment.DEV, 1, 3) == Scaling(1, 3)
    assert decisions.scaling(Environment.PROD, 3, 20) == Scaling(3, 20)


@pytest.mark.parametrize(
    ("env", "replicas", "max_replicas", "message"),
    [
        (Environment.PROD, 1, 5, "at least 2"),
        (Environment.STAGING, 1, 5, "at least 2"),
        (Environment.DEV, 0, 5, "at least 1"),
        (Environment.DEV, 3, 2, "maxReplicas 2 is below replicas 3"),
        (Environment.DEV, True, 2, "too low"),
        (Environment.DEV, 2, "4", "maxReplicas"),
    ],
)
def test_scaling_rejects_bad_bounds(
    env: Environment, replicas: object, max_replicas: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        decisions.scaling(env, replicas, max_replicas)  # type: ignore[arg-type]


# ------------------------------------------------------------------- resources


@pytest.mark.parametrize(
    ("quantity", "millis"), [("250m", 250), ("1", 1000), ("1.5", 1500), ("0.1", 100)]
)
def test_cpu_quantities(quantity: str, millis: int) -> None:
    assert decisions.cpu_millicores(quantity) == millis


@pytest.mark.parametrize(
    ("quantity", "size"), [("512Mi", 512 * 2**20), ("1Gi", 2**30), ("1G", 10**9)]
)
def test_memory_quantities(quantity: str, size: int) -> None:
    assert decisions.memory_bytes(quantity) == size


@pytest.mark.parametrize("quantity", ["", "1 core", "-1", "0.0001", "250M", "abc"])
def test_bad_cpu_quantities_name_the_fix(quantity: str) -> None:
    with pytest.raises(ValueError, match="cpu"):
        decisions.cpu_millicores(quantity)


@pytest.mark.parametrize("quantity", ["", "1GB", "0", "1.5Gi", "lots"])
def test_bad_memory_quantities_name_the_fix(quantity: str) -> None:
    with pytest.raises(ValueError, match=r"256Mi or 1Gi"):
        decisions.memory_bytes(quantity)


def test_resources_require_requests_within_limits() -> None:
    resources = Resources("250m", "1", "256Mi", "512Mi")
    assert resources.requests == {"cpu": "250m", "memory": "256Mi"}
    assert resources.limits == {"cpu": "1", "memory": "512Mi"}
    with pytest.raises(ValueError, match="cpuRequest 2 exceeds cpuLimit 1"):
        Resources("2", "1", "256Mi", "512Mi")
    with pytest.raises(ValueError, match="memoryRequest 1Gi exceeds memoryLimit 512Mi"):
        Resources("100m", "1", "1Gi", "512Mi")


# ---------------------------------------------------------------------- canary


@pytest.mark.parametrize(
    ("image", "weight", "expected"),
    [
        (None, 0, CanaryPlan(enabled=False, weight=0, min_replicas=0)),
        ("img:2", 0, CanaryPlan(enabled=True, weight=0, min_replicas=1)),
        ("img:2", 10, CanaryPlan(enabled=True, weight=10, min_replicas=1)),
        ("img:2", 50, CanaryPlan(enabled=True, weight=50, min_replicas=2)),
        ("img:2", 100, CanaryPlan(enabled=True, weight=100, min_replicas=3)),
    ],
)
def test_canary_plan_for_each_weight(image: str | None, weight: int, expected: CanaryPlan) -> None:
    assert decisions.canary_plan(image, weight, Scaling(3, 20)) == expected


@pytest.mark.parametrize(
    ("image", "weight", "message"),
    [
        (None, 10, "canaryImage is not set"),
        ("img:2", 101, "integer from 0 to 100"),
        ("img:2", -1, "integer from 0 to 100"),
        ("img:2", 12.5, "integer from 0 to 100"),
        ("img:2", True, "integer from 0 to 100"),
    ],
)
def test_canary_plan_rejects_bad_input(image: str | None, weight: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decisions.canary_plan(image, weight, Scaling(2, 4))  # type: ignore[arg-type]


# -------------------------------------------------------------------- checksum


def test_rollout_checksum_changes_with_config_and_each_secret() -> None:
    base = decisions.rollout_checksum("k", "a: 1\n", {"redis-url": "r1", "admin-key": "a1"})
    assert len(base) == 64 and int(base, 16) >= 0
    # Order of the secret map does not matter; every value and the config do.
    assert base == decisions.rollout_checksum("k", "a: 1\n", {"admin-key": "a1", "redis-url": "r1"})
    assert base != decisions.rollout_checksum("k", "a: 2\n", {"redis-url": "r1", "admin-key": "a1"})
    assert base != decisions.rollout_checksum("k", "a: 1\n", {"redis-url": "r2", "admin-key": "a1"})
    assert base != decisions.rollout_checksum(
        "k2", "a: 1\n", {"redis-url": "r1", "admin-key": "a1"}
    )
    # Keyed: the digest is not a plain hash of the secret material.
    assert "r1" not in base
    with pytest.raises(ValueError, match="key is empty"):
        decisions.rollout_checksum("", "", {})


# ---------------------------------------------------------- object fragments


def test_secret_keys_for_provider_variables() -> None:
    assert secret_key_for("OPENAI_API_KEY") == "openai-api-key"
    for bad in ("openai_api_key", "AIGW_ADMIN_KEY", "1KEY", ""):
        with pytest.raises(ValueError, match="not allowed"):
            secret_key_for(bad)


def test_topology_spread_is_hard_across_zones_outside_dev() -> None:
    labels = {"app.kubernetes.io/name": "ai-gateway"}
    prod = {c.topology_key: c.when_unsatisfiable for c in topology_spread(Environment.PROD, labels)}
    dev = {c.topology_key: c.when_unsatisfiable for c in topology_spread(Environment.DEV, labels)}
    assert prod == {
        "topology.kubernetes.io/zone": "DoNotSchedule",
        "kubernetes.io/hostname": "ScheduleAnyway",
    }
    assert dev["topology.kubernetes.io/zone"] == "ScheduleAnyway"


@pytest.mark.parametrize(
    ("cidrs", "redis_port", "message"),
    [([], 6379, "data_store_cidrs is empty"), (["10.0.0.0/16"], 70000, "not a TCP port")],
)
def test_network_policy_egress_rejects_bad_input(
    cidrs: list[str], redis_port: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        network_policy_egress(cidrs, redis_port, 5432)


def test_namespace_labels() -> None:
    assert namespace_labels("restricted")["pod-security.kubernetes.io/warn"] == "restricted"
    assert namespace_labels("baseline", "restricted")["pod-security.kubernetes.io/audit"] == (
        "restricted"
    )
    with pytest.raises(ValueError, match="does not exist"):
        namespace_labels("strict")


def test_identity_subjects_match_the_objects() -> None:
    from infra.k8s.edge import ROUTE53_SOLVER_SUBJECT
    from infra.k8s.gateway import service_account_subject

    assert service_account_subject() == "system:serviceaccount:ai-gateway:ai-gateway"
    assert ROUTE53_SOLVER_SUBJECT == "system:serviceaccount:cert-manager:cert-manager-route53"
    with pytest.raises(ValueError, match="not a valid Kubernetes name"):
        service_account_subject("AI_Gateway")
