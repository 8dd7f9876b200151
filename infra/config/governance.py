"""``ai-gateway:governance``: one governance plane across the enabled clouds (issue 29).

The plane itself (a home cloud owning every write of keys and limits, the others
following its change feed, budget leases, audit shipped to the home) is the
gateway's (docs/decisions/0001-global-governance-plane.md). This section turns
it on and says what the program must build for it: on every cloud an internal
channel (its own load balancer, admitting only the other clouds' NAT egress
addresses; TLS at the edge; workload-identity tokens, never a shared secret) and
the gateway's ``governance.global`` section, filled from the clouds' outputs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field, ValidationError, field_validator

from infra.config.base import _cidr, _Model
from infra.contracts import Cloud

RESERVED_SETTINGS = {
    "cloud": "set by the program on every cluster",
    "home": "use ai-gateway:governance.home",
    "peers": "filled by the program from the clouds' outputs",
    "port": "use ai-gateway:governance.port",
    "audience": "the program projects the token with the audience aigw-governance",
    "token_file": "the program mounts the projected token",
}
"""Keys of the gateway's ``governance.global`` the program owns (refused in ``settings``)."""

_LABEL = re.compile(r"[a-z]([a-z0-9-]{0,40}[a-z0-9])?")


class GovernanceConfig(_Model):
    """One governance plane across the enabled clouds (``ai-gateway:governance``).

    Off for a single cloud (there is nothing to share). On by default with two
    or more clouds: behind one global hostname, separate clouds are separate
    islands (a key created in one is unknown in the others, a budget is spent
    once per cloud), which is the defect the plane exists to remove.
    """

    enabled: bool | None = Field(
        default=None,
        description=(
            "Run one governance plane across the enabled clouds (keys, limits and budgets "
            "everywhere; see docs/explanation/global-governance.md). Default: on when two or "
            "more clouds are enabled, off for one (true with one cloud is refused)."
        ),
    )
    home: Cloud | None = Field(
        default=None,
        description=(
            "The cloud that owns every write of keys, limits and projects (the others follow "
            "its change feed and forward admin calls to it). Must be enabled. Default: the "
            "first enabled of aws, azure, gcp. Moving it is a failover: raise "
            "settings.epoch with it."
        ),
    )
    port: int = Field(
        default=8443,
        ge=1024,
        le=65535,
        description=(
            "The gateway pods' internal listener (`governance.global.port`): only "
            "`/internal/v1/...` is served there, and only the channel's load balancer reaches "
            "it. The channel itself listens on 443 (TLS at the edge)."
        ),
    )
    hostname: str = Field(
        default="governance",
        description=(
            "First label of each cloud's channel name: `<hostname>-<cloud>.<dns.domain>` "
            "(for example governance-aws.ai.example.com), in the global zone, with its own "
            "certificate."
        ),
    )
    extra_source_cidrs: list[str] = Field(
        default_factory=list,
        description=(
            "Networks admitted to every cloud's channel besides the other clouds' NAT egress "
            "addresses (which the program takes from their outputs), for example a break-glass "
            "bastion. The whole internet is refused."
        ),
    )
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Knobs of the gateway's `governance.global` (snake_case, checked by the gateway's "
            "own model), for example {lease_fraction: 0.02, epoch: 2, read_your_writes_s: 2}; "
            "see the gateway's configuration reference. cloud, home, peers, port, audience and "
            "token_file are the program's."
        ),
    )

    @field_validator("hostname")
    @classmethod
    def _hostname_label(cls, value: str) -> str:
        if not _LABEL.fullmatch(value):
            raise ValueError(
                f"{value!r} cannot be a DNS label; use lowercase letters, digits and hyphens, "
                "starting with a letter (for example governance)"
            )
        return value

    @field_validator("extra_source_cidrs")
    @classmethod
    def _not_the_internet(cls, values: list[str]) -> list[str]:
        from policies.cidrs import exposure

        cleaned = [_cidr(value) for value in values]
        found = exposure(cleaned)
        if found.is_world:
            raise ValueError(
                f"{cleaned} open the governance channel to the whole internet "
                f"({found.describe()}); list the networks that must reach it, for example "
                "203.0.113.10/32"
            )
        return cleaned

    @field_validator("settings")
    @classmethod
    def _gateway_settings(cls, values: dict[str, Any]) -> dict[str, Any]:
        for key in values:
            if key in RESERVED_SETTINGS:
                raise ValueError(f"{key!r} cannot be set here: {RESERVED_SETTINGS[key]}")
        from gateway_app.config.governance import GlobalConfig

        # The gateway's own model judges the knobs (bounds, unknown keys), as it will at start.
        probe = {"home": "a", "peers": {"a": {"url": "https://a", "issuer": "https://a"}}}
        try:
            GlobalConfig.model_validate({**probe, **values})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ValueError(
                f"{where}: {first['msg']} (got {first.get('input')!r}); see "
                "governance.global in the gateway's configuration reference"
            ) from None
        return values

    def active(self, clouds: Sequence[Cloud]) -> bool:
        """Whether the plane runs for these enabled clouds (the default: two or more)."""
        return self.enabled if self.enabled is not None else len(clouds) >= 2

    def home_cloud(self, clouds: Sequence[Cloud]) -> Cloud:
        """The home cloud: ``home``, else the first enabled cloud."""
        return self.home if self.home is not None else clouds[0]

    def problems(self, clouds: Sequence[Cloud]) -> list[tuple[str, str]]:
        """``(key, message)`` for settings that contradict the enabled clouds."""
        found: list[tuple[str, str]] = []
        if self.enabled and len(clouds) < 2:
            found.append(
                (
                    "enabled",
                    "is true but only one cloud is enabled; a governance plane joins two or "
                    "more clouds, so enable another cloud or remove governance.enabled",
                )
            )
        if self.home is not None and self.home not in clouds:
            found.append(
                (
                    "home",
                    f"{self.home.value!r} is not an enabled cloud; use one of "
                    f"{', '.join(c.value for c in clouds)}",
                )
            )
        return found
