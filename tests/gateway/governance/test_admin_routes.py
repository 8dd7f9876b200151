"""The admin API is one route table; the console and ``aigw admin`` call only its routes."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from gateway_app.config import parse
from gateway_app.errors import GatewayError
from gateway_app.governance.admin import AdminApi
from gateway_app.governance.rbac import READ_METHODS, Principal, Role
from gateway_app.governance.service import Governance
from gateway_app.governance.storage import Database
from gateway_app.state.governance import InProcessGovernanceState
from tests.gateway.conftest import STANDARD_MODELS

ROOT = Path(__file__).resolve().parents[3]
ADMIN = "adm"


class People:
    """Stands in for gateway_app.identity: a cookie names the person's principal."""

    def __init__(self) -> None:
        self.revoked: list[tuple[str, str]] = []

    async def principal(self, headers: Mapping[str, str], method: str) -> Principal | None:
        cookie = headers.get("cookie")
        return None if cookie is None else Principal(cookie, "ads")

    async def revoke_person(self, by: Principal, subject: str) -> int:
        self.revoked.append((by.actor, subject))
        return 2


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[AdminApi]:
    raw = {
        "providers": {"openai": {"type": "openai"}, "anthropic": {"type": "anthropic"}},
        "models": STANDARD_MODELS,
        "governance": {"enabled": True},
    }
    governance = Governance(
        parse(raw),
        state=InProcessGovernanceState(),
        db=Database(f"sqlite:///{tmp_path / 'gov.sqlite3'}"),
        admin_key=ADMIN,
        secret=b"s",
    )
    loop = asyncio.new_event_loop()  # the registry and the audit drainer run on it
    loop.run_until_complete(governance.start())
    api = AdminApi(governance)
    api.attach_people(People())
    LOOPS[id(api)] = loop
    try:
        yield api
    finally:
        loop.run_until_complete(governance.stop())
        loop.close()


LOOPS: dict[int, asyncio.AbstractEventLoop] = {}


def call(admin: AdminApi, method: str, path: str, who: str, body: Any = None) -> Any:
    headers = {"authorization": f"Bearer {who}"} if who.startswith(("adm", "sk-")) else {}
    if not headers:
        headers["cookie"] = who  # a console session of that role (see People)
    query = path.partition("?")[2]
    served = admin.serve(method, path.partition("?")[0], query, headers, body)
    return LOOPS[id(admin)].run_until_complete(served)


def refusal(admin: AdminApi, *args: Any) -> tuple[int, str]:
    with pytest.raises(GatewayError) as caught:
        call(admin, *args)
    return caught.value.status, caught.value.message


def test_every_route_declares_its_role_and_whether_it_writes(admin: AdminApi) -> None:
    for route in admin.routes:
        assert route.writes == (route.method not in READ_METHODS), route
        assert route.role.rank >= (Role.TEAM_ADMIN if route.writes else Role.VIEWER).rank, route
    assert {(r.method, r.pattern) for r in admin.routes if r.role is Role.ADMIN} == {
        ("POST", "/auth/sessions/revoke")
    }


def _called_paths() -> list[tuple[str, str]]:
    """Every (method, literal path) the console's script and ``aigw admin`` send."""
    script = (ROOT / "gateway_app/console/static/app.js").read_text()
    cli = (ROOT / "gateway_app/admin_cli.py").read_text()
    found = re.findall(r"api\('([A-Z]+)', [`']([^`']+)[`']", script)
    found += re.findall(r'\.call\("([A-Z]+)", f?"([^"]+)"[,)]', cli)
    # Template parts (${...} in the script, {...} in the CLI) stand for one path segment.
    return [
        (method, re.sub(r"\$?\{[^}]*\}", "x", path).partition("?")[0])
        for method, path in found
        if path.startswith(("/admin/", "/auth/sessions"))
    ]


def test_the_console_and_the_cli_call_only_declared_routes(admin: AdminApi) -> None:
    calls = _called_paths()
    assert len(calls) >= 20, calls  # the patterns above still find the calls
    for method, path in calls:
        route, _ = admin.route(method, path)
        assert route.method == method


def test_roles_and_writes_are_checked_per_route(admin: AdminApi) -> None:
    status, made = call(admin, "POST", "/admin/keys", ADMIN, {"team_id": "ads", "project_id": "p"})
    assert status == 201
    member = made["key"]
    _, lead = call(
        admin,
        "POST",
        "/admin/keys",
        ADMIN,
        {"team_id": "ads", "project_id": "p2", "role": "team_admin"},
    )
    team_admin = lead["key"]
    # A member's key calls models only.
    assert refusal(admin, "GET", "/admin/keys", member) == (
        403,
        "This key may not use the admin API.",
    )
    # A viewer (a console session) reads, never writes.
    assert call(admin, "GET", "/admin/keys", "viewer")[0] == 200
    assert refusal(admin, "POST", "/admin/keys", "viewer", {"project_id": "q"}) == (
        403,
        "Viewers may read only; ask an admin of the team for this change.",
    )
    # A team admin writes its team's records but may not end people's sessions.
    assert call(admin, "POST", f"/admin/keys/{made['id']}/revoke", team_admin)[0] == 200
    assert refusal(admin, "POST", "/auth/sessions/revoke", team_admin, {"subject": "s"}) == (
        403,
        "Only org admins may end other people's sessions.",
    )
    assert call(admin, "POST", "/auth/sessions/revoke", ADMIN, {"subject": "s"}) == (
        200,
        {"subject": "s", "sessions_ended": 2},
    )
    # Unknown paths are 404s; a known path with another method a 405 naming the allowed ones.
    assert refusal(admin, "GET", "/admin/nothing", ADMIN)[0] == 404
    with pytest.raises(GatewayError) as caught:
        call(admin, "PATCH", "/admin/limits/team/ads", ADMIN)
    assert caught.value.status == 405 and caught.value.headers == {"allow": "GET, PUT, DELETE"}
    # Strangers learn nothing, not even which paths exist.
    assert refusal(admin, "GET", "/admin/nothing", "sk-aigw-unknown")[0] == 401
