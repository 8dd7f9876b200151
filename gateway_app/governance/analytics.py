"""Spend, tokens, requests, latency percentiles and error rates from the audit log, and
the audit log's search."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from gateway_app.errors import invalid
from gateway_app.governance.storage import Database

DIMENSIONS = {
    "day": "day",
    "month": "month",
    "team": "team_id",
    "project": "project_id",
    "key": "key_id",
    "customer": "customer",
    "model": "model",
    "provider": "provider",
    "deployment": "deployment",
    "cloud": "cloud",  # which cloud served it (the global governance plane)
}


def _columns(group_by: str) -> list[str]:
    names = [name.strip() for name in group_by.split(",") if name.strip()]
    for name in names:
        if name not in DIMENSIONS:
            raise invalid(
                "group_by", f"Unknown group_by {name!r}; use any of {sorted(DIMENSIONS)}."
            )
    return [DIMENSIONS[name] for name in names]


def _where(team_id: str | None, since: str | None, until: str | None) -> tuple[str, list[Any]]:
    clauses, params = ["kind = 'request'"], []
    if team_id is not None:
        clauses.append("team_id = ?")
        params.append(team_id)
    if since:
        clauses.append("day >= ?")
        params.append(since)
    if until:
        clauses.append("day <= ?")
        params.append(until)
    return " AND ".join(clauses), params


def usage(
    db: Database,
    group_by: str,
    *,
    team_id: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> list[dict[str, Any]]:
    """Requests, tokens and USD per group (blocking)."""
    columns = _columns(group_by)
    where, params = _where(team_id, since, until)
    selected = ", ".join([*columns, ""]) if columns else ""
    group = f" GROUP BY {', '.join(columns)} ORDER BY {', '.join(columns)}" if columns else ""
    rows = db.fetch(
        f"SELECT {selected}COUNT(*) AS requests, "
        "COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens, "
        "COALESCE(SUM(completion_tokens), 0) AS completion_tokens, "
        "COALESCE(SUM(cost_usd), 0) AS cost_usd, "
        "MAX(ts) AS last_request_at "
        f"FROM audit_events WHERE {where}{group}",
        params,
    )
    for r in rows:
        r["requests"] = int(r["requests"])
        r["prompt_tokens"] = int(r["prompt_tokens"])
        r["completion_tokens"] = int(r["completion_tokens"])
        r["cost_usd"] = float(r["cost_usd"])
    return rows


def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, math.ceil(share * len(sorted_values)) - 1))
    return sorted_values[rank]


def latency(
    db: Database,
    group_by: str,
    *,
    team_id: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> list[dict[str, Any]]:
    """p50/p90/p99 latency in ms, and errors (status 5xx) and their rate, per group
    (blocking)."""
    columns = _columns(group_by)
    where, params = _where(team_id, since, until)
    selected = ", ".join([*columns, "latency_ms", "status"])
    groups: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    errors: dict[tuple[Any, ...], int] = defaultdict(int)
    for r in db.fetch(
        f"SELECT {selected} FROM audit_events WHERE {where} AND latency_ms IS NOT NULL", params
    ):
        group = tuple(r[c] for c in columns)
        groups[group].append(float(r["latency_ms"]))
        if r["status"] is not None and int(r["status"]) >= 500:
            errors[group] += 1
    out = []
    for group in sorted(groups, key=lambda g: tuple(str(v) for v in g)):
        values = sorted(groups[group])
        out.append(
            {
                **dict(zip(columns, group, strict=True)),
                "requests": len(values),
                "p50_ms": percentile(values, 0.50),
                "p90_ms": percentile(values, 0.90),
                "p99_ms": percentile(values, 0.99),
                "errors": errors[group],
                "error_rate": errors[group] / len(values),
            }
        )
    return out


# Exact-match filters of the audit search: query parameter -> column.
AUDIT_FILTERS = {
    "kind": "kind",
    "action": "action",
    "actor": "actor",
    "key_id": "key_id",
    "project_id": "project_id",
    "model": "model",
    "request_id": "request_id",
}


def audit_events(
    db: Database, params: dict[str, str], *, team_id: str | None = None
) -> list[dict[str, Any]]:
    """Audit events, newest first, filtered by ``params`` (blocking): any of
    :data:`AUDIT_FILTERS` (exact), ``since``/``until`` (UTC days, inclusive), ``q`` (text
    in the actor, action or detail: a person's e-mail, a key id) and ``limit`` (1-1000,
    default 100). ``team_id`` confines the search to one team's events."""
    raw = params.get("limit", "100")
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        raise invalid("limit", f"`limit` must be an integer from 1 to 1000, got {raw!r}.")
    clauses: list[str] = []
    args: list[Any] = []
    if team_id is not None:
        clauses.append("team_id = ?")
        args.append(team_id)
    for name, column in AUDIT_FILTERS.items():
        if params.get(name):
            clauses.append(f"{column} = ?")
            args.append(params[name])
    for name, operator in (("since", ">="), ("until", "<=")):
        if params.get(name):
            clauses.append(f"day {operator} ?")
            args.append(params[name])
    text = params.get("q", "").strip()
    if text:
        if len(text) > 200:
            raise invalid("q", "`q` is at most 200 characters.")
        escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        clauses.append(
            "("
            + " OR ".join(f"LOWER({c}) LIKE ? ESCAPE '\\'" for c in ("actor", "action", "detail"))
            + ")"
        )
        args += [pattern] * 3
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return db.fetch(f"SELECT * FROM audit_events{where} ORDER BY ts DESC LIMIT {limit}", args)
