"""Memorystore for Redis: private service access, TLS with server authentication, AUTH.

The instance takes its private IP from the network's peered range, so it must
wait for the service networking connection. Clients connect with
``rediss://:<auth>@<host>:6378`` and must trust the instance's server CA,
which this component exports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pulumi
import pulumi_gcp as gcp

from infra.config import StackConfig
from infra.decisions.gcp import resource_name

TLS_PORT = 6378
"""Memorystore's port under ``SERVER_AUTHENTICATION`` transit encryption."""


@dataclass
class RedisArgs:
    """Inputs of :class:`Redis`.

    ``high_availability`` selects the STANDARD_HA tier (a replica in another
    zone with automatic failover); ``persistence`` turns on hourly RDB
    snapshots. ``reserved_ip_range`` is the name of the private service range.
    """

    name_prefix: str
    region: str
    network_id: pulumi.Input[str]
    reserved_ip_range: pulumi.Input[str]
    service_connection: pulumi.Resource
    memory_gb: int
    redis_version: str
    high_availability: bool
    persistence: bool
    maintenance_day: str
    maintenance_hour_utc: int
    kms_key_id: pulumi.Input[str] | None = None
    """Cloud KMS key encrypting the instance's data at rest (CMEK); Google-managed when None."""
    apis: Sequence[pulumi.Resource] = field(default_factory=list)

    @classmethod
    def from_config(
        cls,
        config: StackConfig,
        *,
        network_id: pulumi.Input[str],
        reserved_ip_range: pulumi.Input[str],
        service_connection: pulumi.Resource,
        kms_key_id: pulumi.Input[str] | None,
        apis: Sequence[pulumi.Resource],
    ) -> RedisArgs:
        """The args from the stack's ``gcp`` section; the keywords wire in other components."""
        s = config.gcp
        return cls(
            name_prefix=config.name_prefix,
            region=s.region,
            memory_gb=s.redis_memory_gb,
            redis_version=s.redis_version,
            high_availability=s.high_availability,
            persistence=s.redis_persistence,
            maintenance_day=s.maintenance_day,
            maintenance_hour_utc=s.maintenance_hour_utc,
            network_id=network_id,
            reserved_ip_range=reserved_ip_range,
            service_connection=service_connection,
            kms_key_id=kms_key_id,
            apis=apis,
        )


def redis_tier(high_availability: bool) -> str:
    """``STANDARD_HA`` (replicated across zones) when highly available, else ``BASIC``."""
    return "STANDARD_HA" if high_availability else "BASIC"


def redis_url(auth_string: str, host: str, port: int) -> str:
    """``rediss://:<auth>@<host>:<port>``: TLS, AUTH with the password only (no ACL user)."""
    if not auth_string or not host:
        raise ValueError(
            "the Redis URL needs the AUTH string and the host; enable AUTH on the instance"
        )
    if not 0 < int(port) < 65536:
        raise ValueError(f"port {port} is not a TCP port; Memorystore with TLS listens on 6378")
    return f"rediss://:{quote(auth_string, safe='')}@{host}:{int(port)}"


def ca_bundle(certs: Sequence[Any] | None) -> str:
    """Every server CA of the instance as one PEM bundle, in the order Memorystore lists them.

    "Certificate authority rotation" (Memorystore for Redis docs): during a
    rotation the instance has two server CAs and clients must trust both.
    """
    pems = []
    for cert in certs or ():
        pem = cert.get("cert") if isinstance(cert, dict) else getattr(cert, "cert", None)
        if pem and pem.strip() not in pems:
            pems.append(pem.strip())
    return "\n".join(pems) + ("\n" if pems else "")


class Redis(pulumi.ComponentResource):
    """One Memorystore for Redis instance, reachable only from the VPC, TLS and AUTH on.

    Outputs: ``instance`` (the resource), ``host``, ``port``, ``url`` (secret)
    and ``ca_certificate`` (PEM of the server CA the gateway must trust).
    """

    def __init__(
        self, name: str, args: RedisArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:gcp:Redis", name, None, opts)
        persistence = (
            gcp.redis.InstancePersistenceConfigArgs(
                persistence_mode="RDB", rdb_snapshot_period="ONE_HOUR"
            )
            if args.persistence
            else gcp.redis.InstancePersistenceConfigArgs(persistence_mode="DISABLED")
        )
        self.instance = gcp.redis.Instance(
            "redis",
            name=resource_name(args.name_prefix, "redis", "redis_instance"),
            display_name=f"{args.name_prefix} gateway cache and limits",
            region=args.region,
            tier=redis_tier(args.high_availability),
            memory_size_gb=args.memory_gb,
            redis_version=args.redis_version,
            authorized_network=args.network_id,
            connect_mode="PRIVATE_SERVICE_ACCESS",
            reserved_ip_range=args.reserved_ip_range,
            auth_enabled=True,
            transit_encryption_mode="SERVER_AUTHENTICATION",
            persistence_config=persistence,
            customer_managed_key=args.kms_key_id,
            maintenance_policy=gcp.redis.InstanceMaintenancePolicyArgs(
                weekly_maintenance_windows=[
                    gcp.redis.InstanceMaintenancePolicyWeeklyMaintenanceWindowArgs(
                        day=args.maintenance_day,
                        start_time=gcp.redis.InstanceMaintenancePolicyWeeklyMaintenanceWindowStartTimeArgs(
                            hours=args.maintenance_hour_utc, minutes=0, seconds=0, nanos=0
                        ),
                    )
                ]
            ),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[*args.apis, args.service_connection]
            ),
        )

        self.host = self.instance.host
        self.port = self.instance.port
        self.url: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(
                self.instance.auth_string, self.instance.host, self.instance.port
            ).apply(lambda values: redis_url(values[0], values[1], values[2]))
        )
        # Memorystore lists several server CAs during a rotation; clients must
        # trust all of them, or the rotation breaks every connection.
        self.ca_certificate = self.instance.server_ca_certs.apply(ca_bundle)
        self.register_outputs(
            {
                "host": self.host,
                "port": self.port,
                "url": self.url,
                "caCertificate": self.ca_certificate,
            }
        )
