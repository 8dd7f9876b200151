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
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

if TYPE_CHECKING:
    from gateway_app.governance.admin import AdminRoute
    from gateway_app.governance.rbac import Principal

# --------------------------------------------------------------- the stack config


def stack_config() -> str:
    """Every key of ``Pulumi.<stack>.yaml`` (``infra/config/``), as ``aigw config-reference``."""
    from infra.docs import config_reference

    return config_reference()


def dns_capabilities() -> str:
    """What each DNS cloud can do (``infra/config/capabilities.py``)."""
    from infra.config.capabilities import capability_table

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
#: themselves (method, path, least role, whether it writes) are the admin API's own
#: route table (:func:`admin_routes`); a route without a line here, or a line without
#: a route, fails the generator (so the page lists exactly the API).
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


class _NoPeople:
    """People's sign-in as the admin API sees it, attached only so the table lists the
    routes sign-in adds; the generator serves no request."""

    async def principal(self, headers: Mapping[str, str], method: str) -> Principal | None:
        raise NotImplementedError("docgen reads the route table; it serves no request")

    async def revoke_person(self, by: Principal, subject: str) -> int:
        raise NotImplementedError("docgen reads the route table; it serves no request")


def admin_routes() -> list[AdminRoute]:
    """The admin API's route table (``AdminApi.routes``), with people's sign-in attached.

    The table belongs to an :class:`~gateway_app.governance.admin.AdminApi` instance
    (each route holds its bound handler), so the generator builds one over an unopened
    in-memory database: no connection, no request, nothing started.
    """
    from gateway_app.config import parse
    from gateway_app.governance.admin import AdminApi
    from gateway_app.governance.service import Governance
    from gateway_app.governance.storage import Database
    from gateway_app.state.governance import InProcessGovernanceState

    config = parse(
        {
            "providers": {"p": {"type": "openai", "api_key": "${UNSET_FOR_DOCS}"}},
            "models": {"m": {"deployments": [{"provider": "p", "model": "m"}]}},
            "governance": {"enabled": True},
        }
    )
    governance = Governance(
        config,
        state=InProcessGovernanceState(),
        db=Database("sqlite:///:memory:"),
        admin_key=None,
        secret=b"docgen",
    )
    api = AdminApi(governance)
    api.attach_people(_NoPeople())
    return list(api.routes)


def admin_api() -> str:
    """The admin API's route table with the least role each route needs."""
    routes = admin_routes()
    keys = {(route.method, route.pattern) for route in routes}
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
    for route in routes:
        lines.append(
            f"| `{route.method}` | `{route.pattern}` | `{route.role.value}` | "
            f"{'yes' if route.writes else 'no'} | {ADMIN_ROUTE_DOCS[(route.method, route.pattern)]} |"
        )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------- the policy pack


def policies() -> str:
    """Every policy of the pack: area, default level, what it checks, how to fix it."""
    from policies.config import Category
    from policies.pack import all_policies

    rows = [
        "| policy | area | level | what it checks | how to fix a violation |",
        "|---|---|---|---|---|",
    ]
    for policy in all_policies():
        checks, _, fix = policy.description.partition(" Fix: ")
        fix = fix or policy.remediation_steps or "set the property the violation names"
        level = getattr(policy.enforcement_level, "value", policy.enforcement_level)
        # The pack stamps each policy's area on the SDK's Policy (policies/framework.py).
        category: Category = policy.category  # type: ignore[attr-defined]
        rows.append(
            f"| `{policy.name}` | {category.value} | {level} | {_cell(checks)} | {_cell(fix)} |"
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
    from prometheus_client.metrics import MetricWrapperBase

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
        # Only metric objects (Counter, Gauge, Histogram, ...) say what they export before
        # a value exists; the gateway registers nothing else.
        if not isinstance(collector, MetricWrapperBase):
            raise TypeError(f"not a metric family: {collector!r}")
        kind = str(collector._type)
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
    parser: argparse.ArgumentParser,
    level: int,
    help_text: str = "",
    handed_over: Mapping[str, tuple[str, str]] | None = None,
) -> Iterator[str]:
    """``parser``'s heading, usage and options, then each subcommand's; the subcommands in
    ``handed_over`` (name -> the command that runs them, a summary) get one row each."""
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
    handed_over = handed_over or {}
    for name, child in _subcommands(parser):
        if name not in handed_over:
            yield from _command_sections(child, min(level + 1, 4), helps.get(name, ""))
    if handed_over:
        yield f"{'#' * min(level + 1, 4)} The gateway's commands"
        yield ""
        yield "Handed over to the gateway's own entry point (the same process, its own options):"
        yield ""
        yield "| command | runs | what it does |"
        yield "|---|---|---|"
        for name, (target, summary) in handed_over.items():
            yield (
                f"| `{parser.prog} {name}` | [`{target}`](#{_anchor(target)}) | {_cell(summary)} |"
            )
        yield ""


def _anchor(command: str) -> str:
    """The heading id Python-Markdown's toc gives ``## `command```."""
    return "-".join(command.replace("-m ", "m ").split())


def cli() -> str:
    """Every command, subcommand and option of ``aigw`` and ``python -m gateway_app``.

    ``aigw serve|migrate|models|admin`` hand over to ``python -m gateway_app`` (the
    gateway's own entry point): they are documented once, under the gateway's parser.
    """
    from gateway_app.cli import parser as gateway_parser
    from infra.cli import GATEWAY_COMMANDS, _parser

    gateway = gateway_parser()
    handed_over = {
        name: (f"{gateway.prog} {name}", summary) for name, summary in GATEWAY_COMMANDS.items()
    }
    lines = list(_command_sections(_parser(), 2, handed_over=handed_over))
    lines += _command_sections(gateway, 2)
    return "\n".join(lines).rstrip() + "\n"


def governance_traffic() -> str:
    """The governance path's Redis and PostgreSQL traffic per request (the documented counts)."""
    from gateway_app.governance.traffic import markdown

    return markdown()
