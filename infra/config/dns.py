"""``ai-gateway:dns``: the global hostname, its health checks and alerts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from infra.config.base import _Model, _SectionError
from infra.contracts import Cloud, DnsProvider, RoutingPolicy

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")


class AlertsConfig(_Model):
    """Where the global health alerts go (``ai-gateway:dns.alerts``); prod must name one.

    ``emails`` work on every DNS cloud (subscribed to the SNS topic, an Azure
    Action Group or Cloud Monitoring email channels the stack creates); the
    other keys name an existing destination on the DNS cloud only.
    """

    emails: list[str] = Field(
        default_factory=list,
        description=(
            "Email addresses that get every health alert of the global name (each confirms "
            "its subscription on Route 53's SNS topic). Works with every dns.provider."
        ),
    )
    sns_topic_arn: str | None = Field(
        default=None,
        description=(
            "Existing SNS topic in us-east-1 the Route 53 alarms notify (dns.provider route53 "
            "only; if encrypted, with a key CloudWatch may use)."
        ),
    )
    action_group_id: str | None = Field(
        default=None,
        description="Existing Azure Monitor Action Group resource id (dns.provider azure only).",
    )
    notification_channels: list[str] = Field(
        default_factory=list,
        description=(
            "Existing Cloud Monitoring notification channels, "
            "projects/<project>/notificationChannels/<id> (dns.provider gcp only)."
        ),
    )

    @field_validator("emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        for email in value:
            if not _EMAIL.fullmatch(email):
                raise ValueError(
                    f"{email!r} is not an email address; list addresses like oncall@example.com"
                )
        return value

    @field_validator("sns_topic_arn")
    @classmethod
    def _topic(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(
            r"arn:aws[a-z-]*:sns:us-east-1:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?", value
        ):
            raise ValueError(
                f"{value!r} is not an SNS topic ARN in us-east-1; CloudWatch alarms on Route 53 "
                "health checks live in us-east-1 and can only notify a topic there (for "
                "example arn:aws:sns:us-east-1:123456789012:gateway-alarms)"
            )
        return value

    @field_validator("action_group_id")
    @classmethod
    def _action_group(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(
            r"/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[^/]+/providers/"
            r"(microsoft\.insights|Microsoft\.Insights)/actionGroups/[^/]+",
            value,
        ):
            raise ValueError(
                f"{value!r} is not an Action Group resource id; use /subscriptions/<id>/"
                "resourceGroups/<group>/providers/microsoft.insights/actionGroups/<name>"
            )
        return value

    @field_validator("notification_channels")
    @classmethod
    def _channels(cls, value: list[str]) -> list[str]:
        for channel in value:
            if not re.fullmatch(
                r"projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/notificationChannels/\d+", channel
            ):
                raise ValueError(
                    f"{channel!r} is not a notification channel name; use "
                    "projects/<project>/notificationChannels/<id> (gcloud beta monitoring "
                    "channels list)"
                )
        return value

    @property
    def configured(self) -> bool:
        """Whether any destination is set."""
        return bool(
            self.emails or self.sns_topic_arn or self.action_group_id or self.notification_channels
        )


class HealthCheckConfig(_Model):
    """How the DNS service checks each cloud's gateway (``ai-gateway:dns.healthCheck``)."""

    interval_seconds: int = Field(
        default=30,
        ge=10,
        le=300,
        description=(
            "Seconds between checks from each checker: Route 53 and Traffic Manager take 10 "
            "or 30 (10 costs extra), Cloud DNS at least 30."
        ),
    )
    failure_threshold: int = Field(
        default=3,
        ge=1,
        le=10,
        description=(
            "Consecutive failed checks before a cloud leaves the answer (and passes before it "
            "returns). 3 with 30 s: a dead cloud is out in about 90 s plus the TTL."
        ),
    )


