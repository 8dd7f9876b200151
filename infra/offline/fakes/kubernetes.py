"""Fakes for pulumi-kubernetes: objects get a uid and echo their metadata; LoadBalancer
Services and Gateways get their cloud's address and Helm releases a deployed status."""

from __future__ import annotations

from typing import Any

from infra.offline.fakes import FakeContext, fake_hex, generic, resource


@generic("kubernetes")
def _kubernetes_generic(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    metadata = dict(inputs.get("metadata") or {})
    metadata.setdefault("name", name)
    metadata["uid"] = fake_hex("k8s", name, length=32)
    namespace = metadata.get("namespace")
    return {
        "id": f"{namespace}/{metadata['name']}" if namespace else metadata["name"],
        "metadata": metadata,
        "status": {},
    }


@resource("kubernetes:core/v1:Service")
def _service(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """A LoadBalancer Service gets its cloud's address; other Services a cluster IP.

    AWS load balancers are reached by DNS name, Azure's and GCP's by IP; the
    Service's annotations say which cloud provisions it.
    """
    spec = dict(inputs.get("spec") or {})
    digest = fake_hex("svc", name, length=8)
    spec.setdefault("clusterIP", f"10.100.{int(digest[:2], 16)}.{int(digest[2:4], 16)}")
    status: dict[str, Any] = {}
    if spec.get("type") == "LoadBalancer":
        annotations = (inputs.get("metadata") or {}).get("annotations") or {}
        status = {"loadBalancer": {"ingress": [_load_balancer_address(ctx, annotations, digest)]}}
    return {"spec": spec, "status": status}


def _load_balancer_address(
    ctx: FakeContext, annotations: dict[str, Any], digest: str
) -> dict[str, str]:
    """The address a cloud gives a LoadBalancer Service with these annotations.

    AWS load balancers are reached by DNS name, Azure's and GCP's by IP. A
    public address (not a documentation range): the global layer refuses to
    health-check a non-routable one. 20/8 is in Azure's public space, 34/8 in
    Google's.
    """
    keys = [str(key) for key in annotations]
    if any(key.startswith("service.beta.kubernetes.io/aws-") for key in keys):
        return {"hostname": f"k8s-{digest}.elb.{ctx.aws_region}.amazonaws.com"}
    first = 20 if any(key.startswith("service.beta.kubernetes.io/azure-") for key in keys) else 34
    octets = ".".join(str(int(digest[i : i + 2], 16) % 254 + 1) for i in (0, 2, 4))
    return {"ip": f"{first}.{octets}"}


@resource("kubernetes:gateway.networking.k8s.io/v1:Gateway")
def _gateway(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """A programmed Gateway: the address of the LoadBalancer Service Envoy Gateway made for it.

    Envoy Gateway copies ``spec.infrastructure.annotations`` onto that Service,
    so they decide the cloud's kind of address as they do for a Service.
    """
    spec = inputs.get("spec") or {}
    annotations = (spec.get("infrastructure") or {}).get("annotations") or {}
    address = _load_balancer_address(ctx, annotations, fake_hex("gateway", name, length=8))
    kind, value = next(iter(address.items()))
    return {
        "status": {
            "addresses": [
                {"type": "Hostname" if kind == "hostname" else "IPAddress", "value": value}
            ],
            "conditions": [
                {"type": "Accepted", "status": "True", "reason": "Accepted"},
                {"type": "Programmed", "status": "True", "reason": "Programmed"},
            ],
        }
    }


@resource("kubernetes:helm.sh/v3:Release")
def _release(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """A deployed Helm release reports its name, namespace, chart and version."""
    return {
        "status": {
            "name": inputs.get("name", name),
            "namespace": inputs.get("namespace", "default"),
            "chart": inputs.get("chart", ""),
            "version": inputs.get("version", ""),
            "status": "deployed",
            "revision": 1,
        }
    }
