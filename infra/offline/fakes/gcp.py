"""Fakes for pulumi-gcp: self links, ids and the client config."""

from __future__ import annotations

from typing import Any

from infra.offline.fakes import FakeContext, fake_hex, function, generic


@generic("gcp")
def _gcp_generic(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    service, kind = token.split(":")[1].split("/")
    project = inputs.get("project") or ctx.gcp_project
    physical = inputs.get("name") or f"{name}-{fake_hex(name, length=7)}"
    path = f"projects/{project}/{kind}s/{physical}"
    return {
        "id": path,
        "name": physical,
        "project": project,
        "selfLink": f"https://www.googleapis.com/{service}/v1/{path}",
        "effectiveLabels": inputs.get("labels") or {},
        "terraformLabels": inputs.get("labels") or {},
    }


@function("gcp:organizations/getClientConfig:getClientConfig")
def _client_config(ctx: FakeContext, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "offline",
        "accessToken": "offline-access-token",
        "project": ctx.gcp_project,
        "region": ctx.gcp_region,
        "zone": f"{ctx.gcp_region}-a",
    }


@function("gcp:organizations/getProject:getProject")
def _project(ctx: FakeContext, args: dict[str, Any]) -> dict[str, Any]:
    project = args.get("projectId") or ctx.gcp_project
    return {
        "id": f"projects/{project}",
        "projectId": project,
        "number": "123456789012",
        "name": project,
    }
