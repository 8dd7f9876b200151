"""The pure decisions of the AWS footprint, tested directly, bad input included."""

from __future__ import annotations

import ipaddress
from itertools import combinations

import pytest

from infra.aws.cluster import node_ami_type
from infra.aws.footprint import key_policy
from infra.decisions import aws as decisions

# ------------------------------------------------------------------ CIDR split


@pytest.mark.parametrize(
    ("vpc", "zones"),
    [("10.10.0.0/16", 3), ("10.0.0.0/16", 2), ("172.16.0.0/20", 4), ("10.1.0.0/22", 6)],
)
def test_subnets_lie_inside_the_vpc_and_never_overlap(vpc: str, zones: int) -> None:
    layout = decisions.split_vpc_cidr(vpc, zones)
    network = ipaddress.ip_network(vpc)
    subnets = [ipaddress.ip_network(c) for c in (*layout.public, *layout.private, *layout.database)]
    assert len(layout.public) == len(layout.private) == len(layout.database) == zones
    assert all(s.subnet_of(network) for s in subnets)
    assert not any(a.overlaps(b) for a, b in combinations(subnets, 2))
    assert all(s.prefixlen <= 28 for s in subnets)


def test_a_slash_16_over_three_zones_gives_large_private_subnets() -> None:
    layout = decisions.split_vpc_cidr("10.10.0.0/16", 3)
    assert layout.private == ("10.10.0.0/19", "10.10.32.0/19", "10.10.64.0/19")
    assert layout.public == ("10.10.128.0/21", "10.10.136.0/21", "10.10.144.0/21")
    assert layout.database == ("10.10.160.0/21", "10.10.168.0/21", "10.10.176.0/21")


def test_private_subnets_are_the_largest_tier() -> None:
    layout = decisions.split_vpc_cidr("10.10.0.0/16", 3)
    private = ipaddress.ip_network(layout.private[0]).num_addresses
    assert private > ipaddress.ip_network(layout.public[0]).num_addresses
    assert private > ipaddress.ip_network(layout.database[0]).num_addresses


@pytest.mark.parametrize(
    ("vpc", "zones", "message"),
    [
        ("10.0.0.0/8", 3, "ai-gateway:aws.vpcCidr: 10.0.0.0/8 cannot hold 3 AZs"),
        ("10.0.0.0/24", 3, "use a prefix from /16 to /23"),
        ("10.0.0.0/23", 6, "use a prefix from /16 to /22"),
        ("10.0.0.1/16", 3, "ai-gateway:aws.vpcCidr: '10.0.0.1/16' is not an IPv4 network"),
        ("not-a-cidr", 3, "for example 10.10.0.0/16"),
        ("fd00::/48", 3, "is not an IPv4 network"),
        ("10.0.0.0/16", 1, "ai-gateway:aws.availabilityZoneCount: 1 is not allowed"),
        ("10.0.0.0/16", 7, "use an integer from 2 to 6"),
    ],
)
def test_bad_split_input_names_the_key_and_the_fix(vpc: str, zones: int, message: str) -> None:
    with pytest.raises(ValueError, match=None) as error:
        decisions.split_vpc_cidr(vpc, zones)
    assert message in str(error.value)


def test_pick_zones_takes_the_first_sorted_zones() -> None:
    names = ["us-east-1c", "us-east-1a", "us-east-1b", "us-east-1d"]
    assert decisions.pick_zones(names, 3, "us-east-1") == ["us-east-1a", "us-east-1b", "us-east-1c"]


def test_pick_zones_fails_when_the_region_has_too_few() -> None:
    with pytest.raises(ValueError) as error:
        decisions.pick_zones(["ca-west-1a", "ca-west-1b"], 3, "ca-west-1")
    assert "ai-gateway:aws.availabilityZoneCount: 3 AZs requested but ca-west-1 offers 2" in str(
        error.value
    )
    assert "lower availabilityZoneCount" in str(error.value)


