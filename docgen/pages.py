"""Which page holds which generated block, and how a block is replaced in a page."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from docgen import reference

DOCS = Path(__file__).resolve().parents[1] / "docs"

#: Block name -> renderer. A page marks a block with
#: ``<!-- generated:NAME:start -->`` and ``<!-- generated:NAME:end -->``.
BLOCKS: dict[str, Callable[[], str]] = {
    "stack-config": reference.stack_config,
    "dns-capabilities": reference.dns_capabilities,
    "gateway-config": reference.gateway_config,
    "admin-api": reference.admin_api,
    "policies": reference.policies,
    "policy-parameters": reference.policy_parameters,
    "metrics": reference.metrics,
    "cli": reference.cli,
    "governance-traffic": reference.governance_traffic,
}

#: Pages (relative to docs/) that hold generated blocks, and which.
PAGES: dict[str, tuple[str, ...]] = {
    "reference/configuration.md": ("stack-config",),
    "reference/global-dns.md": ("dns-capabilities",),
    "reference/gateway-config.md": ("gateway-config",),
    "reference/admin-api.md": ("admin-api",),
    "reference/policies.md": ("policies", "policy-parameters"),
    "reference/metrics.md": ("metrics",),
    "reference/cli.md": ("cli",),
    "explanation/performance.md": ("governance-traffic",),
}

_CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.S)


def escape_markup(markdown: str) -> str:
    """``<`` and ``>`` outside code as entities: ``<hostname>`` in a description would
    otherwise be read as an HTML tag and vanish from the page."""
    parts = _CODE.split(markdown)
    for i in range(0, len(parts), 2):  # even parts are outside code
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "".join(parts)


_BLOCK = re.compile(r"(<!-- generated:([a-z-]+):start -->\n)(.*?)(<!-- generated:\2:end -->)", re.S)


def render_page(text: str) -> str:
    """``text`` with every generated block rendered afresh (unknown names are an error)."""
    cache: dict[str, str] = {}

    def fresh(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in BLOCKS:
            raise KeyError(f"unknown generated block {name!r}; known: {sorted(BLOCKS)}")
        if name not in cache:
            cache[name] = escape_markup(BLOCKS[name]())
        return f"{match.group(1)}{cache[name]}{match.group(4)}"

    return _BLOCK.sub(fresh, text)


def blocks_of(text: str) -> list[str]:
    """The names of the generated blocks a page holds, in order."""
    return [match.group(2) for match in _BLOCK.finditer(text)]


def stale_pages() -> list[str]:
    """The pages whose generated blocks differ from what the code renders now."""
    stale = []
    for page in PAGES:
        text = (DOCS / page).read_text()
        if render_page(text) != text:
            stale.append(page)
    return stale
