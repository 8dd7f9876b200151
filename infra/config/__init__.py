"""The stack configuration, as typed pydantic models.

Everything the Pulumi program reads from ``Pulumi.<stack>.yaml`` lives in the
``ai-gateway:`` namespace and is validated here, once, before any resource is
registered. The stack file uses camelCase keys (``ai-gateway:aws.nodeCount``);
the models use snake_case attributes with camelCase aliases.

Defaults depend on the environment: ``dev`` is the smallest and cheapest
footprint that is still private and encrypted; ``prod`` is highly available and
protected against deletion. Every default can be overridden from the stack file;
the field descriptions (rendered into docs/reference/configuration.md by
``aigw config-reference``) say why each default is what it is.

A bad value raises :class:`ConfigError`, whose message names the full config
key, the bad value and the fix, for example::

    ai-gateway:aws.nodeCount: -1 is not allowed; use an integer from 1 to 100

The package mirrors the stack file's sections (and so the cloud folders):
:mod:`~infra.config.tags`, :mod:`~infra.config.aws`, :mod:`~infra.config.azure`,
:mod:`~infra.config.gcp`, :mod:`~infra.config.dns`, :mod:`~infra.config.gateway`;
:mod:`~infra.config.stack` joins them and checks across sections,
:mod:`~infra.config.loading` reads them from Pulumi, :mod:`~infra.config.errors`
words the messages. :mod:`~infra.config.catalogue` (the gateway's model catalogue
per cluster) and :mod:`~infra.config.capabilities` (what each DNS service can do)
are the checks the stack config runs. The enums come from the ground floor
(:mod:`infra.contracts`) and are re-exported here.
"""

from infra.config.aws import AwsConfig
from infra.config.azure import AzureConfig, routes_to_azure_openai
from infra.config.base import (
    LEGACY_PROVIDER_KEYS,
    NAMESPACE,
    OIDC_CLIENT_SECRET,
    PROVIDER_KEYS,
    SECRET_SETTING_DOCS,
    SECRET_SETTINGS,
    SECTIONS,
    ConfigError,
    NodeCount,
    PrivateCidr,
    provider_key_variable,
)
from infra.config.dns import AlertsConfig, DnsConfig, HealthCheckConfig
from infra.config.gateway import GatewayConfig
from infra.config.gcp import GcpConfig
from infra.config.governance import GovernanceConfig
from infra.config.loading import load, parse, secret_settings
from infra.config.stack import StackConfig
from infra.config.tags import TagsConfig
from infra.contracts import Cloud, DnsProvider, Environment, RoutingPolicy

__all__ = [
    "LEGACY_PROVIDER_KEYS",
    "NAMESPACE",
    "OIDC_CLIENT_SECRET",
    "PROVIDER_KEYS",
    "SECRET_SETTINGS",
    "SECRET_SETTING_DOCS",
    "SECTIONS",
    "AlertsConfig",
    "AwsConfig",
    "AzureConfig",
    "Cloud",
    "ConfigError",
    "DnsConfig",
    "DnsProvider",
    "Environment",
    "GatewayConfig",
    "GcpConfig",
    "GovernanceConfig",
    "HealthCheckConfig",
    "NodeCount",
    "PrivateCidr",
    "RoutingPolicy",
    "StackConfig",
    "TagsConfig",
    "load",
    "parse",
    "provider_key_variable",
    "routes_to_azure_openai",
    "secret_settings",
]
