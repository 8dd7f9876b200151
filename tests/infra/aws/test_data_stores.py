"""ElastiCache and RDS on each stack's recorded plan: placement, access, encryption, backups."""

from __future__ import annotations

from infra.offline import Plan, RecordedResource, Secret
from infra.offline.engine import reveal
from tests.infra.aws.conftest import footprint_key

HA = {"dev": False, "staging": True, "prod": True}
BACKUP_DAYS = {"dev": 7, "staging": 7, "prod": 30}
REDIS_SNAPSHOT_DAYS = {"dev": 0, "staging": 0, "prod": 7}


def _database_subnet_ids(plan: Plan) -> set[str]:
    return {s.id for s in plan.of_type("aws:ec2/subnet:Subnet") if s.get("tags.tier") == "database"}


def _ingress_rules(plan: Plan, group: RecordedResource) -> list[RecordedResource]:
    return [
        r
        for r in plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs["securityGroupId"] == group.id
    ]


def _node_security_group(plan: Plan) -> str:
    return plan.one("aws:eks/cluster:Cluster").outputs["vpcConfig"]["clusterSecurityGroupId"]


# ------------------------------------------------------------------------ Redis


def test_redis_lives_in_the_database_subnets(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    subnet_group = plan.one("aws:elasticache/subnetGroup:SubnetGroup")
    group = plan.one("aws:elasticache/replicationGroup:ReplicationGroup")
    assert set(subnet_group.inputs["subnetIds"]) == _database_subnet_ids(plan)
    assert group.inputs["subnetGroupName"] == subnet_group.outputs["name"]


def test_redis_admits_only_the_nodes_on_its_port(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    group = plan.one("aws:elasticache/replicationGroup:ReplicationGroup")
    [sg_id] = group.inputs["securityGroupIds"]
    [security_group] = [
        s for s in plan.of_type("aws:ec2/securityGroup:SecurityGroup") if s.id == sg_id
    ]
    assert not security_group.get("ingress") and not security_group.get("egress")
    [rule] = _ingress_rules(plan, security_group)
    assert rule.inputs["referencedSecurityGroupId"] == _node_security_group(plan)
    assert "cidrIpv4" not in rule.inputs
    assert (rule.inputs["ipProtocol"], rule.inputs["fromPort"], rule.inputs["toPort"]) == (
        "tcp",
        6379,
        6379,
    )


def test_redis_is_encrypted_and_tls_only_with_a_secret_token(
    plans: dict[str, Plan], stack: str
) -> None:
    plan = plans[stack]
    group = plan.one("aws:elasticache/replicationGroup:ReplicationGroup")
    assert group.inputs["atRestEncryptionEnabled"] is True
    assert group.inputs["kmsKeyId"] == footprint_key(plan).outputs["arn"]
    assert group.inputs["transitEncryptionEnabled"] is True
    assert group.inputs["transitEncryptionMode"] == "required"
    assert isinstance(group.inputs["authToken"], Secret)
    token = plan.one(
        "random:index/randomPassword:RandomPassword", f"ai-gateway-{stack}-aws-redis-auth-token"
    )
    assert group.get("authToken") == reveal(token.outputs["result"])
    assert 16 <= len(group.get("authToken")) <= 128


def test_redis_availability_and_snapshots_per_environment(
    plans: dict[str, Plan], stack: str
) -> None:
    group = plans[stack].one("aws:elasticache/replicationGroup:ReplicationGroup")
    assert group.inputs["numCacheClusters"] == (2 if HA[stack] else 1)
    assert group.inputs["automaticFailoverEnabled"] is HA[stack]
    assert group.inputs["multiAzEnabled"] is HA[stack]
    assert group.inputs["snapshotRetentionLimit"] == REDIS_SNAPSHOT_DAYS[stack]
    assert group.protect is (stack == "prod")


# --------------------------------------------------------------------- Postgres


def test_postgres_is_private_in_the_database_subnets(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    db = plan.one("aws:rds/instance:Instance")
    subnet_group = plan.one("aws:rds/subnetGroup:SubnetGroup")
    assert db.inputs["publiclyAccessible"] is False
    assert db.inputs["dbSubnetGroupName"] == subnet_group.outputs["name"]
    assert set(subnet_group.inputs["subnetIds"]) == _database_subnet_ids(plan)


def test_postgres_admits_only_the_nodes_on_its_port(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    [sg_id] = plan.one("aws:rds/instance:Instance").inputs["vpcSecurityGroupIds"]
    [security_group] = [
        s for s in plan.of_type("aws:ec2/securityGroup:SecurityGroup") if s.id == sg_id
    ]
    [rule] = _ingress_rules(plan, security_group)
    assert rule.inputs["referencedSecurityGroupId"] == _node_security_group(plan)
    assert (rule.inputs["ipProtocol"], rule.inputs["fromPort"], rule.inputs["toPort"]) == (
        "tcp",
        5432,
        5432,
    )


def test_postgres_storage_and_insights_are_encrypted_with_the_key(
    plans: dict[str, Plan], stack: str
) -> None:
    plan = plans[stack]
    db = plan.one("aws:rds/instance:Instance")
    key_arn = footprint_key(plan).outputs["arn"]
    assert db.inputs["storageEncrypted"] is True
    assert db.inputs["storageType"] == "gp3"
    assert db.inputs["maxAllocatedStorage"] == 4 * db.inputs["allocatedStorage"]
    assert db.inputs["kmsKeyId"] == key_arn
    assert db.inputs["performanceInsightsEnabled"] is True
    assert db.inputs["performanceInsightsKmsKeyId"] == key_arn


def test_postgres_forces_tls_and_supports_pgvector(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    db = plan.one("aws:rds/instance:Instance")
    params = plan.one("aws:rds/parameterGroup:ParameterGroup")
    assert db.inputs["parameterGroupName"] == params.outputs["name"]
    assert {"name": "rds.force_ssl", "value": "1"} in [
        {"name": p["name"], "value": p["value"]} for p in params.get("parameters")
    ]
    assert db.inputs["engine"] == "postgres"
    # pgvector ships with RDS PostgreSQL 16+; the family follows the version.
    major = int(db.inputs["engineVersion"].split(".")[0])
    assert major >= 16 and params.inputs["family"] == f"postgres{major}"


def test_postgres_master_password_is_rds_managed_with_the_footprint_key(
    plans: dict[str, Plan], stack: str
) -> None:
    """Issue 19 item 12: RDS generates, stores and rotates the master password in Secrets
    Manager ("Password management with Amazon RDS and AWS Secrets Manager"), encrypted with
    the footprint's key; the program never knows it, so no state, export or cluster holds it."""
    plan = plans[stack]
    db = plan.one("aws:rds/instance:Instance")
    key = plan.one("aws:kms/key:Key", f"ai-gateway-{stack}-aws-key")
    assert "password" not in db.inputs and db.inputs["manageMasterUserPassword"] is True
    assert db.inputs["masterUserSecretKmsKeyId"] == key.outputs["arn"]
    (secret,) = db.outputs["masterUserSecrets"]
    owner = plan.one("ai-gateway:aws:Footprint").outputs["postgresOwnerSecretArn"]
    assert owner == secret["secretArn"]


def test_postgres_backups_and_protection_per_environment(
    plans: dict[str, Plan], stack: str
) -> None:
    db = plans[stack].one("aws:rds/instance:Instance")
    prod = stack == "prod"
    assert db.inputs["backupRetentionPeriod"] == BACKUP_DAYS[stack]
    assert db.inputs["multiAz"] is HA[stack]
    assert db.inputs["deletionProtection"] is prod
    assert db.inputs["skipFinalSnapshot"] is not prod
    assert (db.inputs.get("finalSnapshotIdentifier") is not None) is prod
    assert db.protect is prod


# ------------------------------------------------------------------------ logs

LOG_RETENTION = {"dev": 30, "staging": 90, "prod": 365}


def _log_group(plan: Plan, name: str) -> RecordedResource:
    (group,) = [
        g for g in plan.of_type("aws:cloudwatch/logGroup:LogGroup") if g.get("name") == name
    ]
    return group


def test_rds_log_groups_exist_encrypted_and_expiring_before_the_instance(
    plans: dict[str, Plan], stack: str
) -> None:
    """RDS creates /aws/rds/instance/<id>/<log> itself, unencrypted and never expiring,
    unless it exists first ("Publishing PostgreSQL logs to Amazon CloudWatch Logs")."""
    plan = plans[stack]
    db = plan.one("aws:rds/instance:Instance")
    key = footprint_key(plan).outputs["arn"]
    assert db.get("enabledCloudwatchLogsExports") == ["postgresql", "upgrade"]
    for log in db.get("enabledCloudwatchLogsExports"):
        group = _log_group(plan, f"/aws/rds/instance/{db.get('identifier')}/{log}")
        assert group.get("kmsKeyId") == key
        assert group.get("retentionInDays") == LOG_RETENTION[stack]
        assert group.urn in db.dependencies


def test_elasticache_delivers_slow_and_engine_logs(plans: dict[str, Plan], stack: str) -> None:
    """ElastiCache log delivery ("Log delivery", ElastiCache user guide): slow-log and
    engine-log to CloudWatch Logs, JSON, into encrypted, expiring groups."""
    plan = plans[stack]
    group_resource = plan.one("aws:elasticache/replicationGroup:ReplicationGroup")
    key = footprint_key(plan).outputs["arn"]
    deliveries = {d["logType"]: d for d in group_resource.get("logDeliveryConfigurations")}
    assert set(deliveries) == {"slow-log", "engine-log"}
    for log_type, delivery in deliveries.items():
        assert delivery["destinationType"] == "cloudwatch-logs"
        assert delivery["logFormat"] == "json"
        name = f"/aws/elasticache/{group_resource.get('replicationGroupId')}/{log_type}"
        assert delivery["destination"] == name
        log_group = _log_group(plan, name)
        assert log_group.get("kmsKeyId") == key
        assert log_group.get("retentionInDays") == LOG_RETENTION[stack]
