"""The change feed of control data: keys, limits and projects, in commit order.

Every write of a key, a limit or a project ownership appends the row's whole
image after the change (never a delta) to ``governance_changes``, in the same
transaction as the write. The sequence number is allocated under a lock held
to commit, so commit order is sequence order and a reader that has seen
``seq`` N has seen every change before it (no transaction commits "late" with a
smaller number).

In the global governance plane (docs/decisions/0001-global-governance-plane.md)
the home cloud serves this table as a stream (:mod:`.replication`) and every
other cloud applies it with :func:`apply`: the batch's rows and the cursor in
one transaction of its own database, so a replayed batch changes nothing and a
partition heals by resuming from the cursor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from gateway_app.governance.storage import Database, DatabaseError, Transaction

_LOCK = 715102  # the advisory lock serialising sequence allocation (PostgreSQL)
KINDS = ("key", "limit", "project")


@dataclass(frozen=True, slots=True)
class _Table:
    name: str
    keys: tuple[str, ...]  # the primary key's columns
    columns: tuple[str, ...]  # every column a row image may carry


_TABLES = {
    "key": _Table(
        "virtual_keys",
        ("id",),
        (
            "id",
            "key_hash",
            "name",
            "team_id",
            "project_id",
            "role",
            "models",
            "expires_at",
            "metadata",
            "created_at",
            "revoked_at",
        ),
    ),
    "limit": _Table(
        "limits",
        ("scope", "scope_id"),
        ("scope", "scope_id", "daily_usd", "monthly_usd", "rpm", "tpm", "team_id"),
    ),
    "project": _Table("projects", ("id",), ("id", "team_id", "created_at")),
}


class ChangeError(ValueError):
    """A change that cannot be applied here (the message names the change and the field)."""


@dataclass(frozen=True, slots=True)
class Change:
    """One committed change: the row image after it (``body``; None for a delete)."""

    seq: int
    epoch: int
    committed_at: float
    kind: str
    entity_id: str
    op: str  # upsert | delete
    body: dict[str, Any] | None

    def public(self) -> dict[str, Any]:
        """As carried on the feed."""
        return {
            "seq": self.seq,
            "epoch": self.epoch,
            "committed_at": self.committed_at,
            "kind": self.kind,
            "entity_id": self.entity_id,
            "op": self.op,
            "body": self.body,
        }

    @classmethod
    def parse(cls, data: Any) -> Change:
        """A change read from the feed; :class:`ChangeError` naming what is wrong."""
        if not isinstance(data, dict):
            raise ChangeError(f"a change must be an object, got {type(data).__name__}")
        seq = data.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise ChangeError(f"change `seq` must be a positive integer, got {seq!r}")
        kind, op, body = data.get("kind"), data.get("op"), data.get("body")
        if kind not in _TABLES:
            raise ChangeError(f"change {seq}: unknown `kind` {kind!r}; known: {list(KINDS)}")
        if op not in ("upsert", "delete"):
            raise ChangeError(f"change {seq}: `op` must be upsert or delete, got {op!r}")
        table = _TABLES[kind]
        if op == "upsert":
            if not isinstance(body, dict):
                raise ChangeError(f"change {seq}: an upsert needs its row image in `body`")
            unknown = sorted(set(body) - set(table.columns))
            if unknown:
                raise ChangeError(
                    f"change {seq}: {table.name} has no column {unknown[0]!r} here (a newer "
                    "home's schema?): upgrade this cloud's gateway and run its migrations"
                )
            missing = [k for k in table.keys if body.get(k) is None]
            if missing:
                raise ChangeError(f"change {seq}: the row image lacks its key {missing[0]!r}")
        return cls(
            seq=seq,
            epoch=int(data.get("epoch") or 1),
            committed_at=float(data.get("committed_at") or 0.0),
            kind=kind,
            entity_id=str(data.get("entity_id") or ""),
            op=op,
            body=body if op == "upsert" else None,
        )

    @property
    def announcement(self) -> str:
        """What the registry's change channel says for it (``key:<id>``, ``limits``, ...)."""
        if self.kind == "key":
            return f"key:{self.entity_id}"
        return "limits" if self.kind == "limit" else "projects"


def _where(kind: str, entity_id: str) -> tuple[str, tuple[str, ...]]:
    if kind == "limit":
        scope, _, scope_id = entity_id.partition("/")
        return "scope = ? AND scope_id = ?", (scope, scope_id)
    return "id = ?", (entity_id,)


def _row_image(tx: Transaction | Database, kind: str, entity_id: str) -> dict[str, Any] | None:
    table = _TABLES[kind]
    where, params = _where(kind, entity_id)
    rows = tx.fetch(f"SELECT {', '.join(table.columns)} FROM {table.name} WHERE {where}", params)
    return rows[0] if rows else None


