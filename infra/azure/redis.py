"""Azure Managed Redis: a ``redisenterprise`` cluster and its database, private and TLS-only.

Azure Managed Redis replaces Azure Cache for Redis (``redis.Redis``), which
Microsoft retires (Basic/Standard/Premium on 2028-09-30, Enterprise on
2027-03-31); this project never creates the retiring type.

* TLS only (``clientProtocol: Encrypted``) on port 10000, minimum TLS 1.2.
* Public network access disabled; clients reach it through a private
  endpoint in the endpoint subnet, resolved by the ``privatelink.redis.azure.net``
  private DNS zone linked to the VNet.
* High availability (a replica in another zone) in staging and prod; AOF
  persistence in prod.
* ``EnterpriseCluster`` clustering: one endpoint that any Redis client can
  use (no cluster-aware client needed).
* No access keys (``accessKeysAuthentication: Disabled``): clients authenticate
  with Microsoft Entra tokens only. The gateway's identity gets the database's
  ``default`` access policy (:class:`infra.azure.identity.GatewayIdentity`) and
  connects with ``AIGW_REDIS_AUTH=entra``: ``AUTH <object id> <token>``, renewed
  on live connections before expiry ("Use Microsoft Entra for cache
  authentication", Microsoft Learn). So no key exists in the cluster or the state.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random
from pulumi_azure_native import network, privatedns, redisenterprise

from infra.config import StackConfig
from infra.decisions.azure import azure_name, redis_sku, with_suffix

REDIS_PORT = 10000
PRIVATE_DNS_ZONE = "privatelink.redis.azure.net"
PRIVATE_LINK_GROUP = "redisEnterprise"
DATABASE_NAME = "default"
"""Azure Managed Redis clusters hold exactly one database, which must be named ``default``."""
_SUFFIX_BYTES = 3


@dataclass
class RedisArgs:
    """Inputs of :class:`Redis`."""

    resource_group_name: pulumi.Input[str]
    location: str
    name_prefix: str
    sku: str
    """An Azure Managed Redis SKU, for example ``Balanced_B1`` (checked by :func:`redis_sku`)."""
    high_availability: bool
    persistence: bool
    vnet_id: pulumi.Input[str]
    endpoint_subnet_id: pulumi.Input[str]
    protect: bool = False

    @classmethod
    def from_config(
        cls,
        config: StackConfig,
        *,
        resource_group_name: pulumi.Input[str],
        location: str,
        vnet_id: pulumi.Input[str],
        endpoint_subnet_id: pulumi.Input[str],
        protect: bool,
    ) -> RedisArgs:
        """The args from the stack's ``azure`` section; the keywords wire in other components."""
        s = config.azure
        return cls(
            name_prefix=config.name_prefix,
            sku=s.redis_sku,
            high_availability=s.high_availability,
            persistence=s.redis_persistence,
            resource_group_name=resource_group_name,
            location=location,
            vnet_id=vnet_id,
            endpoint_subnet_id=endpoint_subnet_id,
            protect=protect,
        )


