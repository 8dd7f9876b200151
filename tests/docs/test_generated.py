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

from docgen import BLOCKS, PAGES, reference, render_page, stale_pages
from docgen.pages import DOCS, blocks_of
from docgen.reference import admin_routes


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


def test_the_admin_reference_is_the_route_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """The page lists ``AdminApi.routes`` as the gateway builds it, sign-in's route included;
    a route the table gains without a description fails the generator, naming it."""
    from gateway_app.governance.admin import AdminRoute
    from gateway_app.governance.rbac import Role

    routes = admin_routes()
    page = (DOCS / "reference" / "admin-api.md").read_text()
    for route in routes:
        row = f"| `{route.method}` | `{route.pattern}` | `{route.role.value}` |"
        assert row in page, row
    assert ("POST", "/auth/sessions/revoke") in {(r.method, r.pattern) for r in routes}

    async def handler(call: Any) -> tuple[int, Any]:
        return 200, {}

    extra = AdminRoute("GET", "/admin/new-thing", Role.VIEWER, False, handler)
    monkeypatch.setattr(reference, "admin_routes", lambda: [*routes, extra])
    with pytest.raises(ValueError, match=r"describe \[\('GET', '/admin/new-thing'\)\]"):
        reference.admin_api()


def test_every_route_of_the_table_is_served(
    openid_provider: Any, fake_openai: Any, fake_anthropic: Any, tmp_path: Path
) -> None:
    """A live gateway with people's sign-in serves every route the reference lists: none
    answers the 404 of an unknown path or a 405."""
    from tests.gateway.identity.harness import ADMIN, console_gateway

    routes = admin_routes()
    with console_gateway(openid_provider, fake_openai, fake_anthropic, tmp_path) as console:
        client = httpx.Client(base_url=console.url, headers={"authorization": f"Bearer {ADMIN}"})
        for route in routes:
            body = {} if route.method in ("POST", "PUT") else None
            response = client.request(route.method, _concrete(route.pattern), json=body)
            code = response.json().get("error", {}).get("code")
            assert response.status_code != 405 and code != "unknown_url", (
                route.method,
                route.pattern,
                response.text,
            )
        # The probes can tell: an unknown path, and a known one with another method.
        assert client.get("/admin/no-such-route").json()["error"]["code"] == "unknown_url"
        assert client.request("PATCH", "/admin/keys").status_code == 405