class DnsConfig(_Model):
    """The global hostname in front of every cloud's gateway (``ai-gateway:dns``)."""

    provider: DnsProvider = Field(
        default=None,  # type: ignore[assignment]  # filled in by StackConfig from the clouds
        description=(
            "Which cloud hosts the global name: `route53`, `azure` (Azure DNS + Traffic "
            "Manager) or `gcp` (Cloud DNS routing policies). Default: the enabled cloud's own "
            "DNS in a single-cloud stack, `route53` when several clouds are enabled."
        ),
    )
    domain: str = Field(
        description="The zone the gateway's names live in, for example ai.example.com. Required.",
    )
    hostname: str = Field(
        default="gateway",
        description="Label of the global name: <hostname>.<domain>; each cloud also gets <hostname>-<cloud>.<domain>.",
    )
    hosted_zone_id: str | None = Field(
        default=None,
        description="Existing Route 53 hosted zone id of `domain` (route53 only); when unset the zone is created.",
    )
    routing_policy: RoutingPolicy = Field(
        default=None,  # type: ignore[assignment]  # filled in by StackConfig from the provider
        description=(
            "`latency` sends each client to the lowest-latency healthy cloud (route53, azure; "
            "the default there); `geo` to the cloud nearest the client's location (gcp, the "
            "default there); `weighted` splits by `weights`."
        ),
    )
    weights: dict[Cloud, int] = Field(
        default_factory=dict,
        description=(
            "Per-cloud weight for the weighted policy; 0 drains a cloud. 0-255 on route53, "
            "0-1000 on azure and gcp."
        ),
    )
    ttl_seconds: int = Field(
        default=60,
        ge=1,
        le=3600,
        description="TTL of the global answer: 60 or less lets clients follow a failover quickly.",
    )
    health_check: HealthCheckConfig = Field(
        default_factory=HealthCheckConfig, description="How often each cloud is checked."
    )
    dnssec: bool = Field(
        default=True,
        description=(
            "Sign the zone (every provider supports it for a zone the stack creates); the "
            "`dnssecDsRecord` output is the DS record to add at the registrar."
        ),
    )
    query_logging: bool | None = Field(
        default=None,
        description=(
            "Log every query of the public zone (Route 53 to CloudWatch Logs, Cloud DNS to "
            "Cloud Logging). Default: on where supported; Azure DNS public zones have no query "
            "log, so true is refused there."
        ),
    )
    alerts: AlertsConfig = Field(
        default_factory=AlertsConfig,
        description="Where health alerts go. Required in prod.",
    )

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            moved = {
                "alarmEmails": "alerts.emails",
                "alarmTopicArn": "alerts.snsTopicArn",
                "alarmTopic": "alerts.emails",
            }
            for old, new in moved.items():
                if old in data:
                    raise _SectionError(
                        old, f"{old} moved to ai-gateway:dns.{new}; set that instead"
                    )
        return data

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        value = value.strip().rstrip(".").lower()
        if not re.fullmatch(r"([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}", value):
            raise ValueError(f"{value!r} is not a DNS domain; use a name like ai.example.com")
        return value

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: dict[Cloud, int]) -> dict[Cloud, int]:
        for cloud, weight in value.items():
            if not 0 <= weight <= 1000:
                raise ValueError(
                    f"weight {weight} for {cloud.value} is out of range; use an integer from 0 "
                    "to 1000 (0 to 255 on route53)"
                )
        return value

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, value: str) -> str:
        # Leaves room for the longest per-cloud suffix ("-azure") in one 63-character label.
        if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,55}[a-z0-9])?", value):
            raise ValueError(
                f"{value!r} is not a usable DNS label; use 1-57 lowercase letters, digits and "
                "hyphens, not starting or ending with a hyphen (for example gateway)"
            )
        return value

    @field_validator("hosted_zone_id")
    @classmethod
    def _hosted_zone_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        zone_id = value.strip().removeprefix("/hostedzone/")
        if not re.fullmatch(r"Z[A-Z0-9]{1,31}", zone_id):
            raise ValueError(
                f"{value!r} is not a Route 53 hosted zone id; use the id shown by "
                "`aws route53 list-hosted-zones` (for example Z0123456789ABCDEFGHIJ), or "
                "leave hostedZoneId unset to create the zone"
            )
        return zone_id

    @property
    def logs_queries(self) -> bool:
        """Whether the zone's queries are logged (the default: where the provider can)."""
        if self.query_logging is None:
            return self.provider != DnsProvider.AZURE
        return self.query_logging