class Redis(pulumi.ComponentResource):
    """Azure Managed Redis behind a private endpoint (``ai-gateway:azure:Redis``).

    Outputs: ``host_name``, ``url`` (``rediss://<host>:10000``: no key; clients use Entra
    tokens), ``cluster_name`` and ``database_name`` (for access policy assignments).
    """

    host_name: pulumi.Output[str]
    cluster_name: pulumi.Output[str]
    database_name: pulumi.Output[str]
    url: pulumi.Output[str]

    def __init__(self, name: str, args: RedisArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-gateway:azure:Redis", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        rg = args.resource_group_name
        sku = redis_sku(args.sku)
        # Host names are global (<name>.<region>.redis.azure.net): a random
        # suffix keeps two organisations' stacks of this project apart.
        base = azure_name(
            "redis_enterprise", "redis", args.name_prefix, reserve=_SUFFIX_BYTES * 2 + 1
        )
        suffix = random.RandomId(f"{name}-suffix", byte_length=_SUFFIX_BYTES, opts=child)

        cache = redisenterprise.RedisEnterprise(
            f"{name}-cluster",
            cluster_name=suffix.hex.apply(lambda h: with_suffix("redis_enterprise", base, h)),
            resource_group_name=rg,
            location=args.location,
            sku=redisenterprise.SkuArgs(name=redisenterprise.SkuName(sku)),
            minimum_tls_version=redisenterprise.TlsVersion.TLS_VERSION_1_2,
            public_network_access=redisenterprise.PublicNetworkAccess.DISABLED,
            high_availability=(
                redisenterprise.HighAvailability.ENABLED
                if args.high_availability
                else redisenterprise.HighAvailability.DISABLED
            ),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        database = redisenterprise.Database(
            f"{name}-database",
            database_name=DATABASE_NAME,
            cluster_name=cache.name,
            resource_group_name=rg,
            client_protocol=redisenterprise.Protocol.ENCRYPTED,
            port=REDIS_PORT,
            clustering_policy=redisenterprise.ClusteringPolicy.ENTERPRISE_CLUSTER,
            # Only keys with a TTL (cache entries, rate-limit windows) may be
            # evicted under memory pressure; budget ledgers carry none.
            eviction_policy=redisenterprise.EvictionPolicy.VOLATILE_LRU,
            # Entra only: a key would be a long-lived secret next to the workload identity.
            access_keys_authentication=redisenterprise.AccessKeysAuthentication.DISABLED,
            persistence=(
                redisenterprise.PersistenceArgs(
                    aof_enabled=True, aof_frequency=redisenterprise.AofFrequency.AOF_FREQUENCY_1S
                )
                if args.persistence
                else redisenterprise.PersistenceArgs(aof_enabled=False, rdb_enabled=False)
            ),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )

        zone = privatedns.PrivateZone(
            f"{name}-dns",
            private_zone_name=PRIVATE_DNS_ZONE,
            resource_group_name=rg,
            location="global",
            opts=child,
        )
        privatedns.VirtualNetworkLink(
            f"{name}-dns-link",
            virtual_network_link_name=azure_name(
                "virtual_network", "link", args.name_prefix, "redis"
            ),
            private_zone_name=zone.name,
            resource_group_name=rg,
            location="global",
            virtual_network=privatedns.SubResourceArgs(id=args.vnet_id),
            registration_enabled=False,
            opts=child,
        )
        endpoint = network.PrivateEndpoint(
            f"{name}-endpoint",
            private_endpoint_name=azure_name("private_endpoint", "pe", args.name_prefix, "redis"),
            resource_group_name=rg,
            location=args.location,
            subnet=network.SubnetArgs(id=args.endpoint_subnet_id),
            private_link_service_connections=[
                network.PrivateLinkServiceConnectionArgs(
                    name="redis",
                    private_link_service_id=cache.id,
                    group_ids=[PRIVATE_LINK_GROUP],
                )
            ],
            opts=child,
        )
        network.PrivateDnsZoneGroup(
            f"{name}-endpoint-dns",
            private_dns_zone_group_name="default",
            private_endpoint_name=endpoint.name,
            resource_group_name=rg,
            private_dns_zone_configs=[
                network.PrivateDnsZoneConfigArgs(name="redis", private_dns_zone_id=zone.id)
            ],
            opts=child,
        )

        self.host_name = cache.host_name
        self.cluster_name = cache.name
        self.database_name = database.name
        # Secret like every cloud's Redis URL (the program's contract), though it holds no key.
        self.url = pulumi.Output.secret(cache.host_name.apply(redis_url))
        self.register_outputs({"hostName": self.host_name, "url": self.url})


def redis_url(host: str) -> str:
    """``rediss://<host>:10000``: TLS, no password (the gateway AUTHs with Entra tokens)."""
    if not host:
        raise ValueError(
            "Azure Managed Redis returned no host name; check that the cluster is ready"
        )
    return f"rediss://{host}:{REDIS_PORT}"
