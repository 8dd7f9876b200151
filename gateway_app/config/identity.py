"""The ``identity:`` section of the gateway config: sign-in for people.

Example (Microsoft Entra ID; Okta, Google Workspace, Keycloak and Auth0 differ
only in ``issuer`` and where their groups claim lives)::

    identity:
      public_url: https://ai.example.com          # what people type; the cookie's site
      oidc:
        issuer: https://login.microsoftonline.com/<tenant-id>/v2.0
        client_id: 6f1c...                        # the secret: AIGW_OIDC_CLIENT_SECRET
        groups_claim: groups                      # Keycloak: realm_access.roles
      roles:                                      # first match wins
        - {group: <platform-admins-group-id>, role: org_admin}
        - {group: <search-leads-group-id>, role: team_admin, team: search}
        - {email_domain: example.com, role: viewer, team: search}

Nothing here is needed for model traffic: with no ``identity`` section the
gateway serves neither ``/auth`` nor ``/console``, and an identity provider
that is down never affects ``/v1`` requests or readiness.
"""

from __future__ import annotations

import os
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, ValidationInfo, model_validator

#: The console roles a mapping may grant, and the admin API role each becomes.
CONSOLE_ROLES: dict[str, str] = {
    "org_admin": "admin",
    "team_admin": "team_admin",
    "viewer": "viewer",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _loopback(host: str | None) -> bool:
    return host in ("127.0.0.1", "localhost", "::1")


def _check_url(name: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError(f"{name}: {value!r} is not an absolute http(s) URL")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise ValueError(
            f"{name}: {value!r} must use https (plain http is accepted for loopback addresses "
            "only, where tests and local development run)"
        )


class RoleMapping(_Model):
    """One rule: who it matches (a group, an e-mail address or an e-mail domain) and the
    role (and team) it grants. Rules are tried in order; the first match wins."""

    group: str | None = Field(None, description="a value of the groups claim (`groups_claim`)")
    email: str | None = Field(None, description="one verified e-mail address (case-insensitive)")
    email_domain: str | None = Field(
        None, description="every verified address of this domain, e.g. example.com"
    )
    role: Literal["org_admin", "team_admin", "viewer"] = Field(
        description="org_admin: everything; team_admin: one team's keys, limits, spend and "
        "audit; viewer: read-only (one team, or the whole organisation without `team`)"
    )
    team: str | None = Field(None, description="the team (required for team_admin)")

    @model_validator(mode="after")
    def _one_matcher(self) -> RoleMapping:
        given = [n for n in ("group", "email", "email_domain") if getattr(self, n)]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of `group`, `email` or `email_domain` per rule "
                f"(got {given or 'none'}); write one rule per matcher"
            )
        if self.role == "team_admin" and not self.team:
            raise ValueError("role team_admin needs `team`: the team this rule administers")
        if self.role == "org_admin" and self.team:
            raise ValueError("role org_admin covers every team: remove `team`")
        return self

    @property
    def admin_role(self) -> str:
        """The admin API's role name for this rule's role."""
        return CONSOLE_ROLES[self.role]


class OIDCConfig(_Model):
    """The OpenID Connect relying party (authorization code flow with PKCE)."""

    issuer: str = Field(
        description="the provider's issuer URL; discovery reads "
        "{issuer}/.well-known/openid-configuration and its `issuer` must equal this"
    )
    client_id: str = Field(min_length=1)
    client_secret: str | None = Field(
        None,
        description="leave unset: the secret comes from the variable `client_secret_env` "
        "names (a config file is no place for it)",
    )
    client_secret_env: str = Field(
        "AIGW_OIDC_CLIENT_SECRET",
        description="the environment variable holding the client secret",
    )
    token_auth_method: Literal["client_secret_basic", "client_secret_post", "none"] = (
        "client_secret_basic"
    )
    redirect_uri: str | None = Field(
        None, description="registered at the provider; default {public_url}/auth/callback"
    )
    post_logout_redirect_uri: str | None = Field(
        None,
        description="where the provider sends people after logout; default {public_url}/console/",
    )
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"])
    groups_claim: str = Field(
        "groups",
        description="claim holding groups or roles; a dotted path reaches nested claims "
        "(Keycloak: realm_access.roles; Entra app roles: roles)",
    )
    fetch_userinfo: bool = Field(
        True,
        description="merge the UserInfo endpoint's claims (many providers put email and "
        "groups there rather than in the ID token)",
    )
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "PS256", "ES256", "EdDSA"],
        description="accepted ID token signature algorithms (asymmetric only)",
    )
    clock_skew_s: float = Field(60.0, ge=0, le=600, description="tolerance for exp/iat")
    jwks_max_age_s: float = Field(
        3600.0, gt=0, description="the signing keys are re-read at least this often"
    )
    jwks_refetch_interval_s: float = Field(
        10.0, ge=0, description="an unknown `kid` re-reads the keys at most this often"
    )
    http_timeout_s: float = Field(10.0, gt=0, description="each call to the provider")
    ca_file: str | None = Field(
        None, description="CA bundle for a provider with a private CA (else the system's)"
    )

    @model_validator(mode="after")
    def _urls(self, info: ValidationInfo) -> OIDCConfig:
        _check_url("issuer", self.issuer)
        for name in ("redirect_uri", "post_logout_redirect_uri"):
            value = getattr(self, name)
            if value:
                _check_url(name, value)
        if self.redirect_uri and not urlsplit(self.redirect_uri).path.endswith("/auth/callback"):
            raise ValueError(
                f"redirect_uri: {self.redirect_uri!r} must end with /auth/callback, where the "
                "gateway serves the sign-in callback"
            )
        if "openid" not in self.scopes:
            raise ValueError("scopes: must include `openid`")
        # The environment the config is validated against: the process's, or the pod's
        # planned one (``aigw plan`` validates a cluster's file before the pod exists).
        environ = (info.context or {}).get("environ")
        secret = self.client_secret or (
            environ.get(self.client_secret_env) if environ is not None else self.secret
        )
        if self.token_auth_method != "none" and not secret:
            raise ValueError(
                f"the client secret is unset but token_auth_method is {self.token_auth_method}: "
                f"set {self.client_secret_env} (or token_auth_method: none for a public client)"
            )
        bad = [a for a in self.algorithms if a == "none" or a.startswith("HS")]
        if bad:
            raise ValueError(
                f"algorithms: {bad} are not accepted (no signature, or a shared secret); "
                "use asymmetric algorithms such as RS256 or ES256"
            )
        return self

    @property
    def secret(self) -> str | None:
        """The client secret: ``client_secret``, else the ``client_secret_env`` variable."""
        return self.client_secret or os.environ.get(self.client_secret_env) or None


