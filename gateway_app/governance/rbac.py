"""Who may do what on the admin and analytics API.

* ``admin`` (the ``AIGW_ADMIN_KEY``, or a person mapped to ``org_admin``): everything.
* ``team_admin`` (a virtual key with that role, or a person mapped to it): its own
  team's keys, limits and analytics. Another team's records answer 404, as if they
  did not exist; organisation-wide and customer limits answer 403.
* ``viewer`` (a person mapped to it): reads only; one team's records, or the whole
  organisation's when the mapping names no team.
* ``member`` (a virtual key): calls models only; every admin path answers 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway_app.errors import GatewayError

if TYPE_CHECKING:
    from gateway_app.identity.roles import Person

READ_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of an admin request: a key, the shared admin key, or a signed-in person."""

    role: str
    team_id: str | None = None
    key_id: str | None = None
    person: Person | None = None
    # The shared admin key used while people sign in through SSO: audited as break-glass.
    break_glass: bool = False

    @property
    def actor(self) -> str:
        """The audit log's ``actor``: ``person:<sub>``, ``admin_key`` or ``<role>:<key id>``."""
        if self.person is not None:
            return f"person:{self.person.subject}"
        return (
            "admin_key"
            if self.key_id is None and self.role == "admin"
            else (f"{self.role}:{self.key_id}")
        )

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
        if self.key_id is None and self.role == "admin":
            return {"type": "admin_key", "break_glass": self.break_glass}
        return {"type": "key", "key_id": self.key_id, "role": self.role, "team_id": self.team_id}


def forbidden(message: str = "This key may not use the admin API.") -> GatewayError:
    return GatewayError(403, message, code="forbidden")


def not_found(what: str) -> GatewayError:
    return GatewayError(404, f"{what} was not found.", code="not_found")


def sees_all(principal: Principal) -> bool:
    """Admins and organisation-wide viewers see every team."""
    return principal.role == "admin" or (principal.role == "viewer" and principal.team_id is None)


def require_manager(principal: Principal) -> None:
    """Admins, team admins and viewers pass; members get 403."""
    if principal.role not in ("admin", "team_admin", "viewer"):
        raise forbidden()


def require_write(principal: Principal, method: str) -> None:
    """Viewers read only: any other method answers 403."""
    if principal.role == "viewer" and method not in READ_METHODS:
        raise forbidden("Viewers may read only; ask an admin of the team for this change.")


def require_admin(principal: Principal) -> None:
    if principal.role != "admin":
        raise forbidden("Only the gateway admin may do this.")


def team_scope(principal: Principal, requested: str | None) -> str | None:
    """The team a request may see: a team admin (or team viewer) always its own."""
    require_manager(principal)
    if sees_all(principal):
        return requested
    if requested not in (None, principal.team_id):
        raise not_found(f"Team {requested!r}")
    return principal.team_id


def check_team(principal: Principal, team_id: str | None, what: str) -> None:
    """404 when a team admin (or team viewer) touches another team's record."""
    require_manager(principal)
    if not sees_all(principal) and team_id != principal.team_id:
        raise not_found(what)
