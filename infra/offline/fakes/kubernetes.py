"""Fakes for pulumi-kubernetes: objects get a uid and echo their metadata."""

from __future__ import annotations

from typing import Any

from infra.offline.fakes import FakeContext, fake_hex, generic


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
