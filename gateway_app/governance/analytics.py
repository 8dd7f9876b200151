"""Spend, tokens, requests and latency percentiles from the audit log."""

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
        "COALESCE(SUM(cost_usd), 0) AS cost_usd "
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
    """p50/p90/p99 latency in ms per group (blocking)."""
    columns = _columns(group_by)
    where, params = _where(team_id, since, until)
    selected = ", ".join([*columns, "latency_ms"])
    groups: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    for r in db.fetch(
        f"SELECT {selected} FROM audit_events WHERE {where} AND latency_ms IS NOT NULL", params
    ):
        groups[tuple(r[c] for c in columns)].append(float(r["latency_ms"]))
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
            }
        )
    return out
