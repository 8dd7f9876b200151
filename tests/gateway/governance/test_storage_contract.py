"""One contract for both databases: SQLite (embedded) and PostgreSQL (a real server)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from gateway_app.errors import GatewayError
from gateway_app.governance import analytics, audit
from gateway_app.governance.keys import KeyRecord, KeyStore, Limit
from gateway_app.governance.storage import Database


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'gov.sqlite3'}")
    else:
        server = request.getfixturevalue("postgres_server")
        database = Database(server.url)
        database.migrate()
        for table in ("virtual_keys", "limits", "audit_events"):
            database.execute(f"DELETE FROM {table}")
    database.migrate()
    yield database
    database.close()


def test_migrations_are_recorded_and_idempotent(db: Database) -> None:
    assert db.migrate() == []
    versions = [r["version"] for r in db.fetch("SELECT version FROM schema_migrations")]
    assert versions == [1]


def test_keys_and_limits_round_trip(db: Database) -> None:
    store = KeyStore(db)
    record = KeyRecord("key_1", "h1", "team-a", "proj", models=("gpt-4o-mini",), metadata={"o": 1})
    store.insert(record)
    assert store.by_hash("h1") == record
    assert store.revoke("key_1", 5.0) and not store.revoke("key_1", 6.0)
    assert store.get("key_1").revoked_at == 5.0  # type: ignore[union-attr]
    store.put_limit(Limit("team", "team-a", daily_usd=1.5, rpm=10, team_id="team-a"))
    store.put_limit(Limit("team", "team-a", daily_usd=2.0, team_id="team-a"))
    assert store.limits() == [Limit("team", "team-a", daily_usd=2.0, team_id="team-a")]


def test_audit_insert_is_idempotent_and_feeds_analytics(db: Database) -> None:
    events = [
        audit.event(
            "request",
            team_id="a",
            model="m1",
            cost_usd=0.5,
            prompt_tokens=3,
            completion_tokens=4,
            latency_ms=float(10 * (i + 1)),
        )
        for i in range(10)
    ]
    events.append(audit.event("request", team_id="b", model="m2", cost_usd=1.0, latency_ms=5.0))
    audit.insert_events(db, events)
    audit.insert_events(db, events[:5])  # a re-delivered batch
    assert db.fetch("SELECT COUNT(*) AS n FROM audit_events")[0]["n"] == 11
    by_team = analytics.usage(db, "team")
    assert [(r["team_id"], r["requests"], r["prompt_tokens"]) for r in by_team] == [
        ("a", 10, 30),
        ("b", 1, 0),
    ]
    assert by_team[0]["cost_usd"] == pytest.approx(5.0)
    scoped = analytics.usage(db, "model", team_id="b")
    assert [(r["model"], r["requests"]) for r in scoped] == [("m2", 1)]
    latency = analytics.latency(db, "team", team_id="a")
    assert latency[0]["p50_ms"] == 50.0 and latency[0]["p99_ms"] == 100.0


def test_audit_search_error_rates_and_last_use(db: Database) -> None:
    """What the console and ``aigw admin`` read: filters, text search (a person's e-mail,
    with LIKE's wildcards taken literally), per-deployment error rates, a key's last use."""
    person = {"actor": {"type": "person", "subject": "bob", "email": "bob@example.com"}}
    events = [
        audit.event("admin", actor="person:bob", action="key.create", team_id="a", detail=person),
        audit.event("admin", actor="admin_key", action="limit.put", team_id="b", detail={}),
        audit.event(
            "admin", actor="admin_key", action="key.create", team_id="a", detail={"n": "50%_off"}
        ),
        *[
            audit.event(
                "request", key_id="k1", team_id="a", deployment="d1", status=s, latency_ms=5.0
            )
            for s in (200, 200, 502, 200)
        ],
    ]
    audit.insert_events(db, events)

    def actions(params: dict[str, str], team: str | None = None) -> list[str]:
        return [r["action"] for r in analytics.audit_events(db, params, team_id=team)]

    assert actions({"q": "BOB@example"}) == ["key.create"]
    assert actions({"actor": "admin_key"}) == ["key.create", "limit.put"]  # newest first
    assert actions({"kind": "admin", "action": "key.create"}, team="a") == ["key.create"] * 2
    assert actions({"q": "50%_"}) == ["key.create"] and actions({"q": "5_%"}) == []
    assert len(actions({"limit": "2"})) == 2
    with pytest.raises(GatewayError, match="`limit` must be an integer from 1 to 1000"):
        analytics.audit_events(db, {"limit": "0"})
    [deployment] = analytics.latency(db, "deployment")
    assert (deployment["errors"], deployment["error_rate"]) == (1, 0.25)
    [key] = analytics.usage(db, "key")
    assert key["last_request_at"] == pytest.approx(events[-1]["ts"])


def test_migrate_command(postgres_server: Any) -> None:
    name = "m" + uuid.uuid4().hex[:8]
    setup = Database(postgres_server.url)
    setup.execute(f"CREATE DATABASE {name}")
    setup.close()
    url = postgres_server.url.rsplit("/", 1)[0] + "/" + name
    run = lambda: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "gateway_app", "migrate"],
        env={"AIGW_DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    first = run()
    assert first.returncode == 0, first.stderr
    assert "applied 1" in first.stdout
    assert "up to date" in run().stdout


def test_unknown_keys_are_looked_up_once_and_capped(tmp_path: Path) -> None:
    from gateway_app.governance.keys import Registry, hash_key, new_key
    from tests.gateway.conftest import run_async

    database = Database(f"sqlite:///{tmp_path / 'k.sqlite3'}")
    database.migrate()
    store = KeyStore(database)
    lookups: list[str] = []
    original = store.by_hash
    store.by_hash = lambda h: lookups.append(h) or original(h)  # type: ignore[method-assign]
    # A clock that stays in one second: the cap is per second, and a slow machine
    # must not spread the 80 lookups below over two of them.
    registry = Registry(store, b"secret", clock=lambda: 1000.5)
    key_id, key = new_key()
    # created "on another replica": not in this registry's memory yet
    store.insert(KeyRecord(key_id, hash_key(b"secret", key), "t", "p"))

    async def main() -> None:
        assert (await registry.authenticate(key)).id == key_id  # type: ignore[union-attr]
        assert await registry.authenticate(key) is not None  # from memory now
        assert await registry.authenticate(key[:-2] + "xx") is None  # known id, wrong secret
        made_up = [new_key()[1] for _ in range(80)]
        for fake in made_up:
            assert await registry.authenticate(fake) is None
        for fake in made_up[:5]:
            assert await registry.authenticate(fake) is None  # remembered as unknown

    run_async(main())
    assert lookups[0] == hash_key(b"secret", key)
    assert len(lookups) == 50  # the first key's lookup and 49 made-up ones, then the cap
    database.close()


def test_governance_config_errors_name_the_key() -> None:
    from gateway_app.config import ConfigError, parse

    raw = {
        "providers": {"openai": {"type": "openai"}},
        "models": {"m": {"deployments": [{"provider": "openai", "model": "gpt-4o-mini"}]}},
        "governance": {"fail_closd": True, "key_refresh_s": 0},
    }
    with pytest.raises(ConfigError) as error:
        parse(raw)
    assert "governance.fail_closd: unknown key" in str(error.value)
    assert "governance.key_refresh_s" in str(error.value)
