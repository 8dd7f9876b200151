"""Spend, tokens, requests, latency percentiles and error rates from the audit log, and
the audit log's search."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from gateway_app.errors import invalid
from gateway_app.governance import rollup
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


def _filters(team_id: str | None, since: str | None, until: str | None) -> tuple[str, list[Any]]:
    """The filters every source of an answer shares (`` AND ...``) and their parameters."""
    clauses, params = [], []
    if team_id is not None:
        clauses.append("team_id = ?")
        params.append(team_id)
    if since:
        clauses.append("day >= ?")
        params.append(since)
    if until:
        clauses.append("day <= ?")
        params.append(until)
    return "".join(f" AND {clause}" for clause in clauses), params


RAW = f"audit_events WHERE kind = 'request' AND day > COALESCE({rollup.WATERMARK_SQL}, '')"
"""The request events of the days not rolled up yet."""

LATE = f"audit_rollup_late WHERE day <= {rollup.WATERMARK_SQL}"
"""The request events stored after their day was rolled up, not folded in yet."""

ROLLED = f"WHERE day <= {rollup.WATERMARK_SQL}"
"""The roll-up rows of the days rolled up."""


def usage(
    db: Database,
    group_by: str,
    *,
    team_id: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> list[dict[str, Any]]:
    """Requests, tokens and USD per group (blocking): the roll-up for the days rolled up
    (:mod:`~gateway_app.governance.rollup`), the raw events for the others, in one
    statement (one snapshot)."""
    columns = _columns(group_by)
    filters, params = _filters(team_id, since, until)
    selected = ", ".join([*columns, ""]) if columns else ""
    events = (
        f"SELECT {selected}1 AS requests, prompt_tokens, completion_tokens, cost_usd, ts "
        "AS last_ts FROM {source}" + filters
    )
    rows = db.fetch(
        f"SELECT {selected}COALESCE(SUM(requests), 0) AS requests, "
        "COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens, "
        "COALESCE(SUM(completion_tokens), 0) AS completion_tokens, "
        "COALESCE(SUM(cost_usd), 0) AS cost_usd, "
        "MAX(last_ts) AS last_request_at FROM ("
        f"SELECT {selected}requests, prompt_tokens, completion_tokens, cost_usd, last_ts "
        f"FROM audit_rollup {ROLLED}{filters} "
        f"UNION ALL {events.format(source=LATE)} UNION ALL {events.format(source=RAW)}"
        f") AS sources{_group(columns)}",
        params * 3,
    )
    for r in rows:
        r["requests"] = int(r["requests"])
        r["prompt_tokens"] = int(r["prompt_tokens"])
        r["completion_tokens"] = int(r["completion_tokens"])
        r["cost_usd"] = float(r["cost_usd"])
    return rows


def _group(columns: list[str]) -> str:
    return f" GROUP BY {', '.join(columns)} ORDER BY {', '.join(columns)}" if columns else ""


def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, math.ceil(share * len(sorted_values)) - 1))
    return sorted_values[rank]


SHARES = {"p50_ms": 0.50, "p90_ms": 0.90, "p99_ms": 0.99}

RAW_ROW_CAP = 200_000
"""SQLite: the most latencies an exact answer fetches; beyond it the histogram answers."""


def latency(
    db: Database,
    group_by: str,
    *,
    team_id: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> list[dict[str, Any]]:
    """p50/p90/p99 latency in ms, and errors (status 5xx) and their rate, per group
    (blocking).

    Exact (nearest rank) when the range holds no day rolled up: PostgreSQL computes the
    percentiles itself (``percentile_disc``), SQLite in Python from at most
    :data:`RAW_ROW_CAP` latencies. Otherwise from the roll-up's latency histogram, with
    the raw events' latencies bucketed the same way in SQL: each percentile within
    :data:`~gateway_app.governance.rollup.ACCURACY` (1 %) of the exact one; requests and
    errors exact either way."""
    columns = _columns(group_by)
    filters, params = _filters(team_id, since, until)
    through = rollup.watermark(db)
    if through is None or (since is not None and since > through):
        exact = _exact_latency(db, columns, filters, params)
        # Retention drops (deletes) a day only once it is rolled up, i.e. after the
        # watermark passed it: unchanged, no day of the range lost a row meanwhile.
        # Changed, the days may be gone from the raw table: the statement below reads
        # roll-up, late and raw events in one snapshot.
        if exact is not None and rollup.watermark(db) == through:
            return exact
    selected = ", ".join([*columns, ""]) if columns else ""
    # Not by key or customer: the histogram without them (a group per route, not caller).
    per_caller = set(columns) & set(rollup.PER_CALLER_COLUMNS)
    table = "audit_rollup_latency" if per_caller else "audit_rollup_latency_coarse"
    events = (
        f"SELECT {selected}{rollup.BUCKET_SQL} AS bucket, 1 AS requests, "
        f"{rollup.ERROR_SQL} AS errors FROM {{source}} AND latency_ms IS NOT NULL{filters}"
    )
    rows = db.fetch(
        f"SELECT {selected}bucket, SUM(requests) AS requests, SUM(errors) AS errors FROM ("
        f"SELECT {selected}bucket, requests, errors FROM {table} "
        f"{ROLLED}{filters} "
        f"UNION ALL {events.format(source=LATE)} UNION ALL {events.format(source=RAW)}"
        f") AS sources GROUP BY {selected}bucket",
        params * 3,
    )
    histograms: dict[tuple[Any, ...], list[tuple[int, int]]] = defaultdict(list)
    errors: dict[tuple[Any, ...], int] = defaultdict(int)
    for r in rows:
        group = tuple(r[c] for c in columns)
        histograms[group].append((int(r["bucket"]), int(r["requests"])))
        errors[group] += int(r["errors"])
    out = []
    for group in sorted(histograms, key=_order):
        histogram = histograms[group]
        requests = sum(count for _, count in histogram)
        out.append(
            {
                **dict(zip(columns, group, strict=True)),
                "requests": requests,
                **{
                    name: rollup.histogram_percentile(histogram, share)
                    for name, share in SHARES.items()
                },
                "errors": errors[group],
                "error_rate": errors[group] / requests,
            }
        )
    return out


def _order(group: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(str(v) for v in group)


def _exact_latency(
    db: Database, columns: list[str], filters: str, params: list[Any]
) -> list[dict[str, Any]] | None:
    """:func:`latency` from the raw events only (every day in range is raw); None if
    SQLite would fetch more than :data:`RAW_ROW_CAP` latencies."""
    where = f"kind = 'request' AND latency_ms IS NOT NULL{filters}"
    selected = ", ".join([*columns, ""]) if columns else ""
    if db.kind == "postgres":
        percentiles = ", ".join(
            f"percentile_disc({share}) WITHIN GROUP (ORDER BY latency_ms) AS {name}"
            for name, share in SHARES.items()
        )
        grouping = f" GROUP BY {', '.join(columns)}" if columns else ""
        rows = db.fetch(
            f"SELECT {selected}COUNT(*) AS requests, {percentiles}, "
            f"SUM({rollup.ERROR_SQL}) AS errors FROM audit_events WHERE {where}{grouping}",
            params,
        )
        out = []
        for r in sorted(rows, key=lambda r: _order(tuple(r[c] for c in columns))):
            requests = int(r["requests"])
            if not requests:
                continue  # (no group by: one row of no events)
            out.append(
                {
                    **{c: r[c] for c in columns},
                    "requests": requests,
                    **{name: float(r[name]) for name in SHARES},
                    "errors": int(r["errors"]),
                    "error_rate": int(r["errors"]) / requests,
                }
            )
        return out
    groups: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    errors: dict[tuple[Any, ...], int] = defaultdict(int)
    fetched = db.fetch(
        f"SELECT {selected}latency_ms, status FROM audit_events WHERE {where} "
        f"LIMIT {RAW_ROW_CAP + 1}",
        params,
    )
    if len(fetched) > RAW_ROW_CAP:
        return None
    for r in fetched:
        group = tuple(r[c] for c in columns)
        groups[group].append(float(r["latency_ms"]))
        if r["status"] is not None and int(r["status"]) >= 500:
            errors[group] += 1
    out = []
    for group in sorted(groups, key=_order):
        values = sorted(groups[group])
        out.append(
            {
                **dict(zip(columns, group, strict=True)),
                "requests": len(values),
                **{name: percentile(values, share) for name, share in SHARES.items()},
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
