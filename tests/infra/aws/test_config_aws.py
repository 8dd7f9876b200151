"""The AWS section's own config keys: per-environment defaults, overrides, bad values."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ConfigError, parse

BASE: dict[str, Any] = {
    "tags": {"owner": "platform", "costCenter": "cc-1"},
    "dns": {"domain": "ai.example.com", "alerts": {"emails": ["oncall@example.com"]}},
}


def _parse(environment: str, **aws: Any) -> Any:
    section = {"enabled": True, "deployerCidrs": ["203.0.113.0/24"], **aws}
    return parse({**BASE, "environment": environment, "aws": section}).aws


@pytest.mark.parametrize(
    ("environment", "retention", "snapshots", "final_snapshot"),
    [("dev", 30, 0, False), ("staging", 90, 0, False), ("prod", 365, 7, True)],
)
def test_defaults_per_environment(
    environment: str, retention: int, snapshots: int, final_snapshot: bool
) -> None:
    aws = _parse(environment)
    assert aws.log_retention_days == retention
    assert aws.redis_snapshot_retention_days == snapshots
    assert aws.postgres_final_snapshot is final_snapshot
    assert aws.redis_engine == "valkey" and aws.redis_engine_version is None
    assert aws.node_disk_gb == 50
    assert aws.admin_principal_arns == []


def test_stack_values_override_the_defaults() -> None:
    aws = _parse(
        "prod",
        logRetentionDays=731,
        redisEngine="redis",
        redisEngineVersion="7.1",
        postgresFinalSnapshot=False,
        adminPrincipalArns=["arn:aws:iam::123456789012:role/break-glass"],
    )
    assert aws.log_retention_days == 731
    assert (aws.redis_engine, aws.redis_engine_version) == ("redis", "7.1")
    assert aws.postgres_final_snapshot is False
    assert aws.admin_principal_arns == ["arn:aws:iam::123456789012:role/break-glass"]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("vpcCidr", "10.0.0.0/12", "ai-gateway:aws.vpcCidr: 10.0.0.0/12 cannot hold 3 AZs"),
        ("vpcCidr", "10.0.0.0/24", "use a prefix from /16 to /23"),
        ("logRetentionDays", 45, "ai-gateway:aws.logRetentionDays: 45 is not a CloudWatch"),
        ("redisEngine", "memcached", "ai-gateway:aws.redisEngine: memcached is not allowed"),
        ("redisEngineVersion", "latest", "ai-gateway:aws.redisEngineVersion: latest is not"),
        ("redisSnapshotRetentionDays", 40, "use an integer from 0 to 35"),
        ("nodeDiskGb", 10, "ai-gateway:aws.nodeDiskGb: 10 is not allowed"),
        (
            "adminPrincipalArns",
            ["arn:aws:sts::123456789012:assumed-role/admin/me"],
            "not an sts assumed-role ARN",
        ),
    ],
)
def test_bad_values_name_the_key_and_the_fix(key: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        _parse("staging", **{key: value})
    assert message in str(error.value)
