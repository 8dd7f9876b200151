"""Renderers of the generated reference blocks: each returns Markdown from the code.

Each function documents one source of truth and imports it lazily, so a page
that needs only one of them does not pay for the others.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import types
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

# --------------------------------------------------------------- the stack config


def stack_config() -> str:
    """Every key of ``Pulumi.<stack>.yaml`` (``infra/config.py``), as ``aigw config-reference``."""
    from infra.docs import config_reference

    return config_reference()


def dns_capabilities() -> str:
    """What each DNS cloud can do (``infra/global_lb/capabilities.py``)."""
    from infra.global_lb.capabilities import capability_table

    return capability_table()


# --------------------------------------------------------------- the gateway config


def _cell(text: str) -> str:
    """One table cell: one line, pipes escaped, reST's double backticks as Markdown's."""
    return " ".join(text.split()).replace("``", "`").replace("|", "\\|")


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in args else "")
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (list, tuple):
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"map of {_type_name(args[1])}" if args else "map"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "*required*"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "—"
    if isinstance(value, BaseModel):
        return ""
    if value in ({}, [], ()):
        return "`{}`" if isinstance(value, dict) else "`[]`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list | tuple):
        return "`" + ", ".join(str(v) for v in value) + "`"
    return f"`{value}`"


def _nested(annotation: Any) -> tuple[str, type[BaseModel]] | None:
    """The sub-model a field holds, with the path suffix: ``""``, ``.<name>`` or ``[]``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            found = _nested(arg)
            if found:
                return found
        return None
    if origin is dict and args and _is_model(args[1]):
        return ".<name>", args[1]
    if origin in (list, tuple) and args and _is_model(args[0]):
        return "[]", args[0]
    if _is_model(annotation):
        return "", annotation
    return None


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _model_rows(model: type[BaseModel], prefix: str) -> Iterator[str]:
    for name, field in model.model_fields.items():
        if field.exclude:
            continue  # derived by the loader, never read from the file
        key = f"{prefix}{field.alias or name}"
        description = field.description or ""
        nested = _nested(field.annotation)
        if nested and not nested[0] and not description:
            description = (nested[1].__doc__ or "").strip().split("\n\n")[0]
        yield (
            f"| `{key}` | {_type_name(field.annotation)} | {_default(field)} | "
            f"{_cell(description)} |"
        )
        if nested:
            yield from _model_rows(nested[1], f"{key}{nested[0]}.")


