"""One contract for both databases: SQLite (embedded) and PostgreSQL (a real server)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from gateway_app.errors import GatewayError
from gateway_app.governance import analytics, audit
from gateway_app.governance.keys import KeyRecord, KeyStore, Limit
from gateway_app.governance.storage import MIGRATIONS, Database


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'gov.sqlite3'}")
    else:
        server = request.getfixturevalue("postgres_server")
        database = Database(server.url)
        database.migrate()
        for table in ("virtual_keys", "limits", "audit_events", "projects"):
            database.execute(f"DELETE FROM {table}")
    database.migrate()
    yield database
    database.close()


def test_migrations_are_recorded_and_idempotent(db: Database) -> None:
    assert db.migrate() == []
    versions = [r["version"] for r in db.fetch("SELECT version FROM schema_migrations")]
    assert sorted(versions) == [version for version, _, _ in MIGRATIONS]


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


def test_a_batch_partly_stored_before_stores_the_rest_once(db: Database) -> None:
    """A re-delivered batch mixed with new events (a drainer that died after its commit,
    claimed with newer ones): PostgreSQL's COPY refuses the batch, the insert that skips
    stored ids stores the new ones; each event once, the stored ones untouched."""
    first = [audit.event("request", team_id="a", status=200) for _ in range(3)]
    audit.insert_events(db, first)
    changed = [{**event, "status": 500} for event in first[:2]]
    later = [audit.event("request", team_id="a", status=201) for _ in range(2)]
    audit.insert_events(db, [changed[0], later[0], changed[1], later[1], later[0]])
    rows = db.fetch("SELECT event_id, status FROM audit_events ORDER BY event_id")
    expected = {e["event_id"]: 200 for e in first} | {e["event_id"]: 201 for e in later}
    assert {r["event_id"]: r["status"] for r in rows} == expected


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
    url = postgres_server.new_database("m")
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


def test_a_known_keys_hmac_is_computed_once_and_changes_still_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry remembers a found key's stored form by the key's BLAKE2b digest (no
    key kept in plain text): the next requests with it skip the HMAC. What the key is
    stays the registry's: a rotated key's old secret is refused, a revoked key's record
    says so, and a made-up key is remembered by nothing."""
    from hashlib import blake2b

    from gateway_app.governance import keys as keys_module
    from gateway_app.governance.keys import Registry, hash_key, new_key
    from tests.gateway.conftest import run_async

    database = Database(f"sqlite:///{tmp_path / 'k.sqlite3'}")
    database.migrate()
    store = KeyStore(database)
    registry = Registry(store, b"secret", clock=lambda: 1000.5)
    macs = [0]
    keyed = registry._keyed

    class Counting:
        def copy(self) -> Any:
            macs[0] += 1
            return keyed.copy()

    registry._keyed = Counting()  # type: ignore[assignment]
    lookups: list[str] = []
    original = store.by_hash
    store.by_hash = lambda h: lookups.append(h) or original(h)  # type: ignore[method-assign]
    key_id, key = new_key()
    key += "-x"  # a secret with a "-" in it (URL-safe base64 has them): the id has none
    record = KeyRecord(key_id, hash_key(b"secret", key), "t", "p")
    store.insert(record)
    registry._put(record)

    async def main() -> None:
        # known(): the request path's look-up without an await. A key never matched here
        # is not known (authenticate() then computes its HMAC), whatever the records hold.
        assert registry.known(key) is None
        for _ in range(5):
            found = await registry.authenticate(key)
            assert found is not None and found.id == key_id
        assert macs[0] == 1  # the first request's HMAC, then the digest's memory
        assert registry.known(key) is record and macs[0] == 1
        # Remembered by a 32-byte digest, mapped to the stored form: never the key itself.
        assert registry._hashes == {blake2b(key.encode(), digest_size=32).digest(): record.key_hash}
        # Rotated: the record now holds another secret's hash; the old secret is refused,
        # as a known id's wrong secret: without asking the database.
        _, rotated = new_key()
        registry._put(KeyRecord(key_id, hash_key(b"secret", rotated), "t", "p"))
        assert registry.known(key) is None  # its remembered stored form is no record's
        assert await registry.authenticate(key) is None
        assert lookups == []
        found = await registry.authenticate(rotated)
        assert found is not None and found.id == key_id
        assert registry.known(rotated) is found
        # Revoked: the record says so (the caller refuses it: KeyRecord.usable).
        registry._put(KeyRecord(key_id, hash_key(b"secret", rotated), "t", "p", revoked_at=999.0))
        found = await registry.authenticate(rotated)
        assert found is not None and not found.usable(1000.0)
        assert registry.known(rotated) is found  # the revoked record, as authenticate()'s
        # Made-up keys are remembered by nothing (only found keys are).
        before = len(registry._hashes)
        for _ in range(20):
            assert await registry.authenticate(new_key()[1]) is None
        assert len(registry._hashes) == before
        # At most HASHES_REMEMBERED, then it starts over.
        monkeypatch.setattr(keys_module, "HASHES_REMEMBERED", 2)
        others = []
        for _ in range(3):
            other_id, other = new_key()
            registry._put(KeyRecord(other_id, hash_key(b"secret", other), "t", "p"))
            others.append(other)
            assert await registry.authenticate(other) is not None
        assert len(registry._hashes) <= 2

    run_async(main())
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


