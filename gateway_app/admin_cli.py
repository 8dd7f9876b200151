"""``aigw admin``: keys, limits, spend, audit and sessions against a running gateway.

Where the gateway is and who you are, first found wins:

1. ``--url`` / ``--token-file`` on the command line;
2. ``AIGW_URL`` and ``AIGW_ADMIN_TOKEN`` (and ``AIGW_CA_FILE`` for a private CA);
3. the config file (``--config``, ``AIGW_ADMIN_CONFIG``, else
   ``~/.config/aigw/admin.toml``), section ``[default]`` or ``--profile NAME``::

       [default]
       url = "https://ai.example.com"
       token_file = "~/.config/aigw/token"   # or token = "..." (file mode 600)
       ca_file = "/etc/ssl/private-ca.pem"   # optional

The token is the gateway's admin key, or a team admin's virtual key (which sees
and changes its own team only). Every command prints a table, or with
``--json`` the gateway's JSON for scripts. Exit codes: 0 done, 1 the gateway
refused or could not be reached (the message says why), 2 bad usage or setup.

Only the standard library is imported, so the command starts fast anywhere
the gateway package is installed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import ssl
import stat
import sys
import tomllib
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
DEFAULT_CONFIG = Path("~/.config/aigw/admin.toml")


class CliError(Exception):
    """A problem to report in one line; ``code`` is the exit code."""

    def __init__(self, message: str, code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------ settings


def _config_file(args: argparse.Namespace) -> Path:
    return Path(args.config or os.environ.get("AIGW_ADMIN_CONFIG") or DEFAULT_CONFIG).expanduser()


def _read_profile(path: Path, profile: str, required: bool) -> dict[str, Any]:
    if not path.exists():
        if required:
            raise CliError(f"config file {path} does not exist", EXIT_USAGE)
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CliError(f"config file {path}: {exc}", EXIT_USAGE) from None
    section = data.get(profile)
    if section is None:
        if profile != "default" or required:
            raise CliError(
                f"config file {path} has no [{profile}] section (it has "
                f"{sorted(data) or 'none'}); add one or choose --profile",
                EXIT_USAGE,
            )
        return {}
    if "token" in section and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        print(
            f"warning: {path} holds a token and is readable by others; chmod 600 {path}",
            file=sys.stderr,
        )
    return dict(section)


def _read_token_file(value: str) -> str:
    path = Path(value).expanduser()
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise CliError(f"cannot read the token file {path}: {exc.strerror}", EXIT_USAGE) from None
    if not token:
        raise CliError(f"the token file {path} is empty", EXIT_USAGE)
    return token


def settings(args: argparse.Namespace) -> tuple[str, str, str | None]:
    """(gateway URL, token, CA file) from the flags, the environment and the config file."""
    explicit = bool(args.config or os.environ.get("AIGW_ADMIN_CONFIG") or args.profile)
    profile = _read_profile(_config_file(args), args.profile or "default", explicit)
    url = args.url or os.environ.get("AIGW_URL") or profile.get("url")
    token: str | None
    if args.token_file:
        token = _read_token_file(args.token_file)
    elif os.environ.get("AIGW_ADMIN_TOKEN"):
        token = os.environ["AIGW_ADMIN_TOKEN"]
    elif profile.get("token_file"):
        token = _read_token_file(str(profile["token_file"]))
    else:
        token = profile.get("token")
    ca_file = os.environ.get("AIGW_CA_FILE") or profile.get("ca_file")
    missing = [name for name, value in (("url", url), ("token", token)) if not value]
    if missing:
        raise CliError(
            f"no gateway {' or '.join(missing)}: set AIGW_URL and AIGW_ADMIN_TOKEN, pass "
            f"--url/--token-file, or write them to {_config_file(args)} "
            "(see `aigw admin --help`)",
            EXIT_USAGE,
        )
    return str(url).rstrip("/"), str(token), ca_file


# ------------------------------------------------------------------ HTTP


class Gateway:
    """The admin API of one gateway."""

    def __init__(self, url: str, token: str, ca_file: str | None, timeout: float = 30) -> None:
        self.url = url
        self.token = token
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=ca_file) if ca_file else None

    def call(
        self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None
    ) -> Any:
        """One request; the JSON answer, or :class:`CliError` with the gateway's message."""
        params = {k: v for k, v in (query or {}).items() if v not in (None, "")}
        target = self.url + path + (f"?{urlencode(params)}" if params else "")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(target, data=data, method=method)
        request.add_header("authorization", f"Bearer {self.token}")
        request.add_header("accept", "application/json")
        if data is not None:
            request.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(
                request, timeout=self.timeout, context=self.context
            ) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                message = json.loads(raw)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = raw.decode(errors="replace")[:300] or exc.reason
            raise CliError(f"{method} {path}: HTTP {exc.code}: {message}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CliError(f"cannot reach the gateway at {self.url}: {reason}") from None
        return json.loads(raw) if raw else None


# ------------------------------------------------------------------ output


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Rows as aligned columns (``columns`` present in the rows, in order)."""
    if not rows:
        return "(none)"
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def usd(amount: float | None) -> str:
    """Dollars with the precision that shows the amount."""
    if not amount:
        return "$0"
    if abs(amount) >= 1:
        return f"${amount:,.2f}"
    return f"${amount:.{max(2, 2 - math.floor(math.log10(abs(amount))))}f}"


def when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M") if ts else "-"


def emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    print(json.dumps(payload, indent=2) if args.json else text)


# ------------------------------------------------------------------ commands


def _limit_values(args: argparse.Namespace) -> dict[str, Any]:
    return {
        name: getattr(args, attr)
        for name, attr in (
            ("daily_usd", "budget_daily"),
            ("monthly_usd", "budget_monthly"),
            ("rpm", "rpm"),
            ("tpm", "tpm"),
        )
        if getattr(args, attr, None) is not None
    }


def keys_list(gw: Gateway, args: argparse.Namespace) -> None:
    keys = gw.call("GET", "/admin/keys", query={"team_id": args.team})["data"]
    rows = [
        {
            **k,
            "created": when(k["created_at"]),
            "status": "revoked" if k["revoked_at"] else "active",
        }
        for k in keys
    ]
    emit(
        args,
        keys,
        table(rows, ["id", "name", "team_id", "project_id", "role", "created", "status"]),
    )


def keys_create(gw: Gateway, args: argparse.Namespace) -> None:
    body: dict[str, Any] = {
        "team_id": args.team,
        "project_id": args.project or args.team,
        "name": args.name or "",
        "role": args.role,
    }
    if args.models:
        body["models"] = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.ttl_days is not None:
        body["ttl_s"] = args.ttl_days * 86400
    created = gw.call("POST", "/admin/keys", body)
    limits = _limit_values(args)
    if limits:
        created["limit"] = gw.call("PUT", f"/admin/limits/key/{created['id']}", limits)
    budget = f", monthly budget {usd(args.budget_monthly)}" if args.budget_monthly else ""
    text = (
        f"created {created['id']} (team {created['team_id']}, project {created['project_id']}"
        f"{budget})\n{created['key']}"
    )
    emit(args, created, text)
    print("store the key now: it is shown once", file=sys.stderr)


def keys_show(gw: Gateway, args: argparse.Namespace) -> None:
    key = gw.call("GET", f"/admin/keys/{quote(args.key_id)}")
    emit(
        args,
        key,
        table([key], ["id", "name", "team_id", "project_id", "role", "models", "revoked_at"]),
    )


def keys_rotate(gw: Gateway, args: argparse.Namespace) -> None:
    rotated = gw.call("POST", f"/admin/keys/{quote(args.key_id)}/rotate")
    emit(
        args, rotated, f"rotated {rotated['id']}; the old secret no longer works\n{rotated['key']}"
    )
    print("store the key now: it is shown once", file=sys.stderr)


def keys_revoke(gw: Gateway, args: argparse.Namespace) -> None:
    revoked = gw.call("POST", f"/admin/keys/{quote(args.key_id)}/revoke")
    emit(args, revoked, f"revoked {revoked['id']} at {when(revoked['revoked_at'])}")


def limits_list(gw: Gateway, args: argparse.Namespace) -> None:
    limits = gw.call("GET", "/admin/limits")["data"]
    emit(
        args,
        limits,
        table(limits, ["scope", "scope_id", "team_id", "daily_usd", "monthly_usd", "rpm", "tpm"]),
    )


def limits_set(gw: Gateway, args: argparse.Namespace) -> None:
    path = f"/admin/limits/{quote(args.scope)}/{quote(args.scope_id, safe='')}"
    try:
        current = gw.call("GET", path)
    except CliError as exc:
        if "HTTP 404" not in str(exc):
            raise
        current = {}
    # Only the values given change; the others keep their current setting.
    body = {k: current.get(k) for k in ("daily_usd", "monthly_usd", "rpm", "tpm")}
    body.update(_limit_values(args))
    for name in args.clear or []:
        body[name] = None
    if args.team:
        body["team_id"] = args.team
    saved = gw.call("PUT", path, body)
    emit(
        args,
        saved,
        table([saved], ["scope", "scope_id", "team_id", "daily_usd", "monthly_usd", "rpm", "tpm"]),
    )


def limits_delete(gw: Gateway, args: argparse.Namespace) -> None:
    path = f"/admin/limits/{quote(args.scope)}/{quote(args.scope_id, safe='')}"
    result = gw.call("DELETE", path)
    emit(
        args,
        result,
        f"deleted the limit of {args.scope} {args.scope_id}"
        if result.get("deleted")
        else "no such limit",
    )


def spend(gw: Gateway, args: argparse.Namespace) -> None:
    since = args.since or datetime.now(UTC).strftime("%Y-%m-01")
    groups = [g.strip() for g in args.by.split(",") if g.strip()]
    filters = {"project": "project_id", "key": "key_id", "model": "model"}
    for name in filters:
        if getattr(args, name) is not None and name not in groups:
            groups.append(name)  # filtered below, so it must be a group
    query = {
        "group_by": ",".join(groups),
        "team_id": args.team,
        "since": since,
        "until": args.until,
    }
    rows = gw.call("GET", "/admin/analytics/usage", query=query)["data"]
    for name, column in filters.items():
        wanted = getattr(args, name)
        if wanted is not None:
            rows = [r for r in rows if r.get(column) == wanted]
    total = {
        "requests": sum(r["requests"] for r in rows),
        "prompt_tokens": sum(r["prompt_tokens"] for r in rows),
        "completion_tokens": sum(r["completion_tokens"] for r in rows),
        "cost_usd": sum(r["cost_usd"] for r in rows),
    }
    payload = {
        "team_id": args.team,
        "since": since,
        "until": args.until,
        "group_by": groups,
        "total": total,
        "data": rows,
    }
    if args.team:
        # The team's budget, if it has one: its limits and the live counters against them.
        team = quote(args.team, safe="")
        try:
            limit = gw.call("GET", f"/admin/limits/team/{team}")
        except CliError:
            limit = None
        payload["budget"] = (
            {"limit": limit, "spent": gw.call("GET", f"/admin/budgets/team/{team}")}
            if limit
            else None
        )
    columns = [c for c in (rows[0] if rows else {}) if c not in ("last_request_at",)]
    shown = [{**r, "cost_usd": usd(r["cost_usd"])} for r in rows]
    text = f"{table(shown, columns)}\n\ntotal {usd(total['cost_usd'])} over {total['requests']} requests since {since}"
    emit(args, payload, text)


def budget(gw: Gateway, args: argparse.Namespace) -> None:
    path = f"/{quote(args.scope)}/{quote(args.scope_id, safe='')}"
    spent = gw.call("GET", "/admin/budgets" + path)
    try:
        limit = gw.call("GET", "/admin/limits" + path)
    except CliError:
        limit = {}
    payload = {**spent, "limit": limit or None}
    lines = [
        f"{args.scope} {args.scope_id}: today {usd(spent['daily_usd'])}"
        + (f" of {usd(limit['daily_usd'])}" if limit.get("daily_usd") else ""),
        f"{args.scope} {args.scope_id}: {spent['month']} {usd(spent['monthly_usd'])}"
        + (f" of {usd(limit['monthly_usd'])}" if limit.get("monthly_usd") else ""),
    ]
    emit(args, payload, "\n".join(lines))


def latency(gw: Gateway, args: argparse.Namespace) -> None:
    since = args.since or datetime.now(UTC).strftime("%Y-%m-01")
    rows = gw.call(
        "GET",
        "/admin/analytics/latency",
        query={"group_by": args.by, "since": since, "team_id": args.team},
    )["data"]
    columns = [
        *args.by.split(","),
        "requests",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "errors",
        "error_rate",
    ]
    emit(args, rows, table(rows, columns))


def audit(gw: Gateway, args: argparse.Namespace) -> None:
    query = {
        "team_id": args.team,
        "kind": args.kind,
        "action": args.action,
        "actor": args.actor,
        "key_id": args.key,
        "q": args.search,
        "since": args.since,
        "until": args.until,
        "limit": args.limit,
    }
    events = gw.call("GET", "/admin/audit", query=query)["data"]
    rows = []
    for event in events:
        detail = json.loads(event["detail"]) if event.get("detail") else {}
        actor = detail.pop("actor", None) if isinstance(detail, dict) else None
        who = event.get("actor")
        if isinstance(actor, dict) and actor.get("type") == "person":
            who = f"{actor.get('email') or actor.get('subject')} ({actor.get('subject')})"
        elif isinstance(actor, dict) and actor.get("break_glass"):
            who = "admin_key (break-glass)"
        rows.append(
            {
                "time": when(event["ts"]),
                "who": who,
                "action": event.get("action") or event["kind"],
                "team": event.get("team_id"),
                "key": event.get("key_id"),
                "detail": detail or None,
            }
        )
    emit(args, events, table(rows, ["time", "who", "action", "team", "key", "detail"]))


def sessions_revoke(gw: Gateway, args: argparse.Namespace) -> None:
    result = gw.call("POST", "/auth/sessions/revoke", {"subject": args.subject})
    emit(args, result, f"ended {result['sessions_ended']} session(s) of {args.subject}")


# ------------------------------------------------------------------ parser


def add_admin_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``admin`` (and its subcommands) on the ``aigw`` command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print the gateway's JSON")
    common.add_argument("--url", help="gateway URL (default: $AIGW_URL or the config file)")
    common.add_argument("--token-file", help="file holding the admin or team-admin key")
    common.add_argument(
        "--config", help=f"config file (default: $AIGW_ADMIN_CONFIG or {DEFAULT_CONFIG})"
    )
    common.add_argument("--profile", help="config file section (default: default)")

    admin = sub.add_parser(
        "admin",
        help="manage keys, limits, spend and audit on a running gateway",
        description="Manage keys, limits, spend, audit and sessions on a running gateway.",
        epilog="The gateway and token: --url/--token-file, else AIGW_URL and AIGW_ADMIN_TOKEN "
        f"(AIGW_CA_FILE for a private CA), else {DEFAULT_CONFIG} ([default] or --profile: "
        "url, token_file or token, ca_file). --json prints the gateway's JSON.",
    )
    groups = admin.add_subparsers(dest="admin_command", metavar="COMMAND", required=True)

    def command(parent: Any, name: str, handler: Any, help: str) -> argparse.ArgumentParser:
        parser = parent.add_parser(name, help=help, parents=[common])
        parser.set_defaults(handler=run, admin_handler=handler)
        return parser

    keys = groups.add_parser("keys", help="virtual keys").add_subparsers(
        dest="keys_command", metavar="ACTION", required=True
    )
    listing = command(keys, "list", keys_list, "list keys (never their secrets)")
    listing.add_argument("--team", help="one team's keys")
    create = command(keys, "create", keys_create, "create a key; prints its secret once")
    create.add_argument("--team", required=True, help="the team that owns the key")
    create.add_argument("--project", help="its project (default: the team's name)")
    create.add_argument("--name", help="a name people recognise")
    create.add_argument("--role", choices=("member", "team_admin"), default="member")
    create.add_argument("--models", help="comma-separated models it may call (default: all)")
    create.add_argument("--ttl-days", type=float, help="expires after this many days")
    _limit_flags(create)
    for name, handler, text in (
        ("show", keys_show, "show one key"),
        ("rotate", keys_rotate, "new secret, same key id; prints it once"),
        ("revoke", keys_revoke, "revoke a key now"),
    ):
        command(keys, name, handler, text).add_argument("key_id")

    limits = groups.add_parser("limits", help="budgets and rate limits").add_subparsers(
        dest="limits_command", metavar="ACTION", required=True
    )
    command(limits, "list", limits_list, "list limits")
    setter = command(limits, "set", limits_set, "set budgets or rate limits of one scope")
    _scope_args(setter)
    _limit_flags(setter)
    setter.add_argument(
        "--clear",
        action="append",
        choices=("daily_usd", "monthly_usd", "rpm", "tpm"),
        help="remove one value (repeatable); values not given are kept",
    )
    setter.add_argument("--team", help="the owning team of a new project limit (admins)")
    _scope_args(command(limits, "delete", limits_delete, "remove a scope's limits"))

    spending = command(groups, "spend", spend, "spend, tokens and requests from the audit log")
    spending.add_argument("--team", help="one team (a team admin's token sees its own only)")
    spending.add_argument("--project", help="one project (with --by including project)")
    spending.add_argument("--key", help="one key id (with --by including key)")
    spending.add_argument("--model", help="one model (with --by including model)")
    spending.add_argument(
        "--by",
        default="day",
        help="group by: day, month, team, project, key, model, ... (comma-separated)",
    )
    spending.add_argument("--since", help="first UTC day, YYYY-MM-DD (default: this month's first)")
    spending.add_argument("--until", help="last UTC day, YYYY-MM-DD")

    budgets = command(groups, "budget", budget, "live spend of one scope against its limits")
    _scope_args(budgets)

    lat = command(groups, "latency", latency, "latency percentiles and error rates")
    lat.add_argument("--by", default="deployment", help="group by (default: deployment)")
    lat.add_argument("--team", help="one team")
    lat.add_argument("--since", help="first UTC day (default: this month's first)")

    events = command(groups, "audit", audit, "search the audit log (newest first)")
    events.add_argument("--team", help="one team's events")
    events.add_argument("--kind", choices=("admin", "request"), help="admin actions or requests")
    events.add_argument("--action", help="e.g. key.create, limit.put, auth.login")
    events.add_argument("--actor", help="e.g. person:<sub>, admin_key, team_admin:<key id>")
    events.add_argument("--key", help="one key id")
    events.add_argument("--search", help="text in the actor, action or detail (an e-mail)")
    events.add_argument("--since", help="first UTC day")
    events.add_argument("--until", help="last UTC day")
    events.add_argument("--limit", type=int, default=100, help="at most this many (1-1000)")

    sessions = groups.add_parser("sessions", help="people's console sessions").add_subparsers(
        dest="sessions_command", metavar="ACTION", required=True
    )
    revoke = command(sessions, "revoke", sessions_revoke, "end every session of one person")
    revoke.add_argument("subject", help="the person's subject (sub) at the identity provider")


def _scope_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scope", choices=("org", "team", "project", "key", "customer"))
    parser.add_argument("scope_id", help="the team, project, key or customer id (* for org)")


def _limit_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--budget-daily", type=float, metavar="USD", help="daily budget")
    parser.add_argument("--budget-monthly", type=float, metavar="USD", help="monthly budget")
    parser.add_argument("--rpm", type=int, help="requests per minute")
    parser.add_argument("--tpm", type=int, help="tokens per minute")


def run(args: argparse.Namespace) -> int:
    """Run one ``aigw admin`` command; its exit code."""
    try:
        url, token, ca_file = settings(args)
        args.admin_handler(Gateway(url, token, ca_file), args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    return EXIT_OK