def gateway_config() -> str:
    """Every key of the gateway's config file (``gateway_app.config.GatewayConfig``)."""
    from gateway_app.config import GatewayConfig

    lines = [
        "| key | type | default | description |",
        "|---|---|---|---|",
        *_model_rows(GatewayConfig, ""),
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------- the admin API

#: What each admin route does, keyed by (method, path pattern). The routes
#: themselves come from :func:`admin_routes`; a route without a line here, or a
#: line without a route, fails the generator (so the page lists exactly the API).
ADMIN_ROUTE_DOCS: dict[tuple[str, str], str] = {
    ("GET", "/admin/projects"): "list projects and their owning team (`?team_id=`)",
    ("POST", "/admin/projects"): "claim a project: `project_id` (and `team_id` for the admin)",
    ("GET", "/admin/projects/{project_id}"): "one project and its owning team",
    ("GET", "/admin/keys"): "list keys, never their secrets (`?team_id=`)",
    ("POST", "/admin/keys"): "create a key: `team_id`, `project_id`, `name`, `role`, `models`, "
    "`expires_at` or `ttl_s`, `metadata`; returns the key once",
    ("GET", "/admin/keys/{key_id}"): "one key (never its secret)",
    ("DELETE", "/admin/keys/{key_id}"): "revoke a key",
    ("POST", "/admin/keys/{key_id}/revoke"): "revoke a key",
    ("POST", "/admin/keys/{key_id}/rotate"): "new secret for the same key id, returned once; "
    "the old one stops working",
    ("GET", "/admin/limits"): "every budget and rate limit the caller may see",
    ("GET", "/admin/limits/{scope}/{scope_id}"): "one scope's limits",
    ("PUT", "/admin/limits/{scope}/{scope_id}"): "set any of `daily_usd`, `monthly_usd`, `rpm`, "
    "`tpm` (null removes one); a `PUT` on an unclaimed project claims it (the admin sends "
    "`team_id`)",
    ("DELETE", "/admin/limits/{scope}/{scope_id}"): "remove a scope's limits",
    ("GET", "/admin/analytics/{kind}"): "`usage` (requests, tokens, USD per group) or "
    "`latency` (p50/p90/p99, errors); `group_by`, `since`, `until`, `team_id`",
    ("GET", "/admin/audit"): "audit events, newest first: `limit`, `q`, `kind`, `action`, "
    "`actor`, `key_id`, `project_id`, `model`, `request_id`, `since`, `until`",
    ("GET", "/admin/budgets/{scope}/{scope_id}"): "today's and this month's spend and open "
    "reservations of one scope",
    ("POST", "/auth/sessions/revoke"): "end every console session of a person (`subject`); "
    "only with people's sign-in configured",
}


def admin_routes() -> list[tuple[str, str, str, bool]]:
    """The admin API's routes: (method, path pattern, least role, writes).

    Today the admin API dispatches in ``gateway_app/governance/service.py`` (an
    if-chain) and ``gateway_app/identity/web.py``; this table states its routes and
    ``tests/docs/test_generated.py`` calls each one on a live gateway to prove it
    exists. When the admin API becomes a route table (issue 23:
    ``gateway_app.governance.admin.AdminApi.routes``), return
    ``[(r.method, r.pattern, r.role.value, r.writes) for r in api.routes]`` here
    instead, and the check against the live gateway becomes redundant.
    """
    read, write = "viewer", "team_admin"
    return [
        ("GET", "/admin/projects", read, False),
        ("POST", "/admin/projects", write, True),
        ("GET", "/admin/projects/{project_id}", read, False),
        ("GET", "/admin/keys", read, False),
        ("POST", "/admin/keys", write, True),
        ("GET", "/admin/keys/{key_id}", read, False),
        ("DELETE", "/admin/keys/{key_id}", write, True),
        ("POST", "/admin/keys/{key_id}/revoke", write, True),
        ("POST", "/admin/keys/{key_id}/rotate", write, True),
        ("GET", "/admin/limits", read, False),
        ("GET", "/admin/limits/{scope}/{scope_id}", read, False),
        ("PUT", "/admin/limits/{scope}/{scope_id}", write, True),
        ("DELETE", "/admin/limits/{scope}/{scope_id}", write, True),
        ("GET", "/admin/analytics/{kind}", read, False),
        ("GET", "/admin/audit", read, False),
        ("GET", "/admin/budgets/{scope}/{scope_id}", read, False),
        ("POST", "/auth/sessions/revoke", "admin", True),
    ]


def admin_api() -> str:
    """The admin API's route table with the least role each route needs."""
    routes = admin_routes()
    keys = {(method, path) for method, path, _, _ in routes}
    undocumented = keys - set(ADMIN_ROUTE_DOCS)
    orphaned = set(ADMIN_ROUTE_DOCS) - keys
    if undocumented or orphaned:
        raise ValueError(
            f"docgen.reference.ADMIN_ROUTE_DOCS is out of step with the admin API: "
            f"describe {sorted(undocumented)}, drop {sorted(orphaned)}"
        )
    lines = [
        "| method | path | least role | changes state | what it does |",
        "|---|---|---|---|---|",
    ]
    for method, path, role, writes in routes:
        lines.append(
            f"| `{method}` | `{path}` | `{role}` | {'yes' if writes else 'no'} | "
            f"{ADMIN_ROUTE_DOCS[(method, path)]} |"
        )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------- the policy pack


def policies() -> str:
    """Every policy of the pack: area, default level, what it checks, how to fix it."""
    from policies.pack import all_policies

    rows = [
        "| policy | area | level | what it checks | how to fix a violation |",
        "|---|---|---|---|---|",
    ]
    for policy in all_policies():
        checks, _, fix = policy.description.partition(" Fix: ")
        fix = fix or policy.remediation_steps or "set the property the violation names"
        level = getattr(policy.enforcement_level, "value", policy.enforcement_level)
        rows.append(
            f"| `{policy.name}` | {policy.category.value} | {level} | {_cell(checks)} | "
            f"{_cell(fix)} |"
        )
    return "\n".join(rows) + "\n"


def policy_parameters() -> str:
    """Every configurable parameter of the pack's policies, with its default."""
    from policies.pack import all_policies

    rows = ["| policy | parameter | default | meaning |", "|---|---|---|---|"]
    for policy in all_policies():
        schema = policy.config_schema
        if schema is None:
            continue
        for name, spec in schema.properties.items():
            default = spec.get("default")
            shown = "—" if default is None else f"`{_json(default)}`"
            rows.append(
                f"| `{policy.name}` | `{name}` | {shown} | {_cell(spec.get('description', ''))} |"
            )
    return "\n".join(rows) + "\n"


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


# --------------------------------------------------------------- metrics


@contextlib.contextmanager
def _multiproc_dir() -> Iterator[None]:
    """A throwaway ``PROMETHEUS_MULTIPROC_DIR`` (the supervisor's counter exists only there)."""
    saved = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    with tempfile.TemporaryDirectory() as folder:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            else:
                os.environ["PROMETHEUS_MULTIPROC_DIR"] = saved


def metric_families() -> list[tuple[str, str, tuple[str, ...], str]]:
    """(exported name, type, labels, help) of every metric the gateway can export."""
    from gateway_app.config import parse
    from gateway_app.observability.metrics import Metrics
    from gateway_app.server import _restart_counter

    config = parse(
        {
            "providers": {"p": {"type": "openai", "api_key": "${UNSET_FOR_DOCS}"}},
            "models": {"m": {"deployments": [{"provider": "p", "model": "m"}]}},
            # Opt-in families are exported too, so the reference lists them.
            "observability": {"metrics": {"per_key_labels": True}},
        }
    )
    collectors = list(Metrics(config).registry._collector_to_names)
    with _multiproc_dir():
        collectors.append(_restart_counter())
    families = []
    for collector in collectors:
        kind = collector._type
        name = collector._name + ("_total" if kind == "counter" else "")
        families.append((name, kind, tuple(collector._labelnames), collector._documentation))
    return sorted(families)


def metrics() -> str:
    """The metric families with their labels."""
    rows = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    for name, kind, labels, help_text in metric_families():
        shown = ", ".join(f"`{label}`" for label in labels) or "—"
        rows.append(f"| `{name}` | {kind} | {shown} | {_cell(help_text)} |")
    return "\n".join(rows) + "\n"


# --------------------------------------------------------------- the command lines


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found += list(action.choices.items())
    return found


def _usage(parser: argparse.ArgumentParser, width: int = 100) -> str:
    formatter = argparse.HelpFormatter(parser.prog, width=width)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def _options(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        name = ", ".join(action.option_strings) or action.dest
        if action.choices and not action.option_strings:
            name = "{" + ",".join(action.choices) + "}"
        help_text = (action.help or "").replace("%(default)s", str(action.default))
        if action.choices and action.option_strings:
            help_text = f"{help_text} (one of {', '.join(map(str, action.choices))})".strip()
        rows.append(f"| `{name}` | {_cell(help_text)} |")
    return rows


def _command_sections(
    parser: argparse.ArgumentParser, level: int, help_text: str = ""
) -> Iterator[str]:
    yield f"{'#' * level} `{parser.prog}`"
    yield ""
    text = help_text or parser.description or ""
    if text:
        yield _cell(text)
        yield ""
    yield "```text"
    yield _usage(parser)
    yield "```"
    yield ""
    options = _options(parser)
    if options:
        yield "| argument | meaning |"
        yield "|---|---|"
        yield from options
        yield ""
    helps = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
    for name, child in _subcommands(parser):
        yield from _command_sections(child, min(level + 1, 4), helps.get(name, ""))


def cli() -> str:
    """Every command, subcommand and option of ``aigw`` and ``python -m gateway_app``."""
    from infra.cli import _parser

    lines = list(_command_sections(_parser(), 2))
    return "\n".join(lines).rstrip() + "\n"