def test_migration_gives_each_existing_project_to_its_oldest_keys_team(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 20 item 2: a database written before projects had owners (two teams' keys
    naming one project) is migrated so the project belongs to exactly one team."""
    from gateway_app.governance import storage

    db = Database(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    monkeypatch.setattr(storage, "MIGRATIONS", MIGRATIONS[:1])
    db.migrate()
    # Rows as the gateway of schema version 1 wrote them (no change feed yet).
    for key_id, team, project, created in (
        ("key_b", "b", "shared", 2.0),
        ("key_a", "a", "shared", 1.0),
        ("key_c", "c", "own", 3.0),
    ):
        db.execute(
            "INSERT INTO virtual_keys (id, key_hash, team_id, project_id, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (key_id, f"h-{key_id}", team, project, created),
        )
    db.execute(
        "INSERT INTO limits (scope, scope_id, daily_usd, team_id) VALUES (?, ?, ?, ?)",
        ("project", "limited", 1.0, "d"),
    )
    store = KeyStore(db)
    monkeypatch.setattr(storage, "MIGRATIONS", MIGRATIONS)
    assert db.migrate() == [version for version, _, _ in MIGRATIONS[1:]]
    assert store.projects() == {"shared": "a", "own": "c", "limited": "d"}
    assert store.claim_project("shared", "b", 9.0) == "a"  # the first claim stands
    assert store.claim_project("fresh", "b", 9.0) == "b"
    db.close()


def test_migrate_as_owner_creates_a_least_privileged_app_role(postgres_server: Any) -> None:
    """What the migration Job does on every cloud: migrate as the server's admin, then give
    the gateway its own role with row access only (the serving pods never get the admin's
    password). The password reaches the server only as a SCRAM verifier."""
    import psycopg

    name = postgres_server.new_database("r").rsplit("/", 1)[1]
    role = f"gateway_app_{name}"
    base = postgres_server.url.rsplit("/", 1)[0].replace("postgres@", "{user}@")
    owner_url = base.format(user="postgres") + "/" + name
    password = "s3cret-" + uuid.uuid4().hex
    app_url = base.format(user=f"{role}:{password}") + "/" + name

    def migrate(app: str | None) -> subprocess.CompletedProcess[str]:
        env = {"AIGW_MIGRATION_DATABASE_URL": owner_url, "PATH": "/usr/bin:/bin"}
        if app:
            env["AIGW_DATABASE_URL"] = app
        return subprocess.run(
            [sys.executable, "-m", "gateway_app", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    missing = migrate(None)
    assert missing.returncode == 2 and "AIGW_DATABASE_URL" in missing.stderr
    first = migrate(app_url)
    assert first.returncode == 0, first.stderr
    assert f"app role {role}: created" in first.stdout
    assert password not in first.stdout + first.stderr

    with psycopg.connect(owner_url, autocommit=True) as owner:
        (flags,) = owner.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin, rolpassword "
            "FROM pg_authid WHERE rolname = %s",
            (role,),
        ).fetchall()
        assert flags[:4] == (False, False, False, True)
        verifier = flags[4]
        assert verifier.startswith("SCRAM-SHA-256$") and password not in verifier
        # The verifier is the one libpq derives from this password and salt.
        iterations, salt = verifier.split("$")[1].split(":")
        assert _scram_verifier(password, salt, int(iterations)) == verifier
        table_owner = owner.execute(
            "SELECT tableowner FROM pg_tables WHERE tablename = 'virtual_keys'"
        ).fetchone()
        assert table_owner == ("postgres",)

    as_app = base.format(user=role) + "/" + name  # trust auth in the test server
    with psycopg.connect(as_app, autocommit=True) as app:
        app.execute(
            "INSERT INTO limits (scope, scope_id, rpm) VALUES ('team', 't', 1) "
            "ON CONFLICT (scope, scope_id) DO UPDATE SET rpm = 2"
        )
        assert app.execute("SELECT rpm FROM limits").fetchone() == (1,)
        app.execute("DELETE FROM limits")
        assert app.execute("SELECT COUNT(*) FROM schema_migrations").fetchone() == (
            len(MIGRATIONS),
        )
        for forbidden in (
            "CREATE TABLE evil (x int)",
            "DROP TABLE audit_events",
            "ALTER TABLE virtual_keys ADD COLUMN x int",
            "DELETE FROM schema_migrations",
            "CREATE ROLE evil",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(forbidden)

    # Run again with a new password: rotated, nothing else changes.
    rotated = app_url.replace(password, "rotated-" + uuid.uuid4().hex)
    again = migrate(rotated)
    assert again.returncode == 0, again.stderr
    assert "up to date" in again.stdout and f"app role {role}: updated" in again.stdout
    with psycopg.connect(owner_url, autocommit=True) as owner:
        (new_verifier,) = owner.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)
        ).fetchone()
        assert new_verifier != verifier


def _scram_verifier(password: str, salt_b64: str, iterations: int) -> str:
    """RFC 5802/7677's SCRAM-SHA-256 verifier, as PostgreSQL stores it (independent check)."""
    import base64
    import hashlib
    import hmac

    salt = base64.b64decode(salt_b64)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored = hashlib.sha256(client_key).digest()
    server = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{salt_b64}${b64(stored)}:{b64(server)}"


def test_a_nul_character_is_stored_as_a_replacement_character(db: Database) -> None:
    """PostgreSQL's text cannot hold NUL, and a caller chooses ``user`` (the customer): such
    an event is stored, with U+FFFD for the NUL (in any text column)."""
    sent = audit.event("request", customer="a\x00b", request_id="r\x00", status=200)
    audit.insert_events(db, [sent])
    stored = db.fetch(
        "SELECT customer, request_id FROM audit_events WHERE event_id = ?", (sent["event_id"],)
    )
    assert stored == [{"customer": "a\ufffdb", "request_id": "r\ufffd"}]


def test_an_event_the_database_refuses_is_kept_and_does_not_stop_its_batch(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A value beyond its column (PostgreSQL: a status past INTEGER) fails the whole batch,
    on every retry: the batch is stored event by event, and the refused event is kept with
    its values and the reason in ``detail`` (the drain goes on; nothing is lost). SQLite
    stores any 64-bit integer: there the event is stored as it is."""
    good = [audit.event("request", team_id="a", status=200) for _ in range(2)]
    bad = audit.event("request", team_id="a", status=2**40)
    with caplog.at_level("ERROR", logger="gateway_app.governance"):
        audit.insert_events(db, [good[0], bad, good[1]])
        audit.insert_events(db, [good[0], bad, good[1]])  # re-delivered: stored once
    rows = {r["event_id"]: r for r in db.fetch("SELECT * FROM audit_events")}
    assert set(rows) == {good[0]["event_id"], bad["event_id"], good[1]["event_id"]}
    assert rows[good[0]["event_id"]]["team_id"] == "a"
    kept = rows[bad["event_id"]]
    if db.kind == "sqlite":
        assert kept["status"] == 2**40 and kept["team_id"] == "a"
        return
    assert kept["kind"] == "request" and kept["team_id"] is None and kept["status"] is None
    detail = json.loads(kept["detail"])
    assert detail["event"]["status"] == 2**40 and detail["event"]["team_id"] == "a"
    assert "out of range" in detail["refused_by_database"]
    assert bad["event_id"] in caplog.text


def test_a_key_the_store_cannot_look_up_gets_503_not_401(tmp_path: Path) -> None:
    """A key this replica has not loaded, with the database unreachable: the registry says
    the lookup failed (the callers answer 503, not 401: the key may be valid), asks the
    store at most once a second meanwhile, and does not remember the key as unknown, so it
    works as soon as the database is back."""
    from gateway_app.governance.keys import KeyLookupFailed, Registry, hash_key, new_key
    from tests.gateway.conftest import run_async

    database = Database(f"sqlite:///{tmp_path / 'k.sqlite3'}")
    database.migrate()
    store = KeyStore(database)
    now = [1000.5]
    registry = Registry(store, b"secret", clock=lambda: now[0])
    key_id, key = new_key()
    store.insert(KeyRecord(key_id, hash_key(b"secret", key), "t", "p"))  # "another replica"
    original = store.by_hash
    lookups: list[str] = []

    def down(key_hash: str) -> KeyRecord | None:
        lookups.append(key_hash)
        raise ConnectionError("connection to server at 10.0.0.5 port 5432 failed")

    store.by_hash = down  # type: ignore[method-assign]

    async def main() -> None:
        for _ in range(5):  # one lookup waits on the outage; the others answer at once
            with pytest.raises(KeyLookupFailed):
                await registry.authenticate(key)
        assert len(lookups) == 1
        now[0] += 1.01  # a second later the store is asked again
        with pytest.raises(KeyLookupFailed):
            await registry.authenticate(key)
        assert len(lookups) == 2
        store.by_hash = original  # type: ignore[method-assign]
        now[0] += 1.01
        record = await registry.authenticate(key)
        assert record is not None and record.id == key_id

    run_async(main())
    database.close()


def test_a_reports_connection_cancels_a_query_past_its_limit_and_stays_usable(
    db: Database,
) -> None:
    """``Database.for_reports``: another connection whose every statement is cancelled
    after its limit (QueryTimedOut), the connection usable at once after; the first
    connection has no limit."""
    import time

    from gateway_app.governance.storage import QueryTimedOut

    reports = db.for_reports(0.3)
    assert reports is not db and reports.statement_timeout_s == 0.3
    assert db.statement_timeout_s is None
    # A query that runs for seconds on either database: a count over a generated series.
    slow = (
        "SELECT count(*) AS n FROM generate_series(1, 300000000)"
        if db.kind == "postgres"
        else "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c "
        "WHERE i < 300000000) SELECT count(*) AS n FROM c"
    )
    started = time.monotonic()
    with pytest.raises(QueryTimedOut) as cancelled:
        reports.fetch(slow)
    took = time.monotonic() - started
    # Uncancelled, the count takes ~37 s on PostgreSQL here (10 million rows in 1.25 s) and
    # minutes on SQLite: 10 s tells a cancelled query from one that ran, with room for a
    # slow machine's connection and cancellation (3.07 s once under a parallel suite).
    assert 0.3 <= took < 10.0, took
    assert cancelled.value.timeout_s == 0.3
    assert "0.3 s" in str(cancelled.value)
    # The same connection answers the next query (PostgreSQL: the transaction the limit
    # was set in is over, and the limit is set again for each call).
    assert reports.fetch("SELECT 1 AS one") == [{"one": 1}]
    with pytest.raises(QueryTimedOut):
        reports.fetch(slow)
    if db.kind == "postgres":
        # SET LOCAL: the session itself keeps the server's default (a pooled session
        # handed to another client is not left with this limit).
        # (Read on the connection itself: a call through ``reports`` sets its own.)
        assert reports.fetch("SHOW statement_timeout") == [{"statement_timeout": "300ms"}]
        session = reports._conn.execute("SHOW statement_timeout").fetchone()
        assert session == ("0",)
    reports.close()
