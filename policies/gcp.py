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

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import ResourceValidationPolicy, Severity

from policies.config import Category
from policies.framework import (
    API_CIDRS,
    API_CIDRS_DOC,
    PUBLIC_PORTS,
    PUBLIC_PORTS_DOC,
    cidr_violations,
    get,
    is_true,
    is_world,
    items,
    port_spec_outside,
    resource_policy,
)

REDIS_INSTANCE = "gcp:redis/instance:Instance"
SQL_INSTANCE = "gcp:sql/databaseInstance:DatabaseInstance"
GKE_CLUSTER = "gcp:container/cluster:Cluster"
GKE_NODE_POOL = "gcp:container/nodePool:NodePool"
KMS_CRYPTO_KEY = "gcp:kms/cryptoKey:CryptoKey"
FIREWALL = "gcp:compute/firewall:Firewall"

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


def _sql_private(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    ip = get(props, "settings.ipConfiguration", {})
    if get(ip, "ipv4Enabled", True) is not False:
        yield (
            "settings.ipConfiguration.ipv4Enabled is not false: set ipv4Enabled=False and "
            "privateNetwork to the VPC (private service access)"
        )
    for network in items(ip, "authorizedNetworks"):
        if is_world(get(network, "value")):
            yield ("settings.ipConfiguration.authorizedNetworks contains 0.0.0.0/0: remove it")


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
    if not any(is_world(r) for r in items(props, "sourceRanges")):
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
    ]
