"""The gateway's process environment, read once (by ``create_app``) and passed down.

Service locations and secrets come from the environment, never from the config
file (under infra that file is a ConfigMap). Every ``AIGW_*`` variable the
serving process reads is a field here, so where the gateway looks is written in
one place, and a test states the environment it wants as an object instead of
patching ``os.environ``. The cloud SDKs' credential chains (``AWS_*``,
``GOOGLE_*``, ``AZURE_*``), proxies (``HTTPS_PROXY``, ``NO_PROXY``) and the
config file's own ``${VAR}`` references keep their standard readers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway_app.observability.tracing import configured as tracing_configured

if TYPE_CHECKING:
    from gateway_app.credentials.redis_entra import EntraRedisCredential


@dataclass(frozen=True, slots=True)
class Environment:
    """What the environment tells one gateway process (secrets are kept out of ``repr``)."""

    #: ``AIGW_REDIS_URL``: shared state (limits, budgets, circuits, cache, sessions); unset
    #: runs everything in-process (one replica).
    redis_url: str | None = field(default=None, repr=False)
    #: ``AIGW_REDIS_CA_FILE``: the CA that signed the Redis server's certificate (rediss://).
    redis_ca_file: str | None = None
    #: ``AIGW_REDIS_AUTH``: ``entra`` authenticates to Redis (Azure Managed Redis) with the
    #: pod's Microsoft Entra token instead of a password in the URL.
    redis_auth: str | None = None
    #: ``AIGW_DATABASE_URL``: governance's PostgreSQL; unset uses embedded SQLite.
    database_url: str | None = field(default=None, repr=False)
    #: ``AIGW_DATABASE_CA_FILE``: the CA of the PostgreSQL server's certificate.
    database_ca_file: str | None = None
    #: ``AIGW_MIGRATION_DATABASE_URL``: the schema owner, for ``migrate`` only.
    migration_database_url: str | None = field(default=None, repr=False)
    #: ``AIGW_MIGRATION_SECRET``: where the schema owner's credential is kept instead (a
    #: secret in the cloud's secret store: :mod:`gateway_app.credentials.database`).
    migration_secret: str | None = None
    #: ``AIGW_ADMIN_KEY``: the admin API's shared key; set, it also turns governance on.
    admin_key: str | None = field(default=None, repr=False)
    #: ``AIGW_KEY_HASH_SECRET``: the HMAC secret virtual keys are stored under.
    key_hash_secret: str | None = field(default=None, repr=False)
    #: ``AIGW_CLOUD``: which cloud this gateway runs in (``aws``, ``azure``, ``gcp``): its
    #: name in the global governance plane (``governance.global``).
    cloud: str | None = None
    #: ``AIGW_UPSTREAM_CLIENT``: ``raw`` (the default) or ``aiohttp``.
    upstream_client: str = "raw"
    #: The standard ``OTEL_*`` variables ask for trace export.
    tracing: bool = False

    def redis_credential(self) -> EntraRedisCredential | None:
        """The token credential ``AIGW_REDIS_AUTH`` asks for (None: the URL's password)."""
        from gateway_app.credentials.redis_entra import redis_credential

        return redis_credential(self.redis_auth, self.redis_url)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Environment:
        """Read the process environment (or ``environ``); an empty value counts as unset."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            return env.get(name) or None

        return cls(
            redis_url=get("AIGW_REDIS_URL"),
            redis_ca_file=get("AIGW_REDIS_CA_FILE"),
            redis_auth=get("AIGW_REDIS_AUTH"),
            database_url=get("AIGW_DATABASE_URL"),
            database_ca_file=get("AIGW_DATABASE_CA_FILE"),
            migration_database_url=get("AIGW_MIGRATION_DATABASE_URL"),
            migration_secret=get("AIGW_MIGRATION_SECRET"),
            admin_key=get("AIGW_ADMIN_KEY"),
            key_hash_secret=get("AIGW_KEY_HASH_SECRET"),
            cloud=get("AIGW_CLOUD"),
            upstream_client=get("AIGW_UPSTREAM_CLIENT") or "raw",
            tracing=tracing_configured(env),
        )
