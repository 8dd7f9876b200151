"""Who may do what on the admin and analytics API.

* ``admin`` (the ``AIGW_ADMIN_KEY``): everything.
* ``team_admin`` (a virtual key with that role): its own team's keys, limits
  and analytics. Another team's records answer 404, as if they did not exist;
  organisation-wide and customer limits answer 403.
* ``member`` (a virtual key): calls models only; every admin path answers 403.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway_app.errors import GatewayError


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of an admin request."""

    role: str
    team_id: str | None = None
    key_id: str | None = None

    @property
    def actor(self) -> str:
        return "admin" if self.role == "admin" else f"{self.role}:{self.key_id}"


def forbidden(message: str = "This key may not use the admin API.") -> GatewayError:
    return GatewayError(403, message, code="forbidden")


def not_found(what: str) -> GatewayError:
    return GatewayError(404, f"{what} was not found.", code="not_found")


def require_manager(principal: Principal) -> None:
    """Admins and team admins pass; members get 403."""
    if principal.role not in ("admin", "team_admin"):
        raise forbidden()


def require_admin(principal: Principal) -> None:
    if principal.role != "admin":
        raise forbidden("Only the gateway admin may do this.")


def team_scope(principal: Principal, requested: str | None) -> str | None:
    """The team a request may see: a team admin always its own."""
    require_manager(principal)
    if principal.role == "admin":
        return requested
    if requested not in (None, principal.team_id):
        raise not_found(f"Team {requested!r}")
    return principal.team_id


def check_team(principal: Principal, team_id: str | None, what: str) -> None:
    """404 when a team admin touches another team's record."""
    require_manager(principal)
    if principal.role != "admin" and team_id != principal.team_id:
        raise not_found(what)
