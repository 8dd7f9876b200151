"""Sign-in, sessions and request checks for people, independent of HTTP framing.

The admin API asks :meth:`Identity.principal` who a cookie-carrying request is:
a :class:`~gateway_app.governance.rbac.Principal` naming the person (subject,
e-mail, name) with the role and team their claims map to. Every request that
changes something must also prove it comes from the console itself:

* its ``Origin`` (or, without one, ``Sec-Fetch-Site: same-origin`` or a
  same-origin ``Referer``) is ``identity.public_url``'s or an ``allowed_origins``
  entry; and
* it carries the session's CSRF token in ``X-CSRF-Token`` (a synchronizer token:
  random per session, compared in constant time).

Bearer keys (``Authorization``) are not ambient credentials, so key-authenticated
requests (the CLI, automation) need neither.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from gateway_app.config.identity import IdentityConfig
from gateway_app.errors import GatewayError
from gateway_app.governance import audit
from gateway_app.governance.rbac import READ_METHODS, Principal, Role
from gateway_app.identity.oidc import OIDCClient, SignInError
from gateway_app.identity.roles import Person, assign
from gateway_app.identity.sessions import LoginAttempt, Session, SessionStore, token_hash

log = logging.getLogger("gateway_app.identity")

CSRF_HEADER = "x-csrf-token"
_ADMIN_KEY_FAILURES_PER_MIN = 5


def cookie_names(secure: bool) -> tuple[str, str]:
    """(session cookie, sign-in cookie): ``__Host-`` prefixed when Secure (the browser then
    refuses them unless Secure, host-only and Path=/)."""
    prefix = "__Host-" if secure else ""
    return f"{prefix}aigw_session", f"{prefix}aigw_signin"


def read_cookie(headers: Mapping[str, str], name: str) -> str | None:
    """One cookie's value from the ``Cookie`` header."""
    raw = headers.get("cookie")
    if not raw:
        return None
    for part in raw.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"') or None
    return None


def safe_return_path(value: str | None) -> str:
    """Where to go after sign-in: a console path of this gateway, never another site."""
    if (
        not value
        or not value.startswith("/console")
        or "//" in value
        or "\\" in value
        or any(ord(c) < 0x20 for c in value)
    ):
        return "/console/"
    return value


@dataclass
class SignedIn:
    """A finished sign-in: the new session's token and where to send the browser."""

    token: str
    session: Session
    return_to: str
    replaced: bool = False


@dataclass
class _Failures:
    """Recent failed admin-key sign-ins of one client (a sliding minute)."""

    times: list[float] = field(default_factory=list)


AuditSink = Callable[[bytes], Awaitable[None]]