def record(tx: Transaction, kind: str, entity_id: str, epoch: int) -> int:
    """Append the change of one row, as it is now in ``tx``; its sequence number."""
    tx.lock(_LOCK)
    body = _row_image(tx, kind, entity_id)
    seq = tx.fetch("SELECT COALESCE(MAX(seq), 0) + 1 AS seq FROM governance_changes")[0]["seq"]
    tx.execute(
        "INSERT INTO governance_changes (seq, epoch, committed_at, kind, entity_id, op, body) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            seq,
            epoch,
            time.time(),
            kind,
            entity_id,
            "upsert" if body is not None else "delete",
            orjson.dumps(body).decode() if body is not None else None,
        ),
    )
    return int(seq)


def head(db: Database) -> int:
    """The sequence number of the last committed change (0: none)."""
    return int(db.fetch("SELECT COALESCE(MAX(seq), 0) AS seq FROM governance_changes")[0]["seq"])


def read(db: Database, after: int, limit: int = 500) -> list[Change]:
    """The committed changes after ``after``, oldest first, at most ``limit``."""
    rows = db.fetch(
        "SELECT * FROM governance_changes WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
    )
    changes = []
    for row in rows:
        body = orjson.loads(row["body"]) if row["body"] is not None else None
        op = row["op"]
        if body is None and op == "upsert":
            # A row that existed before the feed (migration 4 logged its id only): its
            # image now, or a delete if it is gone (a later change repeats either way).
            body = _row_image(db, row["kind"], row["entity_id"])
            op = "upsert" if body is not None else "delete"
        changes.append(
            Change(
                int(row["seq"]),
                int(row["epoch"]),
                float(row["committed_at"]),
                row["kind"],
                row["entity_id"],
                op,
                body,
            )
        )
    return changes


def cursor(db: Database, feed: str = "home") -> tuple[int, int]:
    """(epoch, applied seq) of this database's position in ``feed`` ((0, 0): none yet)."""
    rows = db.fetch("SELECT epoch, applied_seq FROM governance_cursor WHERE feed = ?", (feed,))
    return (int(rows[0]["epoch"]), int(rows[0]["applied_seq"])) if rows else (0, 0)


class StaleEpoch(ChangeError):
    """A batch from an older home (a lower epoch than this cloud has applied)."""


def apply(
    db: Database, changes: list[Change], epoch: int, feed: str = "home"
) -> tuple[int, list[Change]]:
    """Apply a batch and advance the cursor, in one transaction: (applied seq, the changes
    applied now). Changes at or below the cursor are skipped, so a replay is harmless."""

    def work(tx: Transaction) -> tuple[int, list[Change]]:
        tx.lock(_LOCK)
        lock = " FOR UPDATE" if tx.kind == "postgres" else ""
        rows = tx.fetch(
            f"SELECT epoch, applied_seq FROM governance_cursor WHERE feed = ?{lock}", (feed,)
        )
        seen_epoch, applied = (
            (int(rows[0]["epoch"]), int(rows[0]["applied_seq"])) if rows else (0, 0)
        )
        if epoch < seen_epoch:
            raise StaleEpoch(
                f"the feed is at epoch {epoch} but this cloud has applied epoch {seen_epoch}: "
                "an old home still serving? (refused)"
            )
        fresh = [c for c in changes if c.seq > applied]
        for change in fresh:
            table = _TABLES[change.kind]
            if change.op == "delete":
                where, params = _where(change.kind, change.entity_id)
                tx.execute(f"DELETE FROM {table.name} WHERE {where}", params)
                continue
            assert change.body is not None
            names = [c for c in table.columns if c in change.body]
            updates = [c for c in names if c not in table.keys]
            tx.execute(
                f"INSERT INTO {table.name} ({', '.join(names)}) "
                f"VALUES ({', '.join('?' for _ in names)}) "
                f"ON CONFLICT ({', '.join(table.keys)}) DO "
                + (
                    "UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in updates)
                    if updates
                    else "NOTHING"
                ),
                [change.body[c] for c in names],
            )
        top = max([applied, *(c.seq for c in fresh)])
        tx.execute(
            "INSERT INTO governance_cursor (feed, epoch, applied_seq, applied_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (feed) DO UPDATE SET epoch = excluded.epoch, "
            "applied_seq = excluded.applied_seq, applied_at = excluded.applied_at",
            (feed, epoch, top, time.time()),
        )
        return top, fresh

    try:
        return db.transaction(work)
    except DatabaseError as exc:
        if isinstance(exc.__cause__, ChangeError):
            raise exc.__cause__ from None  # refused, not a database failure
        raise
