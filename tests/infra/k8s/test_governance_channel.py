"""Issue 29 item 4: the governance plane's channel between the clouds, in the prod plan.

Under mocks the prod stack (three clouds, so the plane is on by default) plans on
every cloud: a load balancer of its own for the internal port only, admitting the
other clouds' NAT egress addresses (taken from their outputs); TLS at Envoy with a
certificate for the channel's own name, and that name in the global zone; the
internal port admitted by a NetworkPolicy from that fleet only; the gateway's
``governance.global`` built from the clusters' OIDC issuer outputs, parsed here by
the gateway's own config model; the projected ServiceAccount token with the audience
``aigw-governance``. Where each cluster's token issuer comes from, per provider docs:

* EKS: ``cluster.identity.oidc.issuer`` ("aws eks describe-cluster --query
  cluster.identity.oidc.issuer"; https://docs.aws.amazon.com/eks/latest/APIReference/API_OIDC.html);
* AKS: ``oidcIssuerProfile.issuerUrl`` ("az aks show --query oidcIssuerProfile.issuerUrl";
  https://azure.github.io/azure-workload-identity/docs/installation/managed-clusters.html);
* GKE: ``https://container.googleapis.com/v1/projects/<project>/locations/<location>/clusters/<name>``
  (the cluster's public OIDC discovery document is under that URL; GKE's
  WorkloadIdentityConfig ``issuerUri``:
  https://docs.cloud.google.com/kubernetes-engine/multi-cloud/docs/reference/rest/v1/WorkloadIdentityConfig).

``loadBalancerSourceRanges`` is Kubernetes' own field ("If specified and supported by
the platform, traffic through the cloud-provider load-balancer will be restricted to the
specified client IPs"): the AWS Load Balancer Controller writes it into the NLB's
security group, AKS into the cluster's NSG, GKE into a VPC firewall rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway_app.config import parse as parse_gateway_config
from infra.config import ConfigError, parse
from infra.offline import Plan
from infra.offline.engine import reveal
from tests.infra.k8s.test_envoy_gateway_schemas import errors as envoy_gateway_errors
from tests.infra.k8s.test_gateway_api_schemas import run_judge

CLOUDS = ("aws", "azure", "gcp")
ENVOY = "kubernetes:gateway.envoyproxy.io/v1alpha1:"
GATEWAY_API = "kubernetes:gateway.networking.k8s.io/v1:"


@pytest.fixture(scope="module")
def prod(plans: dict[str, Plan]) -> Plan:
    return plans["prod"]


def _egress(plan: Plan) -> dict[str, set[str]]:
    """Every cloud's NAT egress addresses, from the resources' outputs."""
    aws = {r.outputs["publicIp"] for r in plan.of_type("aws:ec2/eip:Eip") if "nat-eip" in r.name}
    azure = {
        r.outputs["ipAddress"]
        for r in plan.of_type("azure-native:network:PublicIPAddress")
        if r.name.endswith("-egress")
    }
    gcp = {r.outputs["address"] for r in plan.of_type("gcp:compute/address:Address")}
    return {"aws": aws, "azure": azure, "gcp": gcp}


def _issuers(plan: Plan) -> dict[str, str]:
    """Every cluster's service-account token issuer, from the clusters' outputs."""
    eks = plan.one("aws:eks/cluster:Cluster").outputs["identities"][0]["oidcs"][0]["issuer"]
    aks = plan.one("azure-native:containerservice:ManagedCluster").outputs["oidcIssuerProfile"]
    gke = plan.one("gcp:container/cluster:Cluster")
    project, location = gke.outputs.get("project") or gke.get("project"), gke.get("location")
    return {
        "aws": eks,
        "azure": aks["issuerURL"],  # the ARM property; az CLI shows it as issuerUrl
        "gcp": f"https://container.googleapis.com/v1/projects/{project}/locations/{location}"
        f"/clusters/{gke.outputs['name']}",
    }


def _in_cloud(plan: Plan, type_token: str, cloud: str, suffix: str = "") -> dict[str, Any]:
    (found,) = [r for r in plan.of_type(type_token) if r.name == f"gateway-{cloud}{suffix}"]
    return reveal(dict(found.inputs))


def test_every_cloud_admits_exactly_the_other_clouds_nat_addresses(prod: Plan) -> None:
    egress = _egress(prod)
    assert all(egress.values()), egress  # each cloud has a static egress address
    for cloud in CLOUDS:
        proxy = _in_cloud(prod, f"{ENVOY}EnvoyProxy", cloud, "-governance-envoy-proxy")
        service = proxy["spec"]["provider"]["kubernetes"]["envoyService"]
        others = {f"{ip}/32" for other in CLOUDS if other != cloud for ip in egress[other]}
        assert set(service["loadBalancerSourceRanges"]) == others, cloud
        assert service["type"] == "LoadBalancer"
    # AKS: the channel's own static public IP, never the public ingress's.
    azure = _in_cloud(prod, f"{ENVOY}EnvoyProxy", "azure", "-governance-envoy-proxy")
    pip = azure["spec"]["provider"]["kubernetes"]["envoyService"]["annotations"]
    assert pip["service.beta.kubernetes.io/azure-pip-name"].endswith("-governance")


def test_each_configmap_holds_a_plane_the_gateway_accepts(prod: Plan) -> None:
    issuers = _issuers(prod)
    assert issuers["aws"].startswith("https://oidc.eks.")
    for cloud in CLOUDS:
        config_map = _in_cloud(prod, "kubernetes:core/v1:ConfigMap", cloud, "-config")
        text = config_map["data"]["config.yaml"]
        assert isinstance(text, str)
        document = yaml.safe_load(text)
        environ = {name: "set" for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
        plane = parse_gateway_config(document, environ=environ).governance.global_
        assert plane is not None
        assert (plane.cloud, plane.home, plane.port) == (cloud, "aws", 8443)
        assert plane.audience == "aigw-governance"
        assert sorted(plane.peers) == sorted(CLOUDS)
        for name, peer in plane.peers.items():
            assert peer.url == f"https://governance-{name}.ai.example.com"
            assert peer.issuer == issuers[name], name
            assert peer.subject == "system:serviceaccount:ai-gateway:ai-gateway"


def test_the_pods_get_the_internal_port_and_their_own_token(prod: Plan) -> None:
    for cloud in CLOUDS:
        deployment = _in_cloud(prod, "kubernetes:apps/v1:Deployment", cloud, "-deployment")
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"http": 8080, "internal": 8443}
        (token,) = [v for v in pod["volumes"] if v["name"] == "governance-token"]
        (source,) = token["projected"]["sources"]
        assert source["serviceAccountToken"]["audience"] == "aigw-governance"
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == "governance-token"]
        assert f"{mount['mountPath']}/{source['serviceAccountToken']['path']}" == (
            "/var/run/secrets/aigw-governance/token"
        )
        # The migration Job needs no channel token.
        job = _in_cloud(prod, "kubernetes:batch/v1:Job", cloud, "-migrate")
        assert "governance-token" not in {
            v["name"] for v in job["spec"]["template"]["spec"]["volumes"]
        }


def test_the_internal_port_is_reached_only_through_the_channel(prod: Plan) -> None:
    for cloud in CLOUDS:
        route = _in_cloud(prod, f"{GATEWAY_API}HTTPRoute", cloud, "-governance-route")
        (rule,) = route["spec"]["rules"]
        assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/internal/v1/"}}]
        assert [ref["port"] for ref in rule["backendRefs"]] == [8443]
        gateway = _in_cloud(prod, f"{GATEWAY_API}Gateway", cloud, "-governance-gateway")
        (listener,) = gateway["spec"]["listeners"]
        assert (listener["protocol"], listener["port"]) == ("HTTPS", 443)
        assert listener["hostname"] == f"governance-{cloud}.ai.example.com"
        # The public edge never routes to the internal port.
        public = _in_cloud(prod, f"{GATEWAY_API}HTTPRoute", cloud, "-https-route")
        ports = {ref["port"] for r in public["spec"]["rules"] for ref in r.get("backendRefs", [])}
        assert 8443 not in ports
        policy = _in_cloud(
            prod,
            "kubernetes:networking.k8s.io/v1:NetworkPolicy",
            cloud,
            "-governance-network-policy",
        )
        (ingress,) = policy["spec"]["ingress"]
        assert [p["port"] for p in ingress["ports"]] == [8443]
        (peer,) = ingress["from"]
        labels = peer["podSelector"]["matchLabels"]
        assert labels["gateway.envoyproxy.io/owning-gateway-name"] == "ai-gateway-governance"
        # The public proxies' rule stays on 8080 only.
        traffic = _in_cloud(
            prod, "kubernetes:networking.k8s.io/v1:NetworkPolicy", cloud, "-gateway-traffic"
        )
        assert [p["port"] for r in traffic["spec"]["ingress"] for p in r["ports"]] == [8080]


def test_each_channel_name_is_in_the_global_zone(prod: Plan) -> None:
    records = {r.get("name"): r for r in prod.of_type("aws:route53/record:Record")}
    for cloud in CLOUDS:
        record = records[f"governance-{cloud}.ai.example.com"]
        assert record.get("records")  # the channel load balancer's address
    assert prod.outputs["governanceUrls"] == {
        cloud: f"https://governance-{cloud}.ai.example.com" for cloud in CLOUDS
    }


def test_the_channel_objects_pass_their_schemas(prod: Plan, judge: Path, tmp_path: Path) -> None:
    """The Gateway API and cert-manager objects by their published models, the Envoy Gateway
    policy by the pinned release's CRD schema."""
    objects = []
    for resource in prod.resources:
        if "-governance-" not in resource.name or not resource.type.startswith("kubernetes:"):
            continue
        _, api_version, kind = resource.type.split(":")
        inputs = reveal(resource.inputs)
        manifest = {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": inputs["metadata"],
            "spec": inputs["spec"],
        }
        if kind == "ClientTrafficPolicy":
            assert envoy_gateway_errors(manifest) == []
        elif kind in {"Gateway", "HTTPRoute", "Certificate"}:
            objects.append(manifest)
    assert sorted(m["kind"] for m in objects) == sorted(["Gateway", "HTTPRoute", "Certificate"] * 3)
    code, verdict = run_judge(judge, objects, tmp_path)
    assert verdict["errors"] == []
    assert code == 0