class SessionConfig(_Model):
    """Server-side sessions behind an opaque cookie (Redis with ``AIGW_REDIS_URL``)."""

    # NIST SP 800-63B (AAL2, section 4.2.3): reauthenticate at least every 12 hours and
    # after 30 minutes of inactivity.
    idle_timeout_s: float = Field(1800.0, ge=60, description="ends after this long unused")
    absolute_timeout_s: float = Field(
        43200.0, ge=300, description="ends this long after sign-in, however active"
    )
    cookie_secure: bool = Field(
        True, description="Secure cookies (HTTPS only); false only for plain-http development"
    )
    same_site: Literal["strict", "lax"] = Field(
        "strict",
        description="the session cookie's SameSite; strict suits the console (its page "
        "needs no cookie; its API calls are same-origin)",
    )

    @model_validator(mode="after")
    def _order(self) -> SessionConfig:
        if self.idle_timeout_s > self.absolute_timeout_s:
            raise ValueError("idle_timeout_s must not exceed absolute_timeout_s")
        return self


class IdentityConfig(_Model):
    """Sign-in for people (OIDC), their sessions, and the web console."""

    public_url: str | None = Field(
        None,
        description="the gateway's external URL (https://ai.example.com): the console's "
        "origin, checked on every state-changing request, and the base of redirect URIs",
    )
    oidc: OIDCConfig | None = None
    roles: list[RoleMapping] = Field(
        default_factory=list, description="claims to roles and teams; the first match wins"
    )
    admin_key_login: bool = Field(
        False,
        description="break-glass: allow signing in to the console with AIGW_ADMIN_KEY "
        "(audited as such); for when the identity provider is down",
    )
    allowed_origins: list[str] = Field(
        default_factory=list, description="origins besides public_url's that may send changes"
    )
    session: SessionConfig = Field(default_factory=SessionConfig)
    console_allowed_cidrs: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="networks `/console`, `/auth` and people's sessions may be used from "
        "(the client address, see trusted_proxies); empty: any network",
    )
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="proxies in front of the gateway (CIDRs) whose X-Forwarded-For entry is "
        "believed when finding the client's address; empty: the TCP peer is the client",
    )

    @property
    def enabled(self) -> bool:
        """Whether ``/auth`` and ``/console`` are served."""
        return self.oidc is not None or self.admin_key_login

    @model_validator(mode="after")
    def _complete(self) -> IdentityConfig:
        if not self.enabled:
            return self
        if not self.public_url:
            raise ValueError(
                "public_url is required with oidc or admin_key_login: the URL people open "
                "(https://ai.example.com); it is the origin every console change must come from"
            )
        _check_url("public_url", self.public_url)
        if urlsplit(self.public_url).path not in ("", "/"):
            raise ValueError(
                f"public_url: {self.public_url!r} must be an origin without a path "
                "(the console lives at /console)"
            )
        if self.oidc is not None and not self.roles:
            raise ValueError(
                "roles: empty, so nobody could sign in; map at least one group, e-mail or "
                "domain to org_admin, team_admin or viewer"
            )
        if self.session.cookie_secure and urlsplit(self.public_url).scheme != "https":
            host = urlsplit(self.public_url).hostname
            if not _loopback(host):
                raise ValueError("session.cookie_secure needs an https public_url")
        for origin in self.allowed_origins:
            _check_url("allowed_origins", origin)
        return self

    @property
    def origin(self) -> str:
        """``scheme://host[:port]`` of ``public_url``."""
        parts = urlsplit(self.public_url or "")
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def redirect_uri(self) -> str:
        """The OIDC callback URL registered at the provider."""
        configured = self.oidc.redirect_uri if self.oidc else None
        return configured or f"{self.origin}/auth/callback"

    @property
    def post_logout_redirect_uri(self) -> str:
        """Where the provider returns people after RP-initiated logout."""
        configured = self.oidc.post_logout_redirect_uri if self.oidc else None
        return configured or f"{self.origin}/console/"
