"""GCP policies: Memorystore and Cloud SQL with TLS and auth, GKE secrets encryption, no public ingress.

Cloud SQL ``sslMode``: the pack accepts ``ENCRYPTED_ONLY`` and
``TRUSTED_CLIENT_CERTIFICATE_REQUIRED`` (parameter ``allowedSslModes``).
Scanners disagree: checkov accepts only the client-certificate mode, Google's
own guidance and trivy accept ``ENCRYPTED_ONLY``. The gateway authenticates to
PostgreSQL with a password over a private IP; what the rule must guarantee is
that no byte crosses the network unencrypted, which ``ENCRYPTED_ONLY`` does.
Client certificates add identity, not confidentiality, and would force a
certificate rotation process on every client. Teams that want checkov's rule
set ``allowedSslModes`` to ``["TRUSTED_CLIENT_CERTIFICATE_REQUIRED"]``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import ResourceValidationPolicy, Severity

from policies.config import Category
from policies.framework import (
    API_CIDRS,
    API_CIDRS_DOC,
    PROD_ONLY,
    PUBLIC_PORTS,
    PUBLIC_PORTS_DOC,
    WORLD,
    WORLD_DOC,
    cidr_violations,
    get,
    is_true,
    is_world,
    items,
    port_spec_outside,
    requires,
    resource_policy,
)

REDIS_INSTANCE = "gcp:redis/instance:Instance"
SQL_INSTANCE = "gcp:sql/databaseInstance:DatabaseInstance"
GKE_CLUSTER = "gcp:container/cluster:Cluster"
GKE_NODE_POOL = "gcp:container/nodePool:NodePool"
KMS_CRYPTO_KEY = "gcp:kms/cryptoKey:CryptoKey"
FIREWALL = "gcp:compute/firewall:Firewall"
SUBNETWORK = "gcp:compute/subnetwork:Subnetwork"
NETWORK = "gcp:compute/network:Network"

SSL_MODES = ["ENCRYPTED_ONLY", "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"]


def _redis_transit(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "transitEncryptionMode") != "SERVER_AUTHENTICATION":
        yield (
            f"transitEncryptionMode is {get(props, 'transitEncryptionMode', 'unset (DISABLED)')}: "
            "set transitEncryptionMode='SERVER_AUTHENTICATION' (TLS on port 6378)"
        )


def _redis_auth(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if not is_true(get(props, "authEnabled")):
        yield "authEnabled is not true: set authEnabled=True"


def _sql_ssl_mode(props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    allowed = list(config["allowedSslModes"])
    mode = get(props, "settings.ipConfiguration.sslMode")
    if mode is None and is_true(get(props, "settings.ipConfiguration.requireSsl")):
        mode = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"  # what the deprecated flag means
    if mode not in allowed:
        yield (
            f"settings.ipConfiguration.sslMode is {mode or 'unset (ALLOW_UNENCRYPTED_AND_ENCRYPTED)'}: "
            f"set settings.ipConfiguration.sslMode to one of {allowed}"
        )


def _sql_backups(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "masterInstanceName"):
        return  # replicas are backed up through their primary
    if not is_true(get(props, "settings.backupConfiguration.enabled")):
        yield "settings.backupConfiguration.enabled is not true: set it to True"


def _sql_private(props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    ip = get(props, "settings.ipConfiguration", {})
    if get(ip, "ipv4Enabled", True) is not False:
        yield (
            "settings.ipConfiguration.ipv4Enabled is not false: set ipv4Enabled=False and "
            "privateNetwork to the VPC (private service access)"
        )
    networks = [get(network, "value") for network in items(ip, "authorizedNetworks")]
    if is_world(networks, config):
        yield (
            f"settings.ipConfiguration.authorizedNetworks {networks} admit the whole internet: "
            "list only known networks"
        )


def _gke_secrets(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "databaseEncryption.state") != "ENCRYPTED" or not get(
        props, "databaseEncryption.keyName"
    ):
        yield (
            "databaseEncryption is not ENCRYPTED with a key: set databaseEncryption.state="
            "'ENCRYPTED' and databaseEncryption.keyName to a Cloud KMS key"
        )


def _gke_endpoint(props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    if is_true(get(props, "privateClusterConfig.enablePrivateEndpoint")):
        return
    blocks = items(props, "masterAuthorizedNetworksConfig.cidrBlocks")
    cidrs = [get(b, "cidrBlock") for b in blocks]
    if not cidrs:
        yield (
            "masterAuthorizedNetworksConfig.cidrBlocks is empty, so the public endpoint is open "
            "to the internet: list the deployers' CIDRs, or set "
            "privateClusterConfig.enablePrivateEndpoint=True"
        )
    yield from cidr_violations(cidrs, config, "masterAuthorizedNetworksConfig.cidrBlocks")
    if is_true(get(props, "masterAuthorizedNetworksConfig.gcpPublicCidrsAccessEnabled")):
        yield (
            "masterAuthorizedNetworksConfig.gcpPublicCidrsAccessEnabled is true: set it to False"
        )


def _gke_legacy_auth(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if is_true(get(props, "enableLegacyAbac")):
        yield "enableLegacyAbac is true: set enableLegacyAbac=False and grant access with RBAC"
    if is_true(get(props, "masterAuth.clientCertificateConfig.issueClientCertificate")):
        yield (
            "masterAuth.clientCertificateConfig.issueClientCertificate is true: set it to False "
            "(a client certificate cannot be revoked)"
        )


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")


def _kms_rotation(props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    if str(get(props, "purpose", "ENCRYPT_DECRYPT")) != "ENCRYPT_DECRYPT":
        return  # only symmetric keys rotate automatically
    limit = int(config["maxRotationDays"])
    period = get(props, "rotationPeriod")
    match = _DURATION.match(str(period or ""))
    if not match or float(match.group(1)) > limit * 86400:
        yield (
            f"rotationPeriod is {period or 'unset'}: set rotationPeriod to at most "
            f"'{limit * 86400}s' ({limit} days)"
        )


def _firewall(props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    if str(get(props, "direction", "INGRESS")) != "INGRESS" or is_true(get(props, "disabled")):
        return
    sources = items(props, "sourceRanges")
    if not sources and (items(props, "sourceTags") or items(props, "sourceServiceAccounts")):
        return  # only instances with those tags or service accounts
    # An ingress rule with no source at all admits 0.0.0.0/0 (Compute Engine firewall docs).
    if sources and not is_world(sources, config):
        return
    allowed = [int(p) for p in config["allowedPublicPorts"]]
    for index, rule in enumerate(items(props, "allows")):
        protocol = str(get(rule, "protocol", "all")).lower()
        ports = items(rule, "ports")
        if protocol in {"all", "tcp", "udp", "sctp"} and not ports:
            opened: list[Any] = ["all"]
        elif protocol not in {"tcp", "udp", "sctp"}:
            opened = [protocol]
        else:
            opened = [p for p in ports if port_spec_outside(p, allowed)]
        if opened:
            yield (
                f"allows[{index}] opens {protocol} {opened} to 0.0.0.0/0: restrict sourceRanges "
                f"to known networks (only {allowed} may be public)"
            )


IAM_SUFFIXES = ("IAMMember", "IAMBinding", "IAMPolicy", "IamMember", "IamBinding", "IamPolicy")
IAM_TYPES = [
    "gcp:projects/iAMMember:IAMMember",
    "gcp:projects/iAMBinding:IAMBinding",
    "gcp:projects/iAMPolicy:IAMPolicy",
    "gcp:organizations/iAMMember:IAMMember",
    "gcp:organizations/iAMBinding:IAMBinding",
    "gcp:folder/iAMMember:IAMMember",
    "gcp:folder/iAMBinding:IAMBinding",
    "gcp:serviceaccount/iAMMember:IAMMember",
    "gcp:serviceaccount/iAMBinding:IAMBinding",
    "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember",
    "gcp:kms/cryptoKeyIAMBinding:CryptoKeyIAMBinding",
    "gcp:kms/keyRingIAMMember:KeyRingIAMMember",
    "gcp:kms/keyRingIAMBinding:KeyRingIAMBinding",
    "gcp:storage/bucketIAMMember:BucketIAMMember",
    "gcp:storage/bucketIAMBinding:BucketIAMBinding",
    "gcp:secretmanager/secretIamMember:SecretIamMember",
    "gcp:secretmanager/secretIamBinding:SecretIamBinding",
]
"""IAM types the two GCP IAM policies judge (IAMMember/IAMBinding: ``member(s)`` and ``role``;
``IAMPolicy``: ``policyData`` JSON)."""
PUBLIC_MEMBERS = ("allusers", "allauthenticatedusers")


def _bindings(props: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    """(role, members) of an IAM member, binding or policy resource."""
    if get(props, "policyData"):
        try:
            data = json.loads(str(get(props, "policyData")))
        except ValueError:
            return []
        return [
            (str(b.get("role", "")), list(b.get("members", []))) for b in data.get("bindings", [])
        ]
    members = [get(props, "member")] if get(props, "member") else items(props, "members")
    return [(str(get(props, "role", "")), [str(m) for m in members])]


def _public_principals(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    for role, members in _bindings(props):
        public = [m for m in members if m.strip().lower() in PUBLIC_MEMBERS]
        if public:
            yield f"grants {role} to {public}: grant it to named principals only"


def _basic_roles(props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    forbidden = set(config["forbiddenRoles"])
    for role, members in _bindings(props):
        if role in forbidden:
            yield f"grants the basic role {role} to {members}: grant a predefined role instead"


def _gke_workload_identity(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if not get(props, "workloadIdentityConfig.workloadPool"):
        yield "workloadIdentityConfig.workloadPool is not set: set it to '<project>.svc.id.goog'"


def _metadata(node_config: Any, where: str) -> Iterable[str]:
    mode = get(node_config, "workloadMetadataConfig.mode")
    if mode != "GKE_METADATA":
        yield (f"{where}workloadMetadataConfig.mode is {mode or 'unset'}: set it to 'GKE_METADATA'")
    if str(get(node_config, "metadata.disable-legacy-endpoints", "true")).lower() == "false":
        yield f"{where}metadata.disable-legacy-endpoints is false: remove it or set 'true'"


def _gke_cluster_metadata(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if is_true(get(props, "removeDefaultNodePool")) and not get(props, "nodeConfig"):
        return  # no default pool survives
    yield from _metadata(get(props, "nodeConfig", {}), "nodeConfig.")


def _gke_pool_metadata(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    yield from _metadata(get(props, "nodeConfig", {}), "nodeConfig.")


def _shielded(node_config: Any, where: str) -> Iterable[str]:
    if get(node_config, "shieldedInstanceConfig.enableSecureBoot") is not True:
        yield f"{where}shieldedInstanceConfig.enableSecureBoot is not true: set it to True"
    if get(node_config, "shieldedInstanceConfig.enableIntegrityMonitoring") is False:
        yield f"{where}shieldedInstanceConfig.enableIntegrityMonitoring is false: set it to True"


def _gke_cluster_shielded(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "enableShieldedNodes") is False:
        yield "enableShieldedNodes is false: set enableShieldedNodes=True"
    if not (is_true(get(props, "removeDefaultNodePool")) and not get(props, "nodeConfig")):
        yield from _shielded(get(props, "nodeConfig", {}), "nodeConfig.")


def _gke_pool_shielded(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    yield from _shielded(get(props, "nodeConfig", {}), "nodeConfig.")


def _gke_pool_management(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    for flag in ("autoRepair", "autoUpgrade"):
        if get(props, f"management.{flag}") is False:
            yield f"management.{flag} is false: set management.{flag}=True"


def _gke_network_policy(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "datapathProvider") == "ADVANCED_DATAPATH":
        return  # Dataplane V2 enforces NetworkPolicy itself
    if not is_true(get(props, "networkPolicy.enabled")):
        yield (
            "NetworkPolicy is not enforced: set datapathProvider='ADVANCED_DATAPATH' or "
            "networkPolicy.enabled=True (with addonsConfig.networkPolicyConfig.disabled=False)"
        )


def _gke_binary_authorization(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    mode = get(props, "binaryAuthorization.evaluationMode")
    if mode != "PROJECT_SINGLETON_POLICY_ENFORCE" and not is_true(
        get(props, "binaryAuthorization.enabled")
    ):
        yield (
            f"binaryAuthorization.evaluationMode is {mode or 'unset (DISABLED)'}: set it to "
            "'PROJECT_SINGLETON_POLICY_ENFORCE'"
        )


REQUIRED_PG_FLAGS = [
    "log_connections=on",
    "log_disconnections=on",
    "log_checkpoints=on",
    "log_lock_waits=on",
    "log_temp_files=0",
    "log_duration=on",
    "cloudsql.enable_pgaudit=on",
]
# Flags that, when set, must have one of these values (CIS GCP 6.2.x): no statement text
# in the logs, no per-statement statistics, and error-level logging kept.
PINNED_PG_FLAGS = {
    "log_min_duration_statement": {"-1"},
    "log_executor_stats": {"off"},
    "log_parser_stats": {"off"},
    "log_planner_stats": {"off"},
    "log_statement_stats": {"off"},
    "log_min_messages": {
        "debug5",
        "debug4",
        "debug3",
        "debug2",
        "debug1",
        "info",
        "notice",
        "warning",
        "error",
    },
    "log_min_error_statement": {
        "debug5",
        "debug4",
        "debug3",
        "debug2",
        "debug1",
        "info",
        "notice",
        "warning",
        "error",
    },
}


def _sql_flags(props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    if not str(get(props, "databaseVersion", "")).startswith("POSTGRES"):
        return
    flags = {
        str(get(f, "name")): str(get(f, "value", "")).strip().lower()
        for f in items(props, "settings.databaseFlags")
    }
    for entry in config["requiredFlags"]:
        name, _, value = str(entry).partition("=")
        if flags.get(name) != value.lower():
            yield (
                f"settings.databaseFlags {name} is {flags.get(name, 'unset')}: add "
                f"{{name: '{name}', value: '{value}'}}"
            )
    for name, values in PINNED_PG_FLAGS.items():
        if name in flags and flags[name] not in values:
            yield (
                f"settings.databaseFlags {name} is {flags[name]}: set it to one of "
                f"{sorted(values)} or remove it"
            )


def _sql_ha(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "masterInstanceName"):
        return
    if get(props, "settings.availabilityType") != "REGIONAL":
        yield "settings.availabilityType is not REGIONAL in production: set it to 'REGIONAL'"
    if not is_true(get(props, "settings.backupConfiguration.pointInTimeRecoveryEnabled")):
        yield (
            "settings.backupConfiguration.pointInTimeRecoveryEnabled is not true in production: "
            "set it to True"
        )


def _redis_ha(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "tier", "BASIC") != "STANDARD_HA":
        yield f"tier is {get(props, 'tier', 'unset (BASIC)')} in production: set tier='STANDARD_HA'"


def _gke_logging(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    for service in ("loggingService", "monitoringService"):
        if get(props, service) == "none":
            yield f"{service} is 'none': remove it (Cloud Logging/Monitoring for Kubernetes)"
    if get(props, "loggingConfig") is not None and not items(
        props, "loggingConfig.enableComponents"
    ):
        yield "loggingConfig.enableComponents is empty: enable SYSTEM_COMPONENTS and WORKLOADS"


def _gke_cluster_basics(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    channel = get(props, "releaseChannel.channel")
    if channel in (None, "UNSPECIFIED"):
        yield "releaseChannel.channel is unset: set it to 'REGULAR' (or STABLE) for security patches"
    if is_true(get(props, "enableKubernetesAlpha")):
        yield "enableKubernetesAlpha is true: alpha clusters get no security patches; set it False"
    if get(props, "networkingMode") != "VPC_NATIVE" and not get(props, "ipAllocationPolicy"):
        yield (
            "the cluster is routes-based: set networkingMode='VPC_NATIVE' with ipAllocationPolicy "
            "(alias IP ranges)"
        )


def _gke_separate_pools(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if items(props, "nodePools"):
        yield (
            "nodePools are declared inside the cluster: declare each as a gcp.container.NodePool "
            "(and removeDefaultNodePool=True), so a pool change never replaces the cluster"
        )


def _gke_pool_image(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    image = str(get(props, "nodeConfig.imageType", "COS_CONTAINERD"))
    if not image.upper().startswith("COS"):
        yield f"nodeConfig.imageType is {image}: use 'COS_CONTAINERD' (Container-Optimized OS)"


SERVICE_ACCOUNT_ROLES = [
    "roles/iam.serviceAccountUser",
    "roles/iam.serviceAccountTokenCreator",
    "roles/iam.serviceAccountAdmin",
    "roles/iam.serviceAccountKeyAdmin",
]
_DEFAULT_ACCOUNTS = ("-compute@developer.gserviceaccount.com", "@appspot.gserviceaccount.com")
_SCOPE_WIDE = ("gcp:projects/", "gcp:organizations/", "gcp:folder/")


def _least_privilege(
    props: Mapping[str, Any], config: Mapping[str, Any], kind: str
) -> Iterable[str]:
    project_wide = kind.startswith(_SCOPE_WIDE)
    forbidden = set(config["projectWideForbiddenRoles"])
    for role, members in _bindings(props):
        if project_wide and role in forbidden:
            yield (
                f"grants {role} on the whole project to {members}: grant it on the one service "
                "account that needs it (serviceaccount IAM member)"
            )
        for member in members:
            if member.endswith(_DEFAULT_ACCOUNTS):
                yield f"grants {role} to the default service account {member}: use a dedicated one"
            elif (
                member.startswith("serviceAccount:")
                and project_wide
                and role.endswith(("admin", "Admin"))
            ):
                yield f"grants the administrator role {role} to {member}: grant a narrower role"


def _private_google_access(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if str(get(props, "purpose", "PRIVATE")) not in {"PRIVATE", "PRIVATE_RFC_1918"}:
        return
    if not is_true(get(props, "privateIpGoogleAccess")):
        yield (
            "privateIpGoogleAccess is not true: set it to True so private nodes reach Google "
            "APIs without public addresses"
        )


def _subnet_flow_logs(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    purpose = str(get(props, "purpose", "PRIVATE"))
    if purpose not in {"PRIVATE", "PRIVATE_RFC_1918"}:
        return  # proxy-only and PSC subnets carry no flow logs
    if not get(props, "logConfig"):
        yield "logConfig is not set: set logConfig to record VPC flow logs"


def policies() -> list[ResourceValidationPolicy]:
    """Every GCP resource policy of the pack."""
    enc, exp = Category.ENCRYPTION, Category.EXPOSURE
    return [
        resource_policy(
            "gcp-redis-instance-transit-encryption",
            "Memorystore for Redis must encrypt client traffic. Fix: set "
            "transitEncryptionMode='SERVER_AUTHENTICATION'; clients trust the instance's server CA.",
            types=[REDIS_INSTANCE],
            check=_redis_transit,
            category=enc,
        ),
        resource_policy(
            "gcp-redis-instance-auth",
            "Memorystore for Redis must require AUTH. Fix: set authEnabled=True.",
            types=[REDIS_INSTANCE],
            check=_redis_auth,
            category=enc,
        ),
        resource_policy(
            "gcp-sql-databaseinstance-ssl-mode",
            "Cloud SQL must refuse unencrypted connections. Fix: set "
            "settings.ipConfiguration.sslMode='ENCRYPTED_ONLY' (or "
            "'TRUSTED_CLIENT_CERTIFICATE_REQUIRED').",
            types=[SQL_INSTANCE],
            check=_sql_ssl_mode,
            category=enc,
            params={"allowedSslModes": SSL_MODES},
            param_docs={"allowedSslModes": "Accepted settings.ipConfiguration.sslMode values."},
        ),
        resource_policy(
            "gcp-sql-databaseinstance-backups",
            "Cloud SQL instances must take automated backups. Fix: set "
            "settings.backupConfiguration.enabled=True (and pointInTimeRecoveryEnabled).",
            types=[SQL_INSTANCE],
            check=_sql_backups,
            category=Category.RESILIENCE,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "gcp-sql-databaseinstance-no-public-ip",
            "Cloud SQL must not have a public IP. Fix: set settings.ipConfiguration.ipv4Enabled="
            "False and privateNetwork (private service access).",
            types=[SQL_INSTANCE],
            check=_sql_private,
            category=exp,
            params=WORLD,
            param_docs=WORLD_DOC,
            severity=Severity.CRITICAL,
        ),
        resource_policy(
            "gcp-container-cluster-secrets-encryption",
            "GKE must encrypt Kubernetes secrets at the application layer with Cloud KMS. Fix: "
            "set databaseEncryption.state='ENCRYPTED' and databaseEncryption.keyName.",
            types=[GKE_CLUSTER],
            check=_gke_secrets,
            category=enc,
        ),
        resource_policy(
            "gcp-container-cluster-endpoint-restricted",
            "The GKE control plane must be private or limited to known CIDRs (never 0.0.0.0/0). "
            "Fix: set masterAuthorizedNetworksConfig.cidrBlocks to the deployers' CIDRs, or "
            "privateClusterConfig.enablePrivateEndpoint=True.",
            types=[GKE_CLUSTER],
            check=_gke_endpoint,
            category=exp,
            params=API_CIDRS,
            param_docs=API_CIDRS_DOC,
            severity=Severity.CRITICAL,
        ),
        resource_policy(
            "gcp-container-cluster-no-legacy-auth",
            "GKE must not use legacy ABAC nor issue client certificates: both bypass RBAC and "
            "IAM. Fix: set enableLegacyAbac=False and "
            "masterAuth.clientCertificateConfig.issueClientCertificate=False.",
            types=[GKE_CLUSTER],
            check=_gke_legacy_auth,
            category=exp,
        ),
        resource_policy(
            "gcp-kms-cryptokey-rotation",
            "Cloud KMS keys must rotate at least every 90 days. Fix: set rotationPeriod "
            "(for example '7776000s').",
            types=[KMS_CRYPTO_KEY],
            check=_kms_rotation,
            category=enc,
            params={"maxRotationDays": 90},
            param_docs={"maxRotationDays": "Longest accepted rotationPeriod, in days."},
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "gcp-compute-firewall-no-public-ingress",
            "Firewall rules must not allow any port but HTTPS from 0.0.0.0/0 or ::/0. Fix: limit "
            "sourceRanges to known networks or allows[].ports to 443.",
            types=[FIREWALL],
            check=_firewall,
            category=exp,
            params=PUBLIC_PORTS,
            param_docs=PUBLIC_PORTS_DOC,
            severity=Severity.CRITICAL,
        ),
        resource_policy(
            "gcp-iam-binding-no-public-principals",
            "No IAM grant, on any resource, may go to allUsers or allAuthenticatedUsers (anyone "
            "with a Google account). Fix: grant the role to named users, groups or service "
            "accounts.",
            types=IAM_TYPES,
            check=dict.fromkeys(IAM_TYPES, _public_principals),
            category=Category.IDENTITY,
            severity=Severity.CRITICAL,
        ),
        resource_policy(
            "gcp-iam-binding-no-basic-roles",
            "Basic roles (roles/owner, roles/editor) grant thousands of permissions across the "
            "project: grant predefined or custom roles instead. Fix: replace the role with the "
            "narrowest predefined role that does the job.",
            types=IAM_TYPES,
            check=dict.fromkeys(IAM_TYPES, _basic_roles),
            category=Category.IDENTITY,
            params={"forbiddenRoles": ["roles/owner", "roles/editor"]},
            param_docs={"forbiddenRoles": "Roles no binding may grant."},
        ),
        resource_policy(
            "gcp-iam-binding-least-privilege",
            "Project-wide grants must not let a principal act as every service account "
            "(serviceAccountUser, TokenCreator, Admin, KeyAdmin), no service account may hold a "
            "project-wide administrator role, and default service accounts get no grants. Fix: "
            "grant on the one service account that needs it, and run as dedicated accounts.",
            types=IAM_TYPES,
            check={t: functools.partial(_least_privilege, kind=t) for t in IAM_TYPES},
            category=Category.IDENTITY,
            params={"projectWideForbiddenRoles": SERVICE_ACCOUNT_ROLES},
            param_docs={
                "projectWideForbiddenRoles": "Roles no project, folder or organization binding "
                "may grant."
            },
        ),
        resource_policy(
            "gcp-container-cluster-logging",
            "GKE must send system and workload logs and metrics to Cloud Logging/Monitoring. "
            "Fix: leave loggingService/monitoringService at their defaults and keep "
            "loggingConfig.enableComponents non-empty.",
            types=[GKE_CLUSTER],
            check=_gke_logging,
            category=Category.LOGGING,
        ),
        resource_policy(
            "gcp-container-cluster-patched",
            "GKE must follow a release channel, never run as an alpha cluster, and be "
            "VPC-native (alias IPs). Fix: set releaseChannel.channel='REGULAR', leave "
            "enableKubernetesAlpha unset, and networkingMode='VPC_NATIVE'.",
            types=[GKE_CLUSTER],
            check=_gke_cluster_basics,
            category=exp,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "gcp-container-cluster-separate-node-pools",
            "GKE node pools are separate resources, never inline in the cluster (an inline "
            "change recreates the cluster). Fix: move nodePools to gcp.container.NodePool.",
            types=[GKE_CLUSTER],
            check=_gke_separate_pools,
            category=Category.RESILIENCE,
            severity=Severity.LOW,
        ),
        resource_policy(
            "gcp-container-nodepool-cos-image",
            "GKE nodes must run Container-Optimized OS (read-only root, minimal packages). Fix: "
            "set nodeConfig.imageType='COS_CONTAINERD'.",
            types=[GKE_NODE_POOL],
            check=_gke_pool_image,
            category=exp,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "gcp-compute-subnetwork-private-google-access",
            "Subnetworks must reach Google APIs privately, so private nodes need no public IP. "
            "Fix: set privateIpGoogleAccess=True.",
            types=[SUBNETWORK],
            check=_private_google_access,
            category=exp,
            severity=Severity.LOW,
        ),
        resource_policy(
            "gcp-container-cluster-workload-identity",
            "GKE must use Workload Identity, so pods never see the node's service account. Fix: "
            "set workloadIdentityConfig.workloadPool='<project>.svc.id.goog'.",
            types=[GKE_CLUSTER],
            check=_gke_workload_identity,
            category=Category.IDENTITY,
        ),
        resource_policy(
            "gcp-container-nodepool-metadata-server",
            "GKE nodes must serve pods the GKE metadata server (no node credentials, no legacy "
            "endpoints). Fix: set nodeConfig.workloadMetadataConfig.mode='GKE_METADATA' on the "
            "cluster's default nodeConfig and every node pool.",
            types=[GKE_CLUSTER, GKE_NODE_POOL],
            check={GKE_CLUSTER: _gke_cluster_metadata, GKE_NODE_POOL: _gke_pool_metadata},
            category=exp,
        ),
        resource_policy(
            "gcp-container-nodepool-shielded-nodes",
            "GKE nodes must be shielded (secure boot, integrity monitoring). Fix: keep "
            "enableShieldedNodes=True on the cluster and set "
            "nodeConfig.shieldedInstanceConfig.enableSecureBoot=True on every node pool.",
            types=[GKE_CLUSTER, GKE_NODE_POOL],
            check={GKE_CLUSTER: _gke_cluster_shielded, GKE_NODE_POOL: _gke_pool_shielded},
            category=exp,
        ),
        resource_policy(
            "gcp-container-nodepool-auto-repair-upgrade",
            "GKE node pools must repair and upgrade themselves, so nodes get security patches. "
            "Fix: set management.autoRepair=True and management.autoUpgrade=True.",
            types=[GKE_NODE_POOL],
            check=_gke_pool_management,
            category=exp,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "gcp-container-cluster-network-policy",
            "GKE must enforce Kubernetes NetworkPolicy. Fix: set datapathProvider="
            "'ADVANCED_DATAPATH' (Dataplane V2) or networkPolicy.enabled=True.",
            types=[GKE_CLUSTER],
            check=_gke_network_policy,
            category=exp,
        ),
        resource_policy(
            "gcp-container-cluster-binary-authorization",
            "GKE must check images against Binary Authorization before they run. Fix: set "
            "binaryAuthorization.evaluationMode='PROJECT_SINGLETON_POLICY_ENFORCE'.",
            types=[GKE_CLUSTER],
            check=_gke_binary_authorization,
            category=exp,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "gcp-sql-databaseinstance-logging-flags",
            "Cloud SQL for PostgreSQL must log connections, disconnections, lock waits, "
            "checkpoints and temp files, and audit with pgAudit; statement durations must not "
            "be logged (they carry query text). Fix: set settings.databaseFlags to the "
            "required values.",
            types=[SQL_INSTANCE],
            check=_sql_flags,
            category=Category.LOGGING,
            params={"requiredFlags": REQUIRED_PG_FLAGS},
            param_docs={"requiredFlags": "Flags every PostgreSQL instance must set, 'name=value'."},
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "gcp-sql-databaseinstance-customer-managed-key",
            "Cloud SQL must encrypt with a customer-managed Cloud KMS key. Fix: set "
            "encryptionKeyName (the Cloud SQL service agent needs the key's encrypter role).",
            types=[SQL_INSTANCE],
            check=requires("encryptionKeyName", "a Cloud KMS key"),
            category=enc,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "gcp-redis-instance-customer-managed-key",
            "Memorystore for Redis must encrypt with a customer-managed Cloud KMS key. Fix: set "
            "customerManagedKey.",
            types=[REDIS_INSTANCE],
            check=requires("customerManagedKey", "a Cloud KMS key"),
            category=enc,
            severity=Severity.MEDIUM,
        ),
        resource_policy(
            "gcp-sql-databaseinstance-high-availability",
            "In production Cloud SQL is regional (a standby in another zone) with point-in-time "
            "recovery. Fix: set settings.availabilityType='REGIONAL' and "
            "settings.backupConfiguration.pointInTimeRecoveryEnabled=True.",
            types=[SQL_INSTANCE],
            check=_sql_ha,
            category=Category.RESILIENCE,
            non_production=PROD_ONLY,
        ),
        resource_policy(
            "gcp-redis-instance-high-availability",
            "In production Memorystore keeps a replica in another zone. Fix: set "
            "tier='STANDARD_HA'.",
            types=[REDIS_INSTANCE],
            check=_redis_ha,
            category=Category.RESILIENCE,
            non_production=PROD_ONLY,
        ),
        resource_policy(
            "gcp-compute-subnetwork-flow-logs",
            "Subnetworks must record VPC flow logs. Fix: set logConfig (aggregationInterval, "
            "flowSampling, metadata).",
            types=[SUBNETWORK],
            check=_subnet_flow_logs,
            category=Category.LOGGING,
            severity=Severity.MEDIUM,
        ),
    ]
