"""What every section of the stack config shares: the namespace and secret settings,
the base model, the error types and the CIDR checks.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)
from pydantic.alias_generators import to_camel

NAMESPACE = "ai-gateway"
"""The Pulumi config namespace of this project (the ``name`` in ``Pulumi.yaml``)."""

PROVIDER_KEYS = "providerKeys"
"""Secret config mapping a provider key's name to its value (``providerKeys.groq``).

Each becomes an entry of the gateway's Kubernetes Secret and the environment
variable ``<NAME>_API_KEY`` of its pods (:func:`provider_key_variable`), which
the gateway config references as ``api_key: "${GROQ_API_KEY}"``."""

OIDC_CLIENT_SECRET = "oidcClientSecret"
"""Secret config: the OpenID Connect client secret of the console's sign-in (people's SSO).

It reaches the gateway's pods as ``AIGW_OIDC_CLIENT_SECRET`` from its Kubernetes Secret on
every cluster; ``gateway.appConfig``'s ``identity.oidc`` names only the client id."""

SECRET_SETTINGS = (PROVIDER_KEYS, "adminKey", OIDC_CLIENT_SECRET)
"""Top-level keys that must be secret (``pulumi config set --secret``). Their values are not part
of :class:`~infra.config.StackConfig` (a plain, loggable model; it keeps only the provider keys' names);
:func:`~infra.config.secret_settings` reads them as secret Outputs."""

LEGACY_PROVIDER_KEYS = {"openaiApiKey": "openai", "anthropicApiKey": "anthropic"}
"""Secret settings replaced by ``providerKeys.<name>``: refused with the command that moves them."""

SECRET_SETTING_DOCS = {
    PROVIDER_KEYS: (
        "Upstream provider API keys by name, any number: `pulumi config set --secret --path "
        "'ai-gateway:providerKeys.groq' VALUE`. Each reaches the gateway's pods as the "
        "environment variable `<NAME>_API_KEY` (`groq` → `GROQ_API_KEY`, `azure-openai` → "
        '`AZURE_OPENAI_API_KEY`), referenced in `gateway.appConfig` as `api_key: "${GROQ_API_KEY}"`. '
        "Names: lowercase letters, digits and hyphens."
    ),
    "adminKey": (
        "The gateway's admin API key (`AIGW_ADMIN_KEY`), the same on every cluster so any "
        "cluster behind the global hostname accepts it. When unset the program generates one "
        "with pulumi_random."
    ),
    OIDC_CLIENT_SECRET: (
        "The client secret of the console's OpenID Connect sign-in (`identity.oidc` in "
        "`gateway.appConfig`, a confidential client): `pulumi config set --secret "
        "ai-gateway:oidcClientSecret VALUE`. It reaches the gateway's pods as "
        "`AIGW_OIDC_CLIENT_SECRET` from their Kubernetes Secret on every cluster; `aigw plan` "
        "refuses an `identity.oidc` section without it (unless `token_auth_method: none`)."
    ),
}
"""What each secret setting is (rendered into docs/reference/configuration.md)."""

# Sections the program reads: the top-level keys of the ``ai-gateway:`` namespace.
# The secret settings are top-level keys too (a secret must be a whole config value).
SECTIONS = (
    "environment",
    "tags",
    "aws",
    "azure",
    "gcp",
    "dns",
    "gateway",
    "governance",
    *SECRET_SETTINGS,
)

_PROVIDER_KEY_NAME = re.compile(r"[a-z][a-z0-9-]{0,40}[a-z0-9]|[a-z]")


def provider_key_variable(name: str) -> str:
    """The environment variable of provider key ``name``: ``groq`` -> ``GROQ_API_KEY``.

    Raises :class:`ValueError` naming the fix for a name that cannot be one.
    """
    if not isinstance(name, str) or not _PROVIDER_KEY_NAME.fullmatch(name) or "--" in name:
        raise ValueError(
            f"{name!r} cannot name a provider key; use lowercase letters, digits and single "
            "hyphens, starting with a letter (for example groq or azure-openai)"
        )
    if name.startswith("aigw"):
        raise ValueError(f"{name!r} is reserved (AIGW_* are the gateway's own variables)")
    return f"{name.upper().replace('-', '_')}_API_KEY"


class ConfigError(ValueError):
    """A stack configuration error; ``str()`` is a message ready for the user.

    ``problems`` holds one line per bad key, each naming the key, the value and
    the fix.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class _Model(BaseModel):
    """Base of every config model: camelCase keys, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_enum_values=False,
    )


def _cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(
            f"{value!r} is not a valid CIDR block ({exc}); use a network address with a "
            "prefix length, for example 10.10.0.0/16"
        ) from None
    return str(network)


def _private_cidr(value: str) -> str:
    cidr = _cidr(value)
    if not ipaddress.ip_network(cidr).is_private:
        raise ValueError(
            f"{value!r} is not a private range; use a block inside 10.0.0.0/8, "
            "172.16.0.0/12 or 192.168.0.0/16"
        )
    return cidr


def _deployer_cidrs(values: list[str]) -> list[str]:
    # The policy pack's own rule (policies/cidrs.py): the union of the ranges is
    # judged, so [0.0.0.0/1, 128.0.0.0/1] is the whole internet just like 0.0.0.0/0.
    from policies.cidrs import exposure

    cleaned = [_cidr(value) for value in values]
    found = exposure(cleaned)
    if found.is_world:
        raise ValueError(
            f"{cleaned} open the cluster API to the whole internet ({found.describe()}); "
            "list the deployer's egress addresses instead (for example 203.0.113.10/32), "
            "or set privateEndpointOnly: true and deploy from inside the network"
        )
    return cleaned


PrivateCidr = Annotated[str, Field(description="A private IPv4 CIDR block")]
NodeCount = Annotated[int, Field(ge=1, le=100)]


class _SectionError(ValueError):
    """A cross-field error that belongs to one key, relative to the model raising it.

    ``more`` holds further ``(key, message)`` pairs found by the same check.
    """

    def __init__(self, key: str, message: str, more: tuple[tuple[str, str], ...] = ()) -> None:
        self.key = key
        self.more = more
        super().__init__(message)

    @classmethod
    def many(cls, problems: list[tuple[str, str]]) -> _SectionError:
        """One error carrying several ``(key, message)`` problems."""
        (key, message), *more = problems
        return cls(key, message, tuple(more))