BASE = {
    "environment": "dev",
    "tags": {"owner": "o", "costCenter": "c"},
    "dns": {"domain": "ai.example.com", "provider": "route53"},
    "aws": {"enabled": True, "region": "us-east-1"},
    "providerKeys": {"openai": "sk-test"},
}


@pytest.mark.parametrize(
    ("governance", "clouds", "message"),
    [
        ({"enabled": True}, ("aws",), "governance.enabled: is true but only one cloud"),
        ({"home": "gcp"}, ("aws", "azure"), "governance.home: 'gcp' is not an enabled cloud"),
        ({"settings": {"peers": {}}}, ("aws", "azure"), "'peers' cannot be set here"),
        ({"settings": {"lease_fraction": 2}}, ("aws", "azure"), "lease_fraction: Input should"),
        ({"extraSourceCidrs": ["0.0.0.0/0"]}, ("aws", "azure"), "to the whole internet"),
        ({"port": 80}, ("aws", "azure"), "governance.port"),
    ],
)
def test_a_bad_governance_section_names_the_key_and_the_fix(
    governance: dict[str, Any], clouds: tuple[str, ...], message: str
) -> None:
    values: dict[str, Any] = {**BASE, "governance": governance}
    if "azure" in clouds:
        values["azure"] = {"enabled": True, "location": "westeurope"}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse(values)


def test_the_plane_is_on_by_default_only_with_two_clouds() -> None:
    one = parse(BASE)
    assert not one.governance.active(one.enabled_clouds)
    two = parse({**BASE, "azure": {"enabled": True, "location": "westeurope"}})
    assert two.governance.active(two.enabled_clouds)
    assert two.governance.home_cloud(two.enabled_clouds).value == "aws"
    off = parse(
        {
            **BASE,
            "azure": {"enabled": True, "location": "westeurope"},
            "governance": {"enabled": False},
        }
    )
    assert not off.governance.active(off.enabled_clouds)
