"""The PostgreSQL connection budget: the plan refuses a cloud whose database cannot hold the
gateway at ``gateway.maxReplicas`` (issue 24), with each provider's ``max_connections``
as its documentation gives it.

Sources, one per provider:

* RDS: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/CHAP_Limits.html#RDS_Limits.MaxConnections
  (``LEAST({DBInstanceClassMemory/9531392}, 5000)``; ``DBInstanceClassMemory`` is smaller
  than the class's memory, by an amount the page does not give);
* Azure Database for PostgreSQL flexible server:
  https://learn.microsoft.com/en-us/azure/postgresql/flexible-server/concepts-limits
  (the table by SKU; 15 connections kept for replication and monitoring);
* Cloud SQL for PostgreSQL:
  https://cloud.google.com/sql/docs/postgres/quotas#maximum_concurrent_connections
  (the shared-core tiers and the table by memory).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.cli import EXIT_ERROR
from infra.config import Cloud, ConfigError, StackConfig, parse
from infra.decisions import k8s as decisions
from infra.decisions import postgres
from infra.offline import Plan, record
from infra.offline.policy_gate import evaluate, load_policy_config
from infra.offline.stackfile import read_stack_file
from tests.conftest import DEPLOYER_SECRETS
from tests.infra.conftest import ROOT

SHIPPED_STACK_FILES = sorted(
    [*ROOT.glob("Pulumi.*.yaml"), *(ROOT / "examples").rglob("Pulumi.*.yaml")]
)
SHIPPED_STACK_FILES = [p for p in SHIPPED_STACK_FILES if p.name != "Pulumi.yaml"]


def _namespace(path: Path) -> dict[str, Any]:
    values = read_stack_file(path).values
    return {k.split(":", 1)[1]: v for k, v in values.items() if k.startswith("ai-gateway:")}


def _section(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name, {})
    return dict(json.loads(value) if isinstance(value, str) else value)


def _dev_with(**sections: dict[str, Any]) -> dict[str, Any]:
    """The shipped dev stack (all three clouds), with keys of some sections replaced."""
    data = copy.deepcopy(_namespace(ROOT / "Pulumi.dev.yaml"))
    for name, values in sections.items():
        data[name] = {**_section(data, name), **values}
    return data


def _single(cloud: str, **values: Any) -> dict[str, Any]:
    """A dev stack with only ``cloud`` enabled (no governance plane: no audit shipper)."""
    data = _dev_with(gateway=values.pop("gateway", {}))
    for other in ("aws", "azure", "gcp"):
        data[other] = {**_section(data, other), "enabled": other == cloud}
    data[cloud] = {**data[cloud], **values}
    return data


def _refusal(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(data)
    return str(caught.value)


# ------------------------------------------------------------------ RDS (AWS)


@pytest.mark.parametrize(
    ("instance_class", "gib"),
    [
        ("db.t4g.micro", 1),
        ("db.t4g.medium", 4),
        ("db.t3.large", 8),
        ("db.m7g.large", 8),
        ("db.m6i.xlarge", 16),
        ("db.m5.2xlarge", 32),
        ("db.r6g.large", 16),
        ("db.r7g.4xlarge", 128),
        ("db.r8g.16xlarge", 512),
    ],
)
def test_rds_class_memory_from_the_hardware_specifications(instance_class: str, gib: int) -> None:
    assert postgres.rds_memory_gib(instance_class) == gib


@pytest.mark.parametrize(
    ("instance_class", "counted"),
    [
        ("db.t4g.micro", 73),
        ("db.t4g.medium", 377),
        ("db.m7g.large", 782),
        ("db.m7g.xlarge", 1594),
        ("db.r6g.xlarge", 3216),
        ("db.m6g.4xlarge", 5000),  # LEAST(..., 5000)
        ("db.r7g.16xlarge", 5000),
    ],
)
def test_rds_max_connections_is_the_documented_formula_on_less_than_the_class_memory(
    instance_class: str, counted: int
) -> None:
    """RDS: ``LEAST({DBInstanceClassMemory/9531392}, 5000)``, where ``DBInstanceClassMemory``
    is "smaller than the value in gibibytes" because of the memory reserved for the operating
    system and RDS's processes (CHAP_Limits, "Maximum number of database connections"). The
    page gives no figure, so the check counts 90% of the class's memory less 256 MiB: never
    more than the formula on the whole memory, and below what instances of 1, 4 and 8 GiB
    are reported to show (87, 413 and 856)."""
    assert postgres.rds_max_connections(instance_class) == counted
    gib = postgres.rds_memory_gib(instance_class)
    assert gib is not None
    assert counted <= min(gib * 2**30 // 9_531_392, 5000)
    reported = {1: 87, 4: 413, 8: 856}
    if gib in reported:
        assert counted < reported[gib]


@pytest.mark.parametrize(
    "instance_class", ["db.x2g.large", "db.m7g.metal", "db.t4g.4xlarge", "m7g.large", ""]
)
def test_rds_classes_outside_the_table_are_unknown(instance_class: str) -> None:
    assert postgres.rds_max_connections(instance_class) is None


# ------------------------------------------------------- Flexible Server (Azure)


@pytest.mark.parametrize(
    ("sku", "max_connections", "user_connections"),
    [
        ("Standard_B1ms", 50, 35),
        ("Standard_B2s", 429, 414),
        ("Standard_B2ms", 859, 844),
        ("Standard_B12ms", 5000, 4985),
        ("Standard_D2ds_v5", 859, 844),
        ("Standard_D4ds_v5", 1718, 1703),
        ("Standard_D8ads_v5", 3437, 3422),
        ("Standard_D16s_v3", 5000, 4985),
        ("Standard_E2ds_v5", 1718, 1703),
        ("Standard_E4ds_v4", 3437, 3422),
        ("Standard_E20ds_v5", 5000, 4985),
        ("Standard_E96ds_v5", 5000, 4985),
    ],
)
def test_flexible_server_connections_are_the_documented_table(
    sku: str, max_connections: int, user_connections: int
) -> None:
    """Azure concepts-limits, "Maximum connections": the table's maximum connections, and
    its maximum user connections (15 fewer: kept for replication and monitoring)."""
    assert postgres.flexible_server_max_connections(sku) == max_connections
    assert postgres.flexible_server_size(sku, None).allowed == user_connections


@pytest.mark.parametrize("sku", ["Standard_D2ds_v6", "Standard_D6ds_v5", "Standard_B3ms", "B2ms"])
def test_flexible_server_skus_outside_the_table_are_unknown(sku: str) -> None:
    assert postgres.flexible_server_max_connections(sku) is None


# ------------------------------------------------------------ Cloud SQL (GCP)


@pytest.mark.parametrize(
    ("tier", "max_connections"),
    [
        ("db-f1-micro", 25),
        ("db-g1-small", 50),
        ("db-custom-1-3840", 100),  # 3.75 GB: the dev default
        ("db-custom-1-6144", 200),  # 6 GB
        ("db-custom-2-7680", 400),  # 7.5 GB: staging
        ("db-custom-4-15360", 500),  # 15 GB: prod
        ("db-custom-8-30720", 600),
        ("db-custom-16-61440", 800),
        ("db-custom-32-122880", 1000),
        ("db-n1-standard-1", 100),  # 3.75 GB
        ("db-n1-highmem-2", 400),  # 13 GB
        ("db-n1-standard-16", 800),  # 60 GB
    ],
)
def test_cloud_sql_connections_are_the_documented_table_by_memory(
    tier: str, max_connections: int
) -> None:
    """Cloud SQL quotas, "Maximum concurrent connections" for PostgreSQL: 25 and 50 for the
    shared-core tiers; by memory 100 from 3.75 GB, 200 from 6, 400 from 7.5, 500 from 15,
    600 from 30, 800 from 60, 1,000 from 120."""
    assert postgres.cloud_sql_max_connections(tier) == max_connections


@pytest.mark.parametrize(
    "tier", ["db-custom-1-2048", "db-perf-optimized-N-2", "db-n1-ultramem-4", "custom-1-3840"]
)
def test_cloud_sql_tiers_outside_the_table_are_unknown(tier: str) -> None:
    assert postgres.cloud_sql_max_connections(tier) is None


# ----------------------------------------------------------- what is needed


def test_the_peak_counts_processes_the_shipper_and_the_jobs() -> None:
    """docs/operations/sizing.md: 3 per process (its own, its audit drain's, its admin
    reports'), +1 on a follower's shipper, +1 per Job; the pods at a rollout at the HPA's
    ceiling of 20: 20, a surge of 5 (25%) and the 5 old pods it replaced, shutting down."""
    alone = postgres.connections_needed(20, canary=False, follower=False)
    assert alone.total == 3 * (20 + 5 + 5) + 2  # migrate, audit-maintain
    follower = postgres.connections_needed(20, canary=False, follower=True)
    assert follower.total == alone.total + 1
    canary = postgres.connections_needed(20, canary=True, follower=False)
    assert canary.total == 3 * 2 * (20 + 5 + 5) + 3  # both tracks' HPAs, both migrations
    workers = postgres.connections_needed(20, canary=False, follower=False, workers=2)
    assert workers.total == 3 * (20 + 5 + 5) * 2 + 2
    # A fixed fleet (the tests that count real processes): the pods alone.
    fixed = postgres.connections_needed(20, canary=False, follower=False, rollout=False)
    assert (fixed.total, fixed.describe()) == (3 * 20 + 2, "3 x (20) pods x 1 worker(s) + 2 Jobs")


@pytest.mark.parametrize(
    ("replicas", "surge"), [(1, 1), (3, 1), (4, 1), (5, 2), (6, 2), (20, 5), (80, 20), (81, 21)]
)
def test_a_rollout_surges_by_a_quarter_rounded_up(replicas: int, surge: int) -> None:
    """``maxSurge: 25%`` is a percentage of the desired pods, "calculated from percentage by
    rounding up" (Kubernetes API reference, RollingUpdateDeployment;
    https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#max-surge); the
    peak counts that surge and as many replaced pods still shutting down."""
    assert decisions.rolling_surge(replicas) == surge
    assert postgres.ConnectionDemand.rollout_pods(replicas) == replicas + 2 * surge


def test_the_planned_rollout_is_the_one_the_budget_counts(plans: dict[str, Plan]) -> None:
    """Each gateway Deployment (stable and canary tracks) surges by the percentage the count
    uses and removes an old pod only once a new one is available (``maxUnavailable: 0``);
    a new pod is available after ``minReadySeconds``, no shorter than the preStop pause, so
    the old pods one wave replaced are past their pause before the next wave's start theirs
    (one wave of them is counted as still holding connections)."""
    deployments = [
        d for d in plans["dev"].of_type("kubernetes:apps/v1:Deployment") if "gateway" in d.name
    ]
    assert deployments
    for deployment in deployments:
        spec = deployment.inputs["spec"]
        assert spec["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {
                "maxUnavailable": 0,
                "maxSurge": f"{decisions.ROLLING_MAX_SURGE_PERCENT}%",
            },
        }, deployment.name
        assert spec["minReadySeconds"] == decisions.MIN_READY_S, deployment.name
        (gateway,) = [c for c in spec["template"]["spec"]["containers"] if c["name"] == "gateway"]
        assert gateway["lifecycle"]["preStop"] == {"sleep": {"seconds": decisions.PRE_STOP_S}}
    assert decisions.MIN_READY_S >= decisions.PRE_STOP_S


def test_the_stack_counts_a_follower_and_not_the_home() -> None:
    config = parse(_dev_with())
    home = config.governance.home_cloud(config.enabled_clouds)
    assert home == Cloud.AWS
    assert not config.connection_demand(Cloud.AWS).follower
    assert config.connection_demand(Cloud.GCP).follower
    assert config.connection_demand(Cloud.AZURE).follower


def test_the_gateway_pods_run_one_worker_each(plans: dict[str, Plan]) -> None:
    """The count assumes the image's ``serve`` without ``--workers``; the planned
    Deployments must not pass it (else each pod holds twice the connections)."""
    deployments = plans["dev"].of_type("kubernetes:apps/v1:Deployment")
    gateways = [d for d in deployments if "gateway" in d.name]
    assert gateways
    for deployment in gateways:
        for container in deployment.inputs["spec"]["template"]["spec"]["containers"]:
            words = [*container.get("command", []), *container.get("args", [])]
            assert not any(w.startswith("--workers") for w in words), deployment.name
    assert postgres.GATEWAY_WORKERS_PER_POD == 1


# -------------------------------------------------- the plan refuses, per cloud


def test_gcp_dev_tier_refuses_80_replicas_naming_keys_numbers_and_fixes() -> None:
    """The issue's case: ``gateway.maxReplicas: 80`` on GCP's dev tier (100 connections)."""
    message = _refusal(_dev_with(gateway={"maxReplicas": 80}))
    assert (
        "ai-gateway:gcp.postgresTier: the gcp database allows the gateway 97 connections "
        "(the default max_connections 100 of db-custom-1-3840 "
        "(https://cloud.google.com/sql/docs/postgres/quotas#maximum_concurrent_connections), "
        "less 3 reserved) but at ai-gateway:gateway.maxReplicas 80 it needs 363 "
        "(3 x (80 + 20 surge + 20 shutting down) pods x 1 worker(s) + 1 audit shipper + 2 Jobs)"
    ) in message
    assert (
        "Choose a larger ai-gateway:gcp.postgresTier, lower ai-gateway:gateway.maxReplicas to "
        "20 or less, or set ai-gateway:gcp.postgresMaxConnections to at least 366"
    ) in message
    # AWS's db.t4g.medium (377 counted) and Azure's B2ms (844) hold 80 replicas.
    assert "ai-gateway:aws." not in message and "ai-gateway:azure." not in message


def test_lowering_max_replicas_to_the_suggested_value_passes() -> None:
    parse(_dev_with(gateway={"maxReplicas": 20}))  # 3 x (20 + 5 + 5) + 1 + 2 = 93 of 97
    # 3 x (21 + 6 + 6) + 1 + 2 = 102
    assert "gcp.postgresTier" in _refusal(_dev_with(gateway={"maxReplicas": 21}))


def test_aws_small_class_is_refused() -> None:
    message = _refusal(
        _single("aws", postgresInstanceClass="db.t4g.micro", gateway={"maxReplicas": 40})
    )
    assert (
        "ai-gateway:aws.postgresInstanceClass: the aws database allows the gateway 70 "
        "connections (the default max_connections 73 of db.t4g.micro"
    ) in message
    assert (
        "at ai-gateway:gateway.maxReplicas 40 it needs 182 (3 x (40 + 10 surge + 10 shutting "
        "down) pods"
    ) in message
    assert "lower ai-gateway:gateway.maxReplicas to 14 or less" in message
    assert "set ai-gateway:aws.postgresMaxConnections to at least 185" in message


def test_azure_small_sku_is_refused() -> None:
    message = _refusal(
        _single(
            "azure",
            postgresSku="Standard_B1ms",
            postgresTier="Burstable",
            gateway={"maxReplicas": 20},
        )
    )
    assert (
        "ai-gateway:azure.postgresSku: the azure database allows the gateway 35 connections "
        "(the default max_connections 50 of Standard_B1ms"
    ) in message
    assert "less 15 reserved) but at ai-gateway:gateway.maxReplicas 20 it needs 92" in message
    assert "lower ai-gateway:gateway.maxReplicas to 7 or less" in message


def test_a_canary_beside_the_stable_track_doubles_the_pods() -> None:
    # 20 replicas fit GCP's dev tier alone (93 of 97), not with a canary HPA of 20 beside them.
    parse(_dev_with(gateway={"maxReplicas": 20}))
    message = _refusal(
        _dev_with(gateway={"maxReplicas": 20, "canaryImage": "ghcr.io/acme/ai-gateway:0.2.0"})
    )
    assert (
        "it needs 184 (3 x ((20 + 5 surge + 5 shutting down) + (20 + 5 surge + 5 shutting "
        "down) canary) pods x 1 worker(s) + 1 audit shipper + 3 Jobs)"
    ) in message
    # 3 x 2 x (9 + 3 + 3) + 1 + 3 = 94; with 10, 3 x 2 x (10 + 3 + 3) + 4 = 100.
    assert "lower ai-gateway:gateway.maxReplicas to 9 or less" in message
    parse(_dev_with(gateway={"maxReplicas": 9, "canaryImage": "ghcr.io/acme/ai-gateway:0.2.0"}))
    assert "gcp.postgresTier" in _refusal(
        _dev_with(gateway={"maxReplicas": 10, "canaryImage": "ghcr.io/acme/ai-gateway:0.2.0"})
    )


def test_every_refusing_cloud_is_reported_at_once() -> None:
    data = _dev_with(gateway={"maxReplicas": 200}, aws={"postgresInstanceClass": "db.t4g.small"})
    message = _refusal(data)
    assert "ai-gateway:aws.postgresInstanceClass: the aws database" in message
    assert "ai-gateway:gcp.postgresTier: the gcp database" in message


# ------------------------------------------------------ unknown sizes, override


@pytest.mark.parametrize(
    ("cloud", "values", "key"),
    [
        ("aws", {"postgresInstanceClass": "db.x2g.large"}, "aws.postgresInstanceClass"),
        (
            "azure",
            {"postgresSku": "Standard_D2ds_v6", "postgresTier": "GeneralPurpose"},
            "azure.postgresSku",
        ),
        ("gcp", {"postgresTier": "db-perf-optimized-N-2"}, "gcp.postgresTier"),
    ],
)
def test_an_unknown_size_does_not_pass_silently(
    cloud: str, values: dict[str, str], key: str
) -> None:
    message = _refusal(_single(cloud, **values))
    value = next(iter(values.values()))
    assert (
        f"ai-gateway:{key}: {value} is a size whose default max_connections this check does "
        f"not know, so the {cloud} gateway's peak of 17 PostgreSQL connections"
    ) in message
    assert f"or set ai-gateway:{cloud}.postgresMaxConnections to the max_connections" in message


@pytest.mark.parametrize(
    ("cloud", "values"),
    [
        ("aws", {"postgresInstanceClass": "db.x2g.large"}),
        ("azure", {"postgresSku": "Standard_D2ds_v6", "postgresTier": "GeneralPurpose"}),
        ("gcp", {"postgresTier": "db-perf-optimized-N-2"}),
    ],
)
def test_the_override_states_the_limit_of_an_unknown_size(
    cloud: str, values: dict[str, str]
) -> None:
    config = parse(_single(cloud, postgresMaxConnections=400, **values))
    size = config.database_size(Cloud(cloud))
    assert size.default_max_connections is None and size.max_connections == 400


def test_the_override_wins_over_the_default() -> None:
    # The refusal's "at least 366" (363 needed + 3 reserved) is enough.
    config = parse(_dev_with(gateway={"maxReplicas": 80}, gcp={"postgresMaxConnections": 366}))
    assert config.database_size(Cloud.GCP).allowed == 363
    assert "gcp.postgresMaxConnections" in _refusal(
        _dev_with(gateway={"maxReplicas": 80}, gcp={"postgresMaxConnections": 365})
    )
    # An override below the peak is refused on its own key.
    message = _refusal(_dev_with(gateway={"maxReplicas": 80}, gcp={"postgresMaxConnections": 150}))
    assert (
        "ai-gateway:gcp.postgresMaxConnections: the gcp database allows the gateway 147 "
        "connections (max_connections 150 set here, less 3 reserved) but at "
        "ai-gateway:gateway.maxReplicas 80 it needs 363"
    ) in message


def test_azure_refuses_an_override_above_its_parameter_range() -> None:
    message = _refusal(_dev_with(azure={"postgresMaxConnections": 6000}))
    assert "ai-gateway:azure.postgresMaxConnections: 6000 is above 5000" in message


def test_the_footprints_set_the_override_on_each_server() -> None:
    """RDS: a static parameter, so ``pending-reboot``; Azure: the server parameter;
    Cloud SQL: the database flag. The plan stays compliant with the policy pack."""
    data = _dev_with()
    config = {
        f"ai-gateway:{cloud}": {**_section(data, cloud), "postgresMaxConnections": limit}
        for cloud, limit in (("aws", 500), ("azure", 600), ("gcp", 300))
    }
    plan = record("dev", project_dir=ROOT, config=config, secret_config=DEPLOYER_SECRETS)
    rds = plan.one("aws:rds/parameterGroup:ParameterGroup")
    assert {"name": "max_connections", "value": "500", "applyMethod": "pending-reboot"} in (
        rds.inputs["parameters"]
    )
    azure = [
        r
        for r in plan.of_type("azure-native:dbforpostgresql:Configuration")
        if r.inputs["configurationName"] == "max_connections"
    ]
    assert [r.inputs["value"] for r in azure] == ["600"]
    flags = plan.one("gcp:sql/databaseInstance:DatabaseInstance").inputs["settings"][
        "databaseFlags"
    ]
    assert {"name": "max_connections", "value": "300"} in flags
    verdict = evaluate(
        plan,
        pack_dir=ROOT / "policies",
        config=load_policy_config(ROOT / "policy-config.json"),
        transport="in-process",
    )
    assert verdict.passed, verdict.summary()


def test_without_the_override_no_server_sets_max_connections(plans: dict[str, Plan]) -> None:
    plan = plans["dev"]
    rds = plan.one("aws:rds/parameterGroup:ParameterGroup")
    assert all(p["name"] != "max_connections" for p in rds.inputs["parameters"])
    assert all(
        r.inputs["configurationName"] != "max_connections"
        for r in plan.of_type("azure-native:dbforpostgresql:Configuration")
    )
    flags = plan.one("gcp:sql/databaseInstance:DatabaseInstance").inputs["settings"][
        "databaseFlags"
    ]
    assert all(f["name"] != "max_connections" for f in flags)


# --------------------------------------------------------- the shipped stacks


@pytest.mark.parametrize("path", SHIPPED_STACK_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_stack_fits_its_databases(path: Path) -> None:
    config: StackConfig = parse(_namespace(path))
    assert config.enabled_clouds
    for cloud in config.enabled_clouds:
        demand, size = config.connection_demand(cloud), config.database_size(cloud)
        assert size.allowed is not None and demand.total <= size.allowed, (cloud, size)


def test_aigw_plan_refuses_the_issue_case_before_any_resource(tmp_path: Path) -> None:
    stack = tmp_path / "Pulumi.dev.yaml"
    text = (ROOT / "Pulumi.dev.yaml").read_text()
    assert "  ai-gateway:gateway:\n    image:" in text
    stack.write_text(
        text.replace("  ai-gateway:gateway:\n", "  ai-gateway:gateway:\n    maxReplicas: 80\n", 1)
    )
    result = subprocess.run(
        [sys.executable, "-m", "infra.cli", "plan", "--stack", "dev", "--stack-file", str(stack)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == EXIT_ERROR, result.stderr
    assert "ai-gateway:gcp.postgresTier: the gcp database allows the gateway 97" in result.stderr
    assert result.stdout == ""


# ------------------------------------------------- the sizing page says what is counted

SIZING = ROOT / "docs" / "operations" / "sizing.md"


def test_the_sizing_pages_refusal_and_peaks_are_what_the_check_says() -> None:
    """docs/operations/sizing.md, written by hand, shows the refusal of ``maxReplicas: 80``
    on GCP's dev tier and the shipped stacks' peaks: they are the check's own message (its
    documentation link elided as the page shows it) and what the shipped stacks count at
    the home and in a follower, so a change to the count cannot leave the page behind."""
    text = SIZING.read_text()
    block = text.split("80` with GCP's dev tier:\n\n", 1)[1].split("\n\n", 1)[0]
    shown = " ".join(block.split())
    message = " ".join(_refusal(_dev_with(gateway={"maxReplicas": 80})).split())
    elided = re.sub(
        r"\(https://cloud\.google\.com/sql/[^)]*\)", "(https://cloud.google.com/sql/...)", message
    )
    assert shown in elided, (shown, elided)

    stated = re.search(
        r"With the shipped `maxReplicas` \((\d+), (\d+) and (\d+)\) that is (\d+), (\d+) and "
        r"(\d+) at the home \(AWS in the shipped stacks\) and (\d+), (\d+) and (\d+) in a "
        r"follower",
        " ".join(text.split()),  # (however the page wraps its lines)
    )
    assert stated is not None, "the shipped peaks' sentence moved: update this test"
    replicas, home, follower = ([int(n) for n in stated.groups()[at : at + 3]] for at in (0, 3, 6))
    counted: list[tuple[int, int, int]] = []
    for environment in ("dev", "staging", "prod"):
        config = parse(_namespace(ROOT / f"Pulumi.{environment}.yaml"))
        assert config.governance.home_cloud(config.enabled_clouds) == Cloud.AWS
        demand = config.connection_demand(Cloud.AWS)
        counted.append(
            (demand.max_replicas, demand.total, config.connection_demand(Cloud.GCP).total)
        )
    assert [list(column) for column in zip(*counted, strict=True)] == [replicas, home, follower]
