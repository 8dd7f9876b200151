"""The session store's contract, run against both implementations (memory and real Redis),
and the sign-in configuration: role rules, and what a bad ``identity`` section says."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from gateway_app.config import ConfigError, parse
from gateway_app.config.identity import RoleMapping
from gateway_app.identity.roles import assign
from gateway_app.identity.sessions import (
    InProcessSessionStore,
    LoginAttempt,
    RedisSessionStore,
    Session,
)
from tests.gateway.conftest import run_async
from tests.gateway.governance.services import RedisServer
from tests.gateway.identity.harness import Clock

IDLE, ABSOLUTE = 600.0, 3600.0


def _store(kind: str, redis_server: RedisServer, clock: Clock) -> Any:
    timeouts: dict[str, Any] = {"idle_timeout_s": IDLE, "absolute_timeout_s": ABSOLUTE}
    if kind == "memory":
        return InProcessSessionStore(clock=clock, **timeouts)
    return RedisSessionStore.from_url(redis_server.url, clock=clock, **timeouts)


@pytest.fixture(params=["memory", "redis"])
def make_store(request: Any, redis_server: RedisServer) -> Callable[[Clock], Any]:
    return lambda clock: _store(request.param, redis_server, clock)


def _session(clock: Clock, subject: str | None = "bob") -> Session:
    from gateway_app.identity.roles import Person

    now = clock()
    person = Person("https://idp.example", subject, f"{subject}@example.com") if subject else None
    return Session("team_admin", "search", "csrf", now, now, person=person)


def test_timeouts_revocation_and_single_use_state(make_store: Callable[[Clock], Any]) -> None:
    async def scenario() -> None:
        clock = Clock()
        store = make_store(clock)
        try:
            token = await store.create(_session(clock))
            assert (await store.get(token)).person.subject == "bob"
            assert await store.get(token + "x") is None and await store.get("") is None
            # Idle: used every 0.9 idle periods it lives on; then unused for one, it ends.
            for _ in range(3):
                clock.offset += IDLE * 0.9
                assert await store.get(token) is not None
            clock.offset += IDLE + 1
            assert await store.get(token) is None

            # Absolute: however active, it ends absolute_timeout_s after creation.
            token = await store.create(_session(clock))
            start = clock.offset
            while clock.offset - start + IDLE * 0.9 < ABSOLUTE:
                clock.offset += IDLE * 0.9
                assert await store.get(token) is not None
            clock.offset = start + ABSOLUTE + 1
            assert await store.get(token) is None

            # Revocation: one session, or every session of a person.
            one, two, other = (
                await store.create(_session(clock)),
                await store.create(_session(clock)),
                await store.create(_session(clock, "carol")),
            )
            assert await store.delete(one) and await store.get(one) is None
            assert await store.delete_person("bob") == 1  # `one` was already gone
            assert await store.get(two) is None and await store.get(other) is not None

            # A pending sign-in is taken once; a replay (or a guess) finds nothing.
            attempt = LoginAttempt("n", "v", "/console/", "h", clock())
            await store.put_login("state-1", attempt)
            assert await store.take_login("state-1") == attempt
            assert await store.take_login("state-1") is None
            assert await store.take_login("state-2") is None
            await store.put_login("state-3", attempt)
            clock.offset += 601  # pending sign-ins live ten minutes
            assert await store.take_login("state-3") is None
        finally:
            await store.close()

    run_async(scenario())


def test_redis_holds_no_usable_token(redis_server: RedisServer) -> None:
    """Keys are the tokens' SHA-256: a copy of Redis gives no cookie to replay."""

    async def scenario() -> None:
        clock = Clock()
        store = _store("redis", redis_server, clock)
        try:
            token = await store.create(_session(clock, "dana"))
            keys = [k.decode() for k in await store.redis.keys("{aigw}:identity:*")]
            assert any(hashlib.sha256(token.encode()).hexdigest() in k for k in keys)
            assert not any(token in k for k in keys)
            values = [await store.redis.get(k) for k in keys if ":session:" in k]
            assert values and all(token.encode() not in v for v in values)
            # Redis expires the session itself (idle period), not only the gateway's check.
            ttl = await store.redis.pttl(next(k for k in keys if ":session:" in k))
            assert 0 < ttl <= IDLE * 1000
        finally:
            await store.close()

    run_async(scenario())