# ------------------------------------------------------------------ NAT gateways


@pytest.mark.parametrize(
    ("mode", "zones", "expected"), [("single", 3, 1), ("one-per-az", 3, 3), ("one-per-az", 2, 2)]
)
def test_nat_gateway_count(mode: str, zones: int, expected: int) -> None:
    assert decisions.nat_gateway_count(mode, zones) == expected


def test_nat_gateway_count_rejects_unknown_modes() -> None:
    with pytest.raises(
        ValueError, match=r"ai-gateway:aws.natGateways: 'per-zone'.*single or one-per-az"
    ):
        decisions.nat_gateway_count("per-zone", 3)


def test_each_zone_uses_its_own_nat_when_there_is_one_per_zone() -> None:
    assert [decisions.nat_gateway_for_zone(i, 3) for i in range(3)] == [0, 1, 2]
    assert [decisions.nat_gateway_for_zone(i, 1) for i in range(3)] == [0, 0, 0]
    with pytest.raises(ValueError):
        decisions.nat_gateway_for_zone(0, 0)


# ------------------------------------------------------------------------ names


def test_short_names_are_kept_as_is() -> None:
    assert decisions.aws_name("ai-gateway-prod", "redis", "elasticache-replication-group") == (
        "ai-gateway-prod-redis"
    )


@pytest.mark.parametrize("kind", sorted(decisions.NAME_LIMITS))
def test_long_names_fit_the_limit_and_stay_distinct(kind: str) -> None:
    prefix = "a-very-long-project-name-for-the-enterprise-gateway-platform-" * 5 + "prod"
    one = decisions.aws_name(prefix, "redis-one", kind)
    two = decisions.aws_name(prefix, "redis-two", kind)
    limit = decisions.NAME_LIMITS[kind]
    assert len(one) <= limit and len(two) <= limit
    assert one != two
    assert one == decisions.aws_name(prefix, "redis-one", kind)  # stable across runs
    assert not one.endswith("-") and "--" not in one


def test_elasticache_ids_are_cut_to_40_characters() -> None:
    name = decisions.aws_name(
        "enterprise-ai-gateway-platform-staging", "redis", "elasticache-replication-group"
    )
    assert len(name) == 40
    head, digest = name.rsplit("-", 1)
    assert head == "enterprise-ai-gateway-platform-st"
    assert len(digest) == 6 and int(digest, 16) >= 0


def test_names_must_start_with_a_letter() -> None:
    with pytest.raises(ValueError, match=r"ai-gateway:tags\.project: '1gw-dev-redis'"):
        decisions.aws_name("1gw-dev", "redis", "rds-instance")


def test_unknown_name_kind_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown AWS name kind 's3-bucket'; use one of"):
        decisions.aws_name("gw", "x", "s3-bucket")


# ---------------------------------------------------------------- data stores


def test_redis_topology_per_availability() -> None:
    assert decisions.redis_topology(False) == decisions.RedisTopology(1, False, False)
    assert decisions.redis_topology(True) == decisions.RedisTopology(2, True, True)


def test_redis_engine_version_defaults_per_engine() -> None:
    assert decisions.redis_engine_version("valkey", None) == "8.0"
    assert decisions.redis_engine_version("redis", None) == "7.1"
    assert decisions.redis_engine_version("valkey", "7.2") == "7.2"
    with pytest.raises(ValueError, match=r"ai-gateway:aws\.redisEngine: 'memcached'"):
        decisions.redis_engine_version("memcached", None)


@pytest.mark.parametrize(("version", "family"), [("16", "postgres16"), ("17", "postgres17")])
def test_postgres_family(version: str, family: str) -> None:
    assert decisions.postgres_family(version) == family


