"""People and the roles their identity provider's claims map to.

A person signed in through OIDC is known by the provider's ``iss`` and ``sub``
(stable, never reassigned) and shown by e-mail and name. Which role they get
comes from the gateway's config (``identity.roles``), never from the provider
alone: the first rule whose group, e-mail or e-mail domain matches wins, and a
person no rule matches cannot sign in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway_app.config.identity import RoleMapping
from gateway_app.governance.rbac import Person as Person  # people are principals too


@dataclass(frozen=True, slots=True)
class Assignment:
    """The admin API role (``admin``, ``team_admin``, ``viewer``) and team a rule grants."""

    role: str
    team_id: str | None
    rule: int  # index in identity.roles, for the audit record


def claim_path(claims: Mapping[str, Any], path: str) -> Any:
    """The claim at a dotted path (``realm_access.roles``); a literal key with dots first."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def groups_of(claims: Mapping[str, Any], path: str) -> frozenset[str]:
    """The groups claim as a set of strings (a list, or one space-separated string)."""
    value = claim_path(claims, path)
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list | tuple):
        return frozenset(str(v) for v in value if isinstance(v, str | int))
    return frozenset()


def assign(
    claims: Mapping[str, Any], rules: Sequence[RoleMapping], groups_claim: str
) -> Assignment | None:
    """The first rule matching the claims, or None (the person may not sign in).

    E-mail rules match only a verified address (``email_verified`` true): an
    address a person typed into an open-registration provider proves nothing.
    """
    groups = groups_of(claims, groups_claim)
    email = claims.get("email")
    verified = claims.get("email_verified") in (True, "true")
    address = email.strip().lower() if isinstance(email, str) and verified else None
    for index, rule in enumerate(rules):
        if rule.group is not None:
            matched = rule.group in groups
        elif rule.email is not None:
            matched = address is not None and address == rule.email.strip().lower()
        else:
            domain = (rule.email_domain or "").strip().lower().lstrip("@")
            matched = address is not None and address.rsplit("@", 1)[-1] == domain
        if matched:
            return Assignment(rule.admin_role, rule.team, index)
    return None
