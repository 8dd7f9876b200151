"""The session store's contract, run against both implementations (memory and real Redis),
and the sign-in configuration: role rules, and what a bad ``identity`` section says."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from gateway_app.config import ConfigError, parse
from gateway_app.identity.roles import assign
from gateway_app.identity.sessions import (
    InProcessSessionStore,
    LoginAttempt,
    RedisSessionStore,
    Session,
)
from gateway_app.identity.settings import RoleMapping
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
