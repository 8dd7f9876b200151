"""Who may do what on the admin and analytics API.

* ``admin`` (the ``AIGW_ADMIN_KEY``, or a person mapped to ``org_admin``): everything.
* ``team_admin`` (a virtual key with that role, or a person mapped to it): its own
  team's keys, limits and analytics. Another team's records answer 404, as if they
  did not exist; organisation-wide and customer limits answer 403.
* ``viewer`` (a person mapped to it): reads only; one team's records, or the whole
  organisation's when the mapping names no team.
* ``member`` (a virtual key): calls models only; every admin path answers 403.

Each admin route declares the least :class:`Role` it needs and whether it writes
(:mod:`gateway_app.governance.admin`); :func:`require` checks both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from gateway_app.errors import GatewayError

READ_METHODS = frozenset({"GET", "HEAD"})


class Role(StrEnum):
    """A caller's role on the admin API, lowest first."""

    MEMBER = "member"
    VIEWER = "viewer"
    TEAM_ADMIN = "team_admin"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Position in the order above: a route needing a role admits every higher one."""
        return _RANKS[self]


_RANKS = {role: rank for rank, role in enumerate(Role)}


class SignedInPerson(Protocol):
    """A person signed in through the identity provider (gateway_app.identity.roles.Person)."""

    @property
    def subject(self) -> str:
        """The provider's stable ``sub``."""
        ...

    def public(self) -> dict[str, Any]:
        """As shown in session answers and audit records."""
        ...


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of an admin request: a key, the shared admin key, or a signed-in person."""

    role: Role
    team_id: str | None = None
    key_id: str | None = None
    person: SignedInPerson | None = None
    # The shared admin key used while people sign in through SSO: audited as break-glass.
    break_glass: bool = False

    def __post_init__(self) -> None:
        # Roles arrive as stored text (keys' and sessions' rows): one type from here on.
        object.__setattr__(self, "role", Role(self.role))

    @property
    def actor(self) -> str:
        """The audit log's ``actor``: ``person:<sub>``, ``admin_key`` or ``<role>:<key id>``."""
        if self.person is not None:
            return f"person:{self.person.subject}"
        if self.key_id is None and self.role is Role.ADMIN:
            return "admin_key"
        return f"{self.role}:{self.key_id}"

    def describe(self) -> dict[str, Any]:
        """Who acted, for the audit record's detail: the person (subject and e-mail) or
        the key, and whether the shared admin key was used as break-glass."""
        if self.person is not None:
            return {
                "type": "person",
                **self.person.public(),
                "role": self.role,
                "team_id": self.team_id,
            }
        if self.key_id is None and self.role is Role.ADMIN:
            return {"type": "admin_key", "break_glass": self.break_glass}
        return {"type": "key", "key_id": self.key_id, "role": self.role, "team_id": self.team_id}


@dataclass(frozen=True, slots=True)
class Person:
    """A person signed in through the identity provider (``gateway_app.identity``)."""

    issuer: str
    subject: str
    email: str | None = None
    name: str | None = None

    def public(self) -> dict[str, Any]:
        """As shown in session answers and audit records."""
        return {
            "issuer": self.issuer,
            "subject": self.subject,
            "email": self.email,
            "name": self.name,
        }

    @classmethod
    def from_public(cls, data: Mapping[str, Any]) -> Person:
        return cls(data["issuer"], data["subject"], data.get("email"), data.get("name"))


def principal_public(principal: Principal) -> dict[str, Any]:
    """A principal as the internal channel carries it (no credential: who, and their role)."""
    return {
        "role": str(principal.role),
        "team_id": principal.team_id,
        "key_id": principal.key_id,
        "person": principal.person.public() if principal.person is not None else None,
        "break_glass": principal.break_glass,
    }


def principal_from_public(data: Any) -> Principal:
    """The principal of a forwarded admin call; ValueError naming what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("`principal` must be an object")
    try:
        role = Role(str(data.get("role")))
    except ValueError:
        raise ValueError(f"`principal.role` {data.get('role')!r} is not a role") from None
    person = data.get("person")
    if person is not None and not (isinstance(person, dict) and person.get("subject")):
        raise ValueError("`principal.person` needs its `subject`")
    return Principal(
        role,
        data.get("team_id"),
        data.get("key_id"),
        # (A person another cloud's gateway signed in and vouches for.)
        Person.from_public({"issuer": "", **person}) if person is not None else None,
        bool(data.get("break_glass")),
    )


def forbidden(message: str = "This key may not use the admin API.") -> GatewayError:
    """A 403 with ``message``."""
    return GatewayError(403, message, code="forbidden")


def not_found(what: str) -> GatewayError:
    """A 404 saying ``what`` was not found (also for another team's records)."""
    return GatewayError(404, f"{what} was not found.", code="not_found")


def require(principal: Principal, role: Role, writes: bool = False, message: str = "") -> None:
    """403 unless the principal has at least ``role`` (``message`` says why not, for
    callers who may use the admin API at all) and, when ``writes``, may write."""
    if principal.role.rank >= role.rank:
        return
    if principal.role.rank < Role.VIEWER.rank:
        raise forbidden()  # a member's key calls models only
    if principal.role is Role.VIEWER and writes:
        raise forbidden("Viewers may read only; ask an admin of the team for this change.")
    raise forbidden(message or "Only the gateway admin may do this.")


def sees_all(principal: Principal) -> bool:
    """Admins and organisation-wide viewers see every team."""
    return principal.role is Role.ADMIN or (
        principal.role is Role.VIEWER and principal.team_id is None
    )


def team_scope(principal: Principal, requested: str | None) -> str | None:
    """The team a request may see: a team admin (or team viewer) always its own."""
    require(principal, Role.VIEWER)
    if sees_all(principal):
        return requested
    if requested not in (None, principal.team_id):
        raise not_found(f"Team {requested!r}")
    return principal.team_id


def check_team(principal: Principal, team_id: str | None, what: str) -> None:
    """404 when a team admin (or team viewer) touches another team's record."""
    require(principal, Role.VIEWER)
    if not sees_all(principal) and team_id != principal.team_id:
        raise not_found(what)
