"""Realistic fake outputs for the offline engine, one module per provider.

A cloud returns computed outputs (ids, ARNs, endpoints, certificates) that the
program feeds into later resources through ``apply``. Under mocks those outputs
must look real, or every ``apply`` downstream runs on ``None`` and proves
nothing. Each provider module registers:

* ``@resource("aws:ec2/vpc:Vpc")``: a function from the resource's inputs to its
  outputs (merged over the inputs);
* ``@function("aws:index/getAvailabilityZones:getAvailabilityZones")``: a data
  source's result.

Resources without a specific fake get the provider's generic outputs (``id``
and ``arn`` on AWS, an ARM ``id`` on Azure, ``selfLink`` on GCP). A data source
without a fake is an error naming the token, so a new one cannot silently
return nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ResourceFake = Callable[["FakeContext", str, str, dict[str, Any]], dict[str, Any]]
"""(context, type token, logical name, inputs) -> outputs."""
FunctionFake = Callable[["FakeContext", dict[str, Any]], dict[str, Any]]

RESOURCES: dict[str, ResourceFake] = {}
FUNCTIONS: dict[str, FunctionFake] = {}
GENERIC: dict[str, ResourceFake] = {}


@dataclass(frozen=True)
class FakeContext:
    """What fakes may read: the stack, the project and the clouds' fake identities."""

    project: str
    stack: str
    aws_account_id: str = "123456789012"
    aws_region: str = "us-east-1"
    azure_subscription_id: str = "00000000-0000-4000-8000-000000000001"
    azure_tenant_id: str = "00000000-0000-4000-8000-0000000000aa"
    gcp_project: str = "offline-project"
    gcp_region: str = "us-central1"


def resource(*tokens: str) -> Callable[[ResourceFake], ResourceFake]:
    """Register a fake for the outputs of one or more resource types."""

    def register(fn: ResourceFake) -> ResourceFake:
        for token in tokens:
            RESOURCES[token] = fn
        return fn

    return register


def function(*tokens: str) -> Callable[[FunctionFake], FunctionFake]:
    """Register a fake for one or more data sources (invokes)."""

    def register(fn: FunctionFake) -> FunctionFake:
        for token in tokens:
            FUNCTIONS[token] = fn
        return fn

    return register


def generic(package: str) -> Callable[[ResourceFake], ResourceFake]:
    """Register the fallback outputs of every resource of a package (``aws``, ``gcp``...)."""

    def register(fn: ResourceFake) -> ResourceFake:
        GENERIC[package] = fn
        return fn

    return register


def fake_hex(*parts: str, length: int = 17) -> str:
    """A stable hex id derived from ``parts``: the same plan gives the same ids.

    Any length: past one SHA-256 digest (64 digits) further blocks are chained,
    so long fake secrets (a 64-character token) are as well-formed as short ones.
    """
    seed = "/".join(parts).encode()
    digest = hashlib.sha256(seed).hexdigest()
    block = 1
    while len(digest) < length:
        digest += hashlib.sha256(seed + b"#" + str(block).encode()).hexdigest()
        block += 1
    return digest[:length]


def load_all() -> None:
    """Import every provider module so its fakes are registered."""
    from infra.offline.fakes import (  # noqa: F401
        aws,
        azure,
        docker_build,
        gcp,
        kubernetes,
        random,
    )
