"""Fakes for pulumi-aws: ARNs, ids and the data sources the program reads."""

from __future__ import annotations

from typing import Any

from infra.offline.fakes import FakeContext, fake_hex, function, generic


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