@pytest.mark.parametrize("version", ["15", "16.4", "sixteen", "16.x"])
def test_postgres_family_rejects_minor_old_or_bad_versions(version: str) -> None:
    """A minor pin (16.4) is refused: RDS retires minors (see test_provider_rules)."""
    with pytest.raises(ValueError, match=r"ai-gateway:aws.postgresVersion: .* major version"):
        decisions.postgres_family(version)


def test_redis_url_is_tls_with_the_token_escaped() -> None:
    assert decisions.redis_url("master.x.cache.amazonaws.com", 6379, "a/b@c") == (
        "rediss://:a%2Fb%40c@master.x.cache.amazonaws.com:6379"
    )


def test_postgres_dsn_requires_tls() -> None:
    dsn = decisions.postgres_dsn("gateway_admin", "p@ss", "db.example", 5432, "gateway")
    assert dsn == "postgresql://gateway_admin:p%40ss@db.example:5432/gateway?sslmode=require"


# ------------------------------------------------------------------------ EKS


def test_public_endpoint_admits_only_the_deployer_cidrs() -> None:
    assert decisions.endpoint_access(["203.0.113.0/24"], False) == (True, ["203.0.113.0/24"])


@pytest.mark.parametrize(("cidrs", "private_only"), [(["203.0.113.0/24"], True), ([], False)])
def test_public_endpoint_is_off_without_cidrs_or_when_private(
    cidrs: list[str], private_only: bool
) -> None:
    assert decisions.endpoint_access(cidrs, private_only) == (False, [])


def test_public_endpoint_never_admits_the_internet() -> None:
    with pytest.raises(
        ValueError, match=r"ai-gateway:aws\.deployerCidrs: 0\.0\.0\.0/0 opens the API"
    ):
        decisions.endpoint_access(["203.0.113.0/24", "0.0.0.0/0"], False)


def test_oidc_issuer_host_strips_the_scheme() -> None:
    assert decisions.oidc_issuer_host("https://oidc.eks.us-east-1.amazonaws.com/id/AB12") == (
        "oidc.eks.us-east-1.amazonaws.com/id/AB12"
    )
    with pytest.raises(ValueError, match="not an https URL"):
        decisions.oidc_issuer_host("oidc.eks.us-east-1.amazonaws.com/id/AB12")


@pytest.mark.parametrize(
    ("instance_type", "ami"),
    [
        ("t3.large", "AL2023_x86_64_STANDARD"),
        ("m7i.xlarge", "AL2023_x86_64_STANDARD"),
        ("m7i-flex.large", "AL2023_x86_64_STANDARD"),
        ("m7g.large", "AL2023_ARM_64_STANDARD"),
        ("c7gn.2xlarge", "AL2023_ARM_64_STANDARD"),
        ("t4g.medium", "AL2023_ARM_64_STANDARD"),
    ],
)
def test_node_ami_type_follows_the_cpu_architecture(instance_type: str, ami: str) -> None:
    assert node_ami_type(instance_type) == ami


def test_node_ami_type_rejects_non_instance_types() -> None:
    with pytest.raises(ValueError, match=r"ai-gateway:aws\.nodeInstanceType: 'large'"):
        node_ami_type("large")


def test_key_policy_scopes_cloudwatch_logs_to_the_account() -> None:
    policy = key_policy("111122223333", "eu-west-1")
    admin, logs = policy["Statement"]
    assert admin["Principal"] == {"AWS": "arn:aws:iam::111122223333:root"}
    assert logs["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"}
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] == (
        "arn:aws:logs:eu-west-1:111122223333:log-group:*"
    )


@pytest.mark.parametrize(("storage", "ceiling"), [(20, 80), (50, 200), (20000, 65536)])
def test_postgres_storage_autoscaling_ceiling(storage: int, ceiling: int) -> None:
    assert decisions.postgres_max_storage(storage) == ceiling


def test_postgres_storage_below_the_rds_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match=r"ai-gateway:aws\.postgresStorageGb: 10 .* at least 20"):
        decisions.postgres_max_storage(10)
