"""The enums every part of the program shares: environment, cloud, DNS provider, routing.

The stack config parses into them; components, decisions and the global layer
take them. They import nothing of ``infra``.
"""

from __future__ import annotations

from enum import StrEnum


class Environment(StrEnum):
    """The deployment environment; it selects the defaults of every section."""

    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


class Cloud(StrEnum):
    """The clouds the program can deploy to."""

    AWS = "aws"
    AZURE = "azure"
    GCP = "gcp"


class RoutingPolicy(StrEnum):
    """How the global hostname spreads traffic across the clouds."""

    LATENCY = "latency"
    GEO = "geo"
    WEIGHTED = "weighted"


class DnsProvider(StrEnum):
    """The cloud whose DNS service hosts the global name."""

    ROUTE53 = "route53"
    AZURE = "azure"
    GCP = "gcp"

    @classmethod
    def of(cls, cloud: Cloud) -> DnsProvider:
        """A cloud's own DNS service."""
        return {Cloud.AWS: cls.ROUTE53, Cloud.AZURE: cls.AZURE, Cloud.GCP: cls.GCP}[cloud]
