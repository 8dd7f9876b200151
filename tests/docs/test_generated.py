"""Every generated reference block is current, and the generators document what exists.

``python -m docgen --write`` regenerates the blocks; a stale page fails here
with that command in the message.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from docgen import BLOCKS, PAGES, render_page, stale_pages
from docgen.pages import DOCS, blocks_of
from docgen.reference import admin_routes
from tests.gateway.governance.test_gateway_governance import ADMIN, governed


def test_every_generated_page_is_current() -> None:
    assert stale_pages() == [], "stale reference pages: run `python -m docgen --write`"


def test_every_block_is_on_its_page_and_every_page_is_registered() -> None:
    for page, names in PAGES.items():
        assert blocks_of((DOCS / page).read_text()) == list(names), page
    assert {name for names in PAGES.values() for name in names} == set(BLOCKS)
    marked = {
        str(path.relative_to(DOCS))
        for path in DOCS.rglob("*.md")
        if "<!-- generated:" in path.read_text()
    }
    assert marked == set(PAGES), "a page has generated markers docgen does not know"


def test_a_changed_source_makes_its_page_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check can fail: a renderer whose output changes leaves the page stale."""
    page = (DOCS / "reference" / "metrics.md").read_text()
    assert render_page(page) == page
    real = BLOCKS["metrics"]
    monkeypatch.setitem(BLOCKS, "metrics", lambda: real() + "| `aigw_new_total` |\n")
    assert render_page(page) != page


def _concrete(pattern: str) -> str:
    return re.sub(
        r"\{([a-z_]+)\}", lambda m: {"scope": "team", "kind": "usage"}.get(m[1], "x"), pattern
    )


def test_every_documented_admin_route_is_served(
    fake_openai: Any, fake_anthropic: Any, tmp_path: Path
) -> None:
    """The admin API reference lists routes the gateway serves (until the route table
    of issue 23 is the generator's source): none answers 'Unknown admin path'."""
    with governed(fake_openai, fake_anthropic, tmp_path) as (running, _gov):
        client = httpx.Client(base_url=running.url, headers={"authorization": f"Bearer {ADMIN}"})
        for method, pattern, _role, _writes in admin_routes():
            if pattern.startswith("/auth/"):
                continue  # served by people's sign-in (gateway_app/identity/web.py)
            body = {} if method in ("POST", "PUT") else None
            response = client.request(method, _concrete(pattern), json=body)
            assert "Unknown admin path" not in response.text, (method, pattern, response.text)
        unknown = client.get("/admin/no-such-route")
        assert "Unknown admin path" in unknown.text  # the probe can tell
    web = (Path(__file__).resolve().parents[2] / "gateway_app" / "identity" / "web.py").read_text()
    assert '("POST", "/auth/sessions/revoke")' in web
