"""Azure resource names that fit each resource type's rules.

Azure's naming rules differ per resource type (length, allowed characters,
case, hyphens) and a name that breaks them fails only at deploy time, deep in
``pulumi up``. :func:`azure_name` builds a name from parts and fits it to the
type's rule (shortening with a stable hash when too long);
:func:`check_name` validates a name and says how to fix it.

Names follow the Cloud Adoption Framework abbreviations (``rg-``, ``vnet-``,
``aks-``, ``psql-``...), as Azure's verified modules do.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class NameRule:
    """The naming rule of one Azure resource type."""

    min_length: int
    max_length: int
    pattern: str
    """Full-match regex of a valid name."""
    allowed: str
    """The rule in words, for error messages."""
    lowercase: bool = False
    separator: str = "-"
    """What joins name parts; empty where the type allows no hyphen."""
    no_double_hyphen: bool = False

    @property
    def specials(self) -> str:
        """The non-alphanumeric characters the type allows (read from ``pattern``)."""
        return "".join(c for c in "-_.()" if re.fullmatch(self.pattern, f"a{c}a"))


_ALNUM_EDGES = r"[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?"

RULES: dict[str, NameRule] = {
    "resource_group": NameRule(
        1,
        90,
        r"[A-Za-z0-9_().-]*[A-Za-z0-9_()-]",
        "letters, digits, '_', '-', '.', '(' and ')', not ending with '.'",
    ),
    "virtual_network": NameRule(
        2, 64, _ALNUM_EDGES, "letters, digits, '_', '-' and '.', starting with a letter or digit"
    ),
    "subnet": NameRule(
        1, 80, _ALNUM_EDGES, "letters, digits, '_', '-' and '.', starting with a letter or digit"
    ),
    "network_security_group": NameRule(
        1, 80, _ALNUM_EDGES, "letters, digits, '_', '-' and '.', starting with a letter or digit"
    ),
    "nat_gateway": NameRule(
        1, 80, _ALNUM_EDGES, "letters, digits, '_', '-' and '.', starting with a letter or digit"
    ),
    "public_ip": NameRule(
        1, 80, _ALNUM_EDGES, "letters, digits, '_', '-' and '.', starting with a letter or digit"
    ),
    "private_endpoint": NameRule(
        2, 64, _ALNUM_EDGES, "letters, digits, '_', '-' and '.', starting with a letter or digit"
    ),
    "user_assigned_identity": NameRule(
        3,
        128,
        r"[A-Za-z0-9][A-Za-z0-9_-]*",
        "letters, digits, '_' and '-', starting with a letter or digit",
    ),
    "log_analytics_workspace": NameRule(
        4,
        63,
        r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?",
        "letters, digits and '-', starting and ending with a letter or digit",
    ),
    "aks_cluster": NameRule(
        1,
        63,
        r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?",
        "letters, digits, '_' and '-', starting and ending with a letter or digit",
    ),
    "aks_dns_prefix": NameRule(
        1,
        54,
        r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?",
        "letters, digits and '-', starting and ending with a letter or digit",
    ),
    "aks_node_pool": NameRule(
        1,
        12,
        r"[a-z][a-z0-9]*",
        "lowercase letters and digits, starting with a letter",
        lowercase=True,
        separator="",
    ),
    "postgres_server": NameRule(
        3,
        63,
        r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?",
        "lowercase letters, digits and '-', starting and ending with a letter or digit",
        lowercase=True,
    ),
    "redis_enterprise": NameRule(
        1,
        60,
        r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?",
        "letters, digits and '-', starting and ending with a letter or digit, no '--'",
        no_double_hyphen=True,
    ),
    "storage_account": NameRule(
        3, 24, r"[a-z0-9]+", "lowercase letters and digits only", lowercase=True, separator=""
    ),
    "container_registry": NameRule(
        5, 50, r"[a-z0-9]+", "lowercase letters and digits only", lowercase=True, separator=""
    ),
    "key_vault": NameRule(
        3,
        24,
        r"[A-Za-z](?:[A-Za-z0-9-]*[A-Za-z0-9])?",
        "letters, digits and '-', starting with a letter, ending with a letter or digit, no '--'",
        no_double_hyphen=True,
    ),
    "data_collection_rule": NameRule(
        3, 64, _ALNUM_EDGES, "letters, digits, '_', '-' and '.', starting with a letter or digit"
    ),
    "policy_assignment": NameRule(
        1, 64, r"[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9_-])?", "letters, digits, '_', '-' and '.'"
    ),
}
"""The rule of every resource type this project names, by kind."""

_HASH_LENGTH = 6


def rule(kind: str) -> NameRule:
    """The rule of ``kind``; a clear error for an unknown kind."""
    try:
        return RULES[kind]
    except KeyError:
        raise ValueError(
            f"no Azure naming rule for resource kind {kind!r}; use one of {', '.join(sorted(RULES))}"
        ) from None


def check_name(kind: str, name: str) -> str:
    """Return ``name`` if it is a valid ``kind`` name, else raise ValueError saying how to fix it."""
    r = rule(kind)
    label = kind.replace("_", " ")
    if not r.min_length <= len(name) <= r.max_length:
        raise ValueError(
            f"{label} name {name!r} is {len(name)} characters long; Azure allows "
            f"{r.min_length} to {r.max_length}: shorten ai-gateway:tags.project or pick a shorter name"
        )
    if not re.fullmatch(r.pattern, name) or (r.no_double_hyphen and "--" in name):
        raise ValueError(
            f"{label} name {name!r} has characters Azure does not allow there; use {r.allowed}"
        )
    return name


def azure_name(kind: str, *parts: str, reserve: int = 0) -> str:
    """A valid ``kind`` name from ``parts`` (joined by the type's separator).

    Characters the type does not allow are dropped (and the name lowercased
    where the type requires it). A name longer than the type allows (minus
    ``reserve`` characters kept free for a suffix added later, see
    :func:`with_suffix`) is cut and ends with a hash of the full name, so two
    long names stay distinct. Raises ValueError when nothing valid remains.
    """
    r = rule(kind)
    if not parts or not any(parts):
        raise ValueError(f"{kind} name: no name parts given; pass at least one non-empty part")
    name = r.separator.join(p for p in parts if p)
    if r.lowercase:
        name = name.lower()
    allowed = _allowed_chars(r)
    name = "".join(c for c in name if c in allowed)
    if r.no_double_hyphen or r.separator == "-":
        name = re.sub(r"-{2,}", "-", name)
    limit = r.max_length - reserve
    if limit < r.min_length:
        raise ValueError(
            f"{kind} name: reserve={reserve} leaves no room in Azure's {r.max_length}-character "
            "limit; reserve fewer characters"
        )
    if len(name) > limit:
        digest = hashlib.sha256(name.encode()).hexdigest()[:_HASH_LENGTH]
        head = name[: limit - _HASH_LENGTH - len(r.separator)]
        name = f"{head.rstrip('-_.')}{r.separator}{digest}"
    name = name.strip("-_.") if kind != "resource_group" else name.rstrip(".")
    return check_name(kind, name)


def with_suffix(kind: str, base: str, suffix: str) -> str:
    """``base`` plus a suffix (a random id making a globally unique name), validated."""
    r = rule(kind)
    suffix = suffix.lower() if r.lowercase else suffix
    return check_name(kind, f"{base}{r.separator}{suffix}")


def _allowed_chars(r: NameRule) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    chars = letters + "0123456789"
    if not r.lowercase:
        chars += letters.upper()
    return chars + r.specials
