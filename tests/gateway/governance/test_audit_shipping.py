"""Audit shipping at scale (issue 24): the home stores a follower's batch with one ``COPY``
and its ``through`` in the same transaction, counting duplicates exactly; one replica per
cloud ships (a Redis lease), another takes over when it stops or dies.

The rate a follower ships at, before and after, is measured in ``bench/audit_shipping.py``
(``bench/audit-shipping.md``), not timed here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from gateway_app.governance import audit
from gateway_app.governance.storage import Database, DatabaseError


def _gcp_events(n: int, **fields: Any) -> list[dict[str, Any]]:
    audit.set_cloud("gcp")
    try:
        return [audit.event("request", key_id="k", cost_usd=0.5, **fields) for _ in range(n)]
    finally:
        audit.set_cloud(None)


@pytest.fixture(params=["sqlite", "postgres"])
def home(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The home's database: SQLite (the embedded store) or a new PostgreSQL database."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'home.db'}")
    else:
        server = request.getfixturevalue("postgres_server")
        name = "ship" + uuid.uuid4().hex[:10]
        setup = Database(server.url)
        setup.execute(f"CREATE DATABASE {name}")
        setup.close()
        db = Database(server.url.rsplit("/", 1)[0] + "/" + name)
    db.migrate()
    yield db
    db.close()


class Statements:
    """The ``COPY`` and ``executemany`` calls psycopg's cursors make (the real ones run)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.copies: list[str] = []
        self.executemany = 0
        copy, executemany = psycopg.Cursor.copy, psycopg.Cursor.executemany

        def spy_copy(cursor: psycopg.Cursor[Any], statement: Any, *args: Any, **kw: Any) -> Any:
            self.copies.append(statement.as_string(cursor.connection))
            return copy(cursor, statement, *args, **kw)

        def spy_executemany(cursor: psycopg.Cursor[Any], *args: Any, **kw: Any) -> Any:
            self.executemany += 1
            return executemany(cursor, *args, **kw)

        monkeypatch.setattr(psycopg.Cursor, "copy", spy_copy)
        monkeypatch.setattr(psycopg.Cursor, "executemany", spy_executemany)


def _through(db: Database) -> dict[str, float]:
    rows = db.fetch("SELECT cloud, complete_through FROM audit_shipping")
    return {row["cloud"]: float(row["complete_through"]) for row in rows}


def test_the_home_stores_a_batch_with_one_copy_and_counts_duplicates_exactly(
    home: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _gcp_events(40)
    statements = Statements(monkeypatch)
    assert audit.store_shipped(home, "gcp", events[:30], through=100.0) == (30, 0)
    if home.kind == "postgres":
        # One COPY of the whole batch, no insert per event.
        assert len(statements.copies) == 1 and statements.executemany == 0
        assert statements.copies[0].startswith('COPY "audit_events" (')
    # The answer was lost: the same batch again stores nothing and says so.
    assert audit.store_shipped(home, "gcp", events[:30], through=100.0) == (0, 30)
    # A batch of old and new events: only the new ones, counted exactly.
    assert audit.store_shipped(home, "gcp", events[20:], through=200.0) == (10, 10)
    if home.kind == "postgres":
        # The COPYs of the re-sent batches failed on the key: row by row then.
        assert len(statements.copies) == 3 and statements.executemany == 2
    rows = home.fetch("SELECT event_id, cloud, shipped_at FROM audit_events")
    assert sorted(row["event_id"] for row in rows) == sorted(e["event_id"] for e in events)
    assert {row["cloud"] for row in rows} == {"gcp"}
    assert all(row["shipped_at"] is not None for row in rows)
    assert _through(home) == {"gcp": 200.0}


def test_through_never_advances_without_the_events(home: Database) -> None:
    """The events and ``through`` commit together: a batch the database refuses, or one
    holding another cloud's event, stores nothing and leaves ``through`` where it was."""
    assert audit.store_shipped(home, "gcp", _gcp_events(3), through=100.0) == (3, 0)
    # A value beyond its column (bigint): refused, the batch rolled back with through.
    refused = _gcp_events(5)
    refused[3]["prompt_tokens"] = 2**70
    with pytest.raises((DatabaseError, OverflowError)):
        audit.store_shipped(home, "gcp", refused, through=500.0)
    audit.set_cloud("azure")
    try:
        foreign = audit.event("request", key_id="k")
    finally:
        audit.set_cloud(None)
    with pytest.raises(ValueError, match=r"is not gcp's \(ids start with gcp\.\)"):
        audit.store_shipped(home, "gcp", [*_gcp_events(2), foreign], through=600.0)
    assert len(home.fetch("SELECT event_id FROM audit_events")) == 3
    assert _through(home) == {"gcp": 100.0}