RULES = [
    RoleMapping(group="platform-admins", role="org_admin"),
    RoleMapping(group="search-leads", role="team_admin", team="search"),
    RoleMapping(email="ceo@example.com", role="viewer"),
    RoleMapping(email_domain="example.com", role="viewer", team="search"),
]


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"groups": ["search-leads", "platform-admins"]}, ("admin", None, 0)),  # first rule wins
        ({"groups": ["search-leads"]}, ("team_admin", "search", 1)),
        ({"groups": "search-leads other"}, ("team_admin", "search", 1)),  # space-separated
        ({"email": "CEO@example.com", "email_verified": True}, ("viewer", None, 2)),
        ({"email": "x@example.com", "email_verified": True}, ("viewer", "search", 3)),
        ({"email": "x@example.com", "email_verified": False}, None),  # unverified: no match
        ({"email": "x@example.com.evil.test", "email_verified": True}, None),
        ({"groups": ["guests"]}, None),
        ({}, None),
    ],
)
def test_role_rules(claims: dict[str, Any], expected: tuple[Any, ...] | None) -> None:
    found = assign(claims, RULES, "groups")
    assert (None if found is None else (found.role, found.team_id, found.rule)) == expected


def test_nested_groups_claim_keycloak() -> None:
    claims = {"realm_access": {"roles": ["search-leads"]}}
    assert assign(claims, RULES, "realm_access.roles").team_id == "search"  # type: ignore[union-attr]


BASE: dict[str, Any] = {
    "providers": {"o": {"type": "openai", "api_key": "k"}},
    "models": {"m": {"deployments": [{"provider": "o", "model": "m"}]}},
}
OIDC = {"issuer": "https://idp.example.com", "client_id": "c", "client_secret": "s"}
GOOD_RULE = {"group": "g", "role": "org_admin"}


@pytest.mark.parametrize(
    ("identity", "message"),
    [
        ({"oidc": OIDC, "roles": [GOOD_RULE]}, "public_url is required"),
        (
            {"public_url": "http://ai.example.com", "oidc": OIDC, "roles": [GOOD_RULE]},
            "must use https",
        ),
        ({"public_url": "https://ai.example.com", "oidc": OIDC}, "nobody could sign in"),
        (
            {"public_url": "https://ai.example.com/gw", "oidc": OIDC, "roles": [GOOD_RULE]},
            "without a path",
        ),
        (
            {
                "public_url": "https://ai.example.com",
                "oidc": {**OIDC, "client_secret": None, "client_secret_env": "MY_SECRET_VAR"},
                "roles": [GOOD_RULE],
            },
            "set MY_SECRET_VAR",
        ),
        (
            {
                "public_url": "https://ai.example.com",
                "oidc": {**OIDC, "algorithms": ["HS256"]},
                "roles": [GOOD_RULE],
            },
            "shared secret",
        ),
        (
            {
                "public_url": "https://ai.example.com",
                "oidc": {**OIDC, "redirect_uri": "https://ai.example.com/callback"},
                "roles": [GOOD_RULE],
            },
            "must end with /auth/callback",
        ),
        (
            {
                "public_url": "https://ai.example.com",
                "oidc": OIDC,
                "roles": [{"group": "g", "role": "team_admin"}],
            },
            "team_admin needs `team`",
        ),
        (
            {
                "public_url": "https://ai.example.com",
                "oidc": OIDC,
                "roles": [{"group": "g", "email": "a@b.c", "role": "viewer"}],
            },
            "exactly one of",
        ),
        (
            {
                "public_url": "https://ai.example.com",
                "oidc": OIDC,
                "roles": [{"group": "g", "role": "owner"}],
            },
            "identity.roles[0].role",
        ),
    ],
)
def test_bad_identity_config_names_the_key_and_the_fix(
    identity: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        parse({**BASE, "identity": identity})
    assert message in str(error.value)


def test_client_secret_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    section = {"public_url": "https://ai.example.com", "roles": [GOOD_RULE]}
    oidc = {"issuer": "https://idp.example.com", "client_id": "c"}
    monkeypatch.delenv("AIGW_OIDC_CLIENT_SECRET", raising=False)
    with pytest.raises(ConfigError, match="set AIGW_OIDC_CLIENT_SECRET"):
        parse({**BASE, "identity": {**section, "oidc": oidc}})
    monkeypatch.setenv("AIGW_OIDC_CLIENT_SECRET", "from-the-secret")
    config = parse({**BASE, "identity": {**section, "oidc": oidc}})
    assert config.identity.oidc.secret == "from-the-secret"  # type: ignore[union-attr]
    public = {**oidc, "token_auth_method": "none"}
    monkeypatch.delenv("AIGW_OIDC_CLIENT_SECRET")
    assert parse({**BASE, "identity": {**section, "oidc": public}}).identity.oidc.secret is None  # type: ignore[union-attr]


def test_no_identity_section_serves_no_console() -> None:
    from gateway_app.app import create_app

    app = create_app(parse(BASE))
    assert app.console is None


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.9", [], "203.0.113.9"),  # no proxy in front: the peer
        ("203.0.113.9", ["10.1.2.3"], "203.0.113.9"),  # an untrusted peer's header is ignored
        ("10.244.0.5", ["198.51.100.7"], "198.51.100.7"),  # the proxy's appended entry
        ("10.244.0.5", ["10.1.2.3, 198.51.100.7"], "198.51.100.7"),  # the left is the client's
        ("10.244.0.5", ["198.51.100.7", "10.244.1.1"], "198.51.100.7"),  # two headers, two hops
        ("10.244.0.5", [], "10.244.0.5"),  # the proxy itself
        ("10.244.0.5", ["not-an-address"], None),  # malformed where the proxy's entry must be
        ("::ffff:10.244.0.5", ["[2001:db8::7]:443"], "2001:db8::7"),
        (None, [], None),
    ],
)
def test_client_address_behind_trusted_proxies(
    peer: str | None, forwarded: list[str], expected: str | None
) -> None:
    import ipaddress

    from gateway_app.identity.network import client_address

    trusted = [ipaddress.ip_network("10.244.0.0/16")]
    found = client_address(peer, forwarded, trusted)
    assert (str(found) if found is not None else None) == expected


