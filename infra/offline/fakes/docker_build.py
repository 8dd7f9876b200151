"""Fakes for pulumi-docker-build: a pushed image reports its tag and content digest.

``ref`` is what a real push returns for a tagged image: the first tag pinned
by digest (``<repository>:<tag>@sha256:<64 hex>``), so the Deployment that
uses it runs exactly the pushed content.
"""

from __future__ import annotations

from typing import Any

from infra.offline.fakes import FakeContext, fake_hex, resource


@resource("docker-build:index:Image")
def _image(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    tags = [str(t) for t in inputs.get("tags") or []]
    digest = "sha256:" + fake_hex("image", name, *tags, length=64)
    return {
        "id": digest,
        "digest": digest,
        "ref": f"{tags[0]}@{digest}" if tags else digest,
        "contextHash": fake_hex("context", name, length=64),
    }
