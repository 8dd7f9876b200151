"""Fakes for pulumi-aws: ARNs, ids and the data sources the program reads."""

from __future__ import annotations

from typing import Any

from infra.offline.fakes import FakeContext, fake_hex, function, generic, resource


@generic("aws")
def _aws_generic(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    # aws:ec2/vpc:Vpc -> service ec2, kind vpc
    service, kind = token.split(":")[1].split("/")
    resource_id = f"{kind[:4].lower()}-{fake_hex(token, name)}"
    return {
        "id": resource_id,
        "arn": f"arn:aws:{service}:{ctx.aws_region}:{ctx.aws_account_id}:{kind}/{resource_id}",
        "tagsAll": inputs.get("tags") or {},
    }


@function("aws:index/getAvailabilityZones:getAvailabilityZones")
def _azs(ctx: FakeContext, args: dict[str, Any]) -> dict[str, Any]:
    letters = "abcdef"
    return {
        "id": ctx.aws_region,
        "names": [f"{ctx.aws_region}{c}" for c in letters],
        "zoneIds": [f"use1-az{i + 1}" for i in range(len(letters))],
        "groupNames": [ctx.aws_region] * len(letters),
        "state": "available",
    }


@function("aws:index/getCallerIdentity:getCallerIdentity")
def _caller(ctx: FakeContext, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": ctx.aws_account_id,
        "accountId": ctx.aws_account_id,
        "arn": f"arn:aws:iam::{ctx.aws_account_id}:role/deployer",
        "userId": "AROAOFFLINEDEPLOYER:session",
    }


@function("aws:index/getRegion:getRegion")
def _region(ctx: FakeContext, args: dict[str, Any]) -> dict[str, Any]:
    region = args.get("name") or args.get("region") or ctx.aws_region
    return {
        "id": region,
        "name": region,
        "region": region,
        "endpoint": f"ec2.{region}.amazonaws.com",
        "description": region,
    }


@function("aws:index/getPartition:getPartition")
def _partition(ctx: FakeContext, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "aws",
        "partition": "aws",
        "dnsSuffix": "amazonaws.com",
        "reverseDnsPrefix": "com.amazonaws",
    }


# ---------------------------------------------------------------------------
# Global layer (infra/global_lb.py): Route 53, CloudWatch alarms, SNS.
# Kept as one block at the end of the file so it merges cleanly.
# ---------------------------------------------------------------------------


@resource("aws:route53/zone:Zone")
def _route53_zone(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    zone_id = "Z" + fake_hex(token, name, length=20).upper()
    digits = int(fake_hex(token, name, "ns", length=6), 16)
    return {
        "id": zone_id,
        "zoneId": zone_id,
        "arn": f"arn:aws:route53:::hostedzone/{zone_id}",
        "nameServers": [
            f"ns-{digits % 512}.awsdns-{digits % 64:02d}.com",
            f"ns-{512 + digits % 512}.awsdns-{digits % 64:02d}.net",
            f"ns-{1024 + digits % 512}.awsdns-{digits % 64:02d}.org",
            f"ns-{1536 + digits % 512}.awsdns-{digits % 64:02d}.co.uk",
        ],
        "primaryNameServer": f"ns-{digits % 512}.awsdns-{digits % 64:02d}.com",
    }


@resource("aws:route53/record:Record")
def _route53_record(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    fqdn = str(inputs.get("name", "")).rstrip(".")
    parts = [inputs.get("zoneId"), fqdn, inputs.get("type")]
    if inputs.get("setIdentifier"):
        parts.append(inputs["setIdentifier"])
    return {"id": "_".join(str(p) for p in parts), "fqdn": fqdn}


@resource("aws:route53/healthCheck:HealthCheck")
def _route53_health_check(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    h = fake_hex(token, name, length=32)
    check_id = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"
    return {"id": check_id, "arn": f"arn:aws:route53:::healthcheck/{check_id}"}


@resource("aws:cloudwatch/metricAlarm:MetricAlarm")
def _metric_alarm(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    alarm_name = inputs.get("name") or name
    return {
        "id": alarm_name,
        "arn": f"arn:aws:cloudwatch:{ctx.aws_region}:{ctx.aws_account_id}:alarm:{alarm_name}",
    }


@resource("aws:sns/topic:Topic")
def _sns_topic(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    arn = f"arn:aws:sns:{ctx.aws_region}:{ctx.aws_account_id}:{inputs.get('name') or name}"
    return {"id": arn, "arn": arn, "owner": ctx.aws_account_id}


@resource("aws:sns/topicSubscription:TopicSubscription")
def _sns_subscription(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    arn = f"{inputs.get('topic')}:{fake_hex(token, name, length=32)}"
    # Email subscriptions stay pending until the recipient confirms.
    return {"id": arn, "arn": arn, "pendingConfirmation": inputs.get("protocol") == "email"}