def test_console_allow_list_must_be_networks() -> None:
    section = {
        "public_url": "https://ai.example.com",
        "oidc": OIDC,
        "roles": [GOOD_RULE],
        "console_allowed_cidrs": ["10.0.0.1/8"],
    }
    with pytest.raises(ConfigError, match=r"identity\.console_allowed_cidrs"):
        parse({**BASE, "identity": section})


def test_every_admin_call_of_the_console_and_the_cli_is_a_route_of_the_table(
    tmp_path: Any,
) -> None:
    """The console's script and ``aigw admin`` reach the admin API only through its route table
    (each route with its least role): no path either calls is left outside it."""
    import re
    from pathlib import Path

    from gateway_app.governance.admin import AdminApi
    from gateway_app.governance.service import Governance
    from gateway_app.governance.storage import Database
    from gateway_app.identity.web import STATIC_DIR
    from gateway_app.state.governance import InProcessGovernanceState

    config = parse({**BASE, "governance": {"enabled": True}})
    governance = Governance(
        config,
        state=InProcessGovernanceState(),
        db=Database(f"sqlite:///{tmp_path / 'gov.sqlite3'}"),
        admin_key="admin-key-of-this-test",
        secret=b"route-table-test",
    )
    api = AdminApi(governance)
    api.attach_people(object())  # type: ignore[arg-type]
    sources = [
        (STATIC_DIR / "app.js").read_text(),
        (Path(STATIC_DIR).parents[1] / "admin_cli.py").read_text(),
    ]
    called = set()
    for source in sources:
        for literal, joined in re.findall(
            r"[`'\"](/(?:admin|auth/sessions)/[^`'\"?]*)[`'\"?](\s*\+)?", source
        ):
            # Interpolated parts (${...} in JS, {...} in Python) are one segment each; a
            # literal continued with "+ path" is followed by "/<scope>/<id>".
            path = re.sub(r"\$\{[^}]*\}|\{[^}]*\}", "x", literal).rstrip("/")
            called.add(path + "/team/x" if joined else path)
    assert len(called) >= 10
    unrouted = [
        p for p in sorted(called) if all(r.match(p.split("/")[1:]) is None for r in api.routes)
    ]
    assert unrouted == []