class Identity:
    """People's sign-in (OIDC and break-glass), sessions, and the checks on their requests."""

    def __init__(
        self,
        config: IdentityConfig,
        sessions: SessionStore,
        *,
        audit_sink: AuditSink,
        admin_key: str | None = None,
        oidc: OIDCClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.audit_sink = audit_sink
        self.admin_key = admin_key
        self.clock = clock
        if oidc is None and config.oidc is not None:
            oidc = OIDCClient(config.oidc, config.redirect_uri, clock=clock)
        self.oidc = oidc
        self.session_cookie, self.signin_cookie = cookie_names(config.session.cookie_secure)
        self.origins = frozenset([config.origin, *(o.rstrip("/") for o in config.allowed_origins)])
        self._failures: dict[str, _Failures] = {}

    async def close(self) -> None:
        """Close the provider's connection pool and the session store."""
        if self.oidc is not None:
            await self.oidc.close()
        await self.sessions.close()

    # ------------------------------------------------------------ audit

    async def _audit(
        self, action: str, actor: str, detail: dict[str, Any], team_id: str | None = None
    ) -> None:
        event = audit.event("admin", actor=actor, action=action, team_id=team_id, detail=detail)
        try:
            await self.audit_sink(orjson.dumps(event))
        except Exception:
            log.error("could not buffer the audit event of %s (state unreachable)", action)

    @staticmethod
    def _actor(session: Session) -> str:
        return f"person:{session.person.subject}" if session.person else "admin_key"

    def _who(self, session: Session) -> dict[str, Any]:
        return principal_of(session).describe()

    # ------------------------------------------------------------ OIDC sign-in

    async def start_login(self, return_to: str | None) -> tuple[str, str]:
        """Begin a sign-in: (the provider's authorization URL, the browser-binding value for
        the sign-in cookie). The state is single-use and bound to that cookie, so a
        sign-in response cannot be replayed, nor planted in another browser."""
        if self.oidc is None:
            raise SignInError("sso_disabled", "Single sign-on is not configured.", 404)
        state, nonce, verifier, binding = (secrets.token_urlsafe(32) for _ in range(4))
        url = await self.oidc.authorization_url(state, nonce, verifier)
        await self.sessions.put_login(
            state,
            LoginAttempt(
                nonce=nonce,
                verifier=verifier,
                return_to=safe_return_path(return_to),
                binding_hash=token_hash(binding),
                created_at=self.clock(),
            ),
        )
        return url, binding

    async def finish_login(
        self, params: Mapping[str, str], binding: str | None, old_token: str | None
    ) -> SignedIn:
        """The provider's redirect back: check it, redeem the code, validate the ID token,
        map the claims to a role, and open a new session (ending any older one)."""
        if self.oidc is None:
            raise SignInError("sso_disabled", "Single sign-on is not configured.", 404)
        attempt = await self.sessions.take_login(params.get("state", ""))
        if attempt is None:
            await self._audit("auth.login_failed", "anonymous", {"reason": "unknown_state"})
            raise SignInError(
                "unknown_state",
                "This sign-in link is unknown, expired or already used; start again.",
                400,
            )
        if binding is None or not hmac.compare_digest(token_hash(binding), attempt.binding_hash):
            await self._audit("auth.login_failed", "anonymous", {"reason": "browser_mismatch"})
            raise SignInError(
                "browser_mismatch",
                "This sign-in was started in another browser (or its cookie was lost); "
                "start again.",
                400,
            )
        try:
            await self.oidc.check_response_issuer(params.get("iss"))
            if "error" in params:
                # RFC 6749 4.1.2.1: the code only (the description is the provider's text).
                error = params["error"][:64]
                raise SignInError(
                    "provider_error",
                    f"The identity provider did not sign you in ({error}).",
                    403 if error == "access_denied" else 401,
                )
            code = params.get("code")
            if not code:
                raise SignInError("no_code", "The sign-in response carries no code.", 400)
            tokens = await self.oidc.exchange(code, attempt.verifier, attempt.nonce)
            claims = dict(tokens.claims)
            if self.oidc.config.fetch_userinfo and tokens.access_token:
                extra = await self.oidc.userinfo(tokens.access_token, claims["sub"])
                # The ID token's own claims win (they are signed).
                claims = {**extra, **claims}
        except SignInError as exc:
            await self._audit("auth.login_failed", "anonymous", {"reason": exc.reason})
            raise
        person = Person(
            issuer=claims["iss"],
            subject=str(claims["sub"]),
            email=claims.get("email") if isinstance(claims.get("email"), str) else None,
            name=claims.get("name") if isinstance(claims.get("name"), str) else None,
        )
        assignment = assign(claims, self.config.roles, self.oidc.config.groups_claim)
        if assignment is None:
            await self._audit(
                "auth.login_refused",
                f"person:{person.subject}",
                {"actor": {"type": "person", **person.public()}, "reason": "no_role"},
            )
            raise SignInError(
                "no_role",
                f"You are signed in at the identity provider as {person.email or person.subject}, "
                "but no rule of the gateway's identity.roles gives you a role; ask the "
                "platform team to map one of your groups.",
                403,
            )
        replaced = False
        if old_token:
            # A new session id on every sign-in (no fixation), the old one ended.
            replaced = await self.sessions.delete(old_token)
        now = self.clock()
        session = Session(
            role=assignment.role,
            team_id=assignment.team_id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen=now,
            person=person,
            via="oidc",
            id_token=tokens.id_token,
            rule=assignment.rule,
        )
        token = await self.sessions.create(session)
        await self._audit(
            "auth.login",
            self._actor(session),
            {"actor": self._who(session), "rule": assignment.rule},
            team_id=assignment.team_id,
        )
        return SignedIn(token, session, attempt.return_to, replaced)

    # ------------------------------------------------------------ break-glass

    async def admin_key_login(self, presented: str, client: str, old_token: str | None) -> SignedIn:
        """Sign in to the console with the shared admin key (``admin_key_login``): an org
        admin session marked break-glass, audited with the client's address. At most
        ``_ADMIN_KEY_FAILURES_PER_MIN`` wrong keys per client and minute."""
        if not self.config.admin_key_login or not self.admin_key:
            raise SignInError("break_glass_disabled", "Admin-key sign-in is disabled.", 404)
        now = self.clock()
        failures = self._failures.setdefault(client, _Failures())
        failures.times = [t for t in failures.times if now - t < 60]
        if len(failures.times) >= _ADMIN_KEY_FAILURES_PER_MIN:
            raise SignInError("too_many_attempts", "Too many wrong keys; wait a minute.", 429)
        if not hmac.compare_digest(presented.encode(), self.admin_key.encode()):
            failures.times.append(now)
            if len(self._failures) > 10_000:
                self._failures.clear()
            await self._audit(
                "auth.break_glass_failed", "anonymous", {"client": client, "reason": "wrong_key"}
            )
            raise SignInError("wrong_key", "That is not the admin key.", 401)
        if old_token:
            await self.sessions.delete(old_token)
        session = Session(
            role="admin",
            team_id=None,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen=now,
            via="admin_key",
        )
        token = await self.sessions.create(session)
        log.warning("break-glass: console sign-in with the shared admin key from %s", client)
        await self._audit(
            "auth.break_glass_login", "admin_key", {"actor": self._who(session), "client": client}
        )
        return SignedIn(token, session, "/console/")

    # ------------------------------------------------------------ sessions

    async def session_of(self, headers: Mapping[str, str]) -> tuple[str, Session] | None:
        """The live session the request's cookie names (and its token), or None."""
        token = read_cookie(headers, self.session_cookie)
        if token is None:
            return None
        session = await self.sessions.get(token)
        return (token, session) if session is not None else None

    def check_origin(self, headers: Mapping[str, str]) -> None:
        """403 unless the request comes from the console's own origin."""
        origin = headers.get("origin")
        if origin is not None:
            allowed = origin.rstrip("/") in self.origins
        elif "sec-fetch-site" in headers:
            allowed = headers["sec-fetch-site"] == "same-origin"
        elif "referer" in headers:
            parts = urlsplit(headers["referer"])
            allowed = f"{parts.scheme}://{parts.netloc}" in self.origins
        else:
            allowed = False
        if not allowed:
            raise GatewayError(
                403,
                "Cross-site request refused: changes must come from the console at "
                f"{self.config.origin} (Origin {origin!r}).",
                code="csrf_failed",
            )

    def check_csrf(self, headers: Mapping[str, str], session: Session) -> None:
        """403 unless the request comes from the console's origin with the session's token."""
        self.check_origin(headers)
        sent = headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
            raise GatewayError(
                403,
                f"Missing or wrong {CSRF_HEADER} header: reload the console and try again.",
                code="csrf_failed",
            )

    async def principal(self, headers: Mapping[str, str], method: str) -> Principal | None:
        """The admin API's caller for a request with a session cookie (None without one).

        401 for an ended session, 403 for a state-changing request that fails the
        Origin or CSRF token check."""
        if read_cookie(headers, self.session_cookie) is None:
            return None
        found = await self.session_of(headers)
        if found is None:
            raise GatewayError(
                401, "Your console session has ended; sign in again.", code="session_expired"
            )
        _, session = found
        if method not in READ_METHODS:
            self.check_csrf(headers, session)
        return principal_of(session)

    async def logout(self, headers: Mapping[str, str], everywhere: bool = False) -> tuple[str, int]:
        """End the request's session (or all of its person's sessions): (where to send the
        browser next, sessions ended). The provider's logout when it advertises one."""
        found = await self.session_of(headers)
        if found is None:
            return "/console/", 0
        token, session = found
        self.check_csrf(headers, session)
        ended = int(await self.sessions.delete(token))
        if everywhere and session.person is not None:
            ended += await self.sessions.delete_person(session.person.subject)
        await self._audit(
            "auth.logout",
            self._actor(session),
            {"actor": self._who(session), "everywhere": everywhere, "sessions": ended},
            team_id=session.team_id,
        )
        target = "/console/"
        if self.oidc is not None and session.via == "oidc":
            url = await self.oidc.end_session_url(
                session.id_token, secrets.token_urlsafe(16), self.config.post_logout_redirect_uri
            )
            target = url or target
        return target, ended

    async def revoke_person(self, by: Principal, subject: str) -> int:
        """End every session of a person (an org admin's action); how many there were."""
        if by.role is not Role.ADMIN:  # (the admin route checks too)
            raise GatewayError(
                403, "Only org admins may end other people's sessions.", code="forbidden"
            )
        ended = await self.sessions.delete_person(subject)
        await self._audit(
            "auth.sessions_revoked",
            by.actor,
            {"actor": by.describe(), "subject": subject, "sessions": ended},
        )
        return ended

    def describe(self, session: Session) -> dict[str, Any]:
        """What ``GET /auth/session`` answers (for the console's own script)."""
        idle, absolute = self.sessions.expiry(session)
        return {
            "authenticated": True,
            "person": session.person.public() if session.person else None,
            "via": session.via,
            "break_glass": session.via == "admin_key",
            "role": session.role,
            "team_id": session.team_id,
            "csrf_token": session.csrf_token,
            "idle_expires_at": idle,
            "expires_at": absolute,
            "logout_everywhere": session.person is not None,
        }


def principal_of(session: Session) -> Principal:
    """The admin API's principal for a session."""
    return Principal(
        Role(session.role),
        session.team_id,
        person=session.person,
        break_glass=session.via == "admin_key",
    )
