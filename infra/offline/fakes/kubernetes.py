"""Fakes for pulumi-kubernetes: objects get a uid and echo their metadata; LoadBalancer
Services get an address and Helm releases a deployed status."""

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
        keys = [str(key) for key in annotations]
        if any(key.startswith("service.beta.kubernetes.io/aws-") for key in keys):
            address = {"hostname": f"k8s-{digest}.elb.{ctx.aws_region}.amazonaws.com"}
        else:
            # A public address (not a documentation range): the global layer
            # refuses to health-check a non-routable one. 20/8 is in Azure's
            # public space, 34/8 in Google's.
            first = (
                20
                if any(key.startswith("service.beta.kubernetes.io/azure-") for key in keys)
                else 34
            )
            octets = ".".join(str(int(digest[i : i + 2], 16) % 254 + 1) for i in (0, 2, 4))
            address = {"ip": f"{first}.{octets}"}
        status = {"loadBalancer": {"ingress": [address]}}
    return {"spec": spec, "status": status}


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
