"""``/auth/...`` and ``/console/...``: the sign-in endpoints and the web console's files.

Raw ASGI like the rest of the gateway (a handful of routes, no framework):

=========================  ===========================================================
``GET /auth/login``         start an OIDC sign-in (``?return_to=/console/...``)
``GET /auth/callback``      the provider's redirect back; opens the session
``GET /auth/session``       who is signed in, the CSRF token, the expiries (401 if none)
``POST /auth/logout``       end the session (``{"everywhere": true}``: all of the person's);
                            answers where to go next (the provider's logout, if any)
``POST /auth/admin-key``    break-glass console sign-in with the admin key (if enabled)
``GET /console/...``        the console (static files shipped in the package)
=========================  ===========================================================

(``POST /auth/sessions/revoke``, an org admin ending a person's sessions, is an
admin API route: :mod:`gateway_app.governance.admin`.)

Every answer carries a strict Content-Security-Policy (scripts, styles and data
from this origin only; no framing), ``nosniff`` and ``no-store`` for anything
about a session.
"""

from __future__ import annotations

import hashlib
import html
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson

from gateway_app.errors import GatewayError
from gateway_app.governance.service import presented_key
from gateway_app.identity.network import ConsoleNetworks
from gateway_app.identity.oidc import SignInError
from gateway_app.identity.service import Identity, SignedIn, read_cookie

log = logging.getLogger("gateway_app.identity")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

STATIC_DIR = Path(__file__).resolve().parent.parent / "console" / "static"
_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".svg": b"image/svg+xml",
    ".png": b"image/png",
    ".ico": b"image/x-icon",
}
_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = [
    (b"content-security-policy", _CSP),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # same-origin keeps the Origin header on the console's own requests (no-referrer
    # would turn it into "null") and sends nothing to other sites.
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
_MAX_BODY = 16 * 1024


def load_static(directory: Path = STATIC_DIR) -> dict[str, tuple[bytes, bytes, bytes]]:
    """The console's files by URL path: (body, content type, ETag). Read once: only these
    names are ever served (no path from a request reaches the file system)."""
    files: dict[str, tuple[bytes, bytes, bytes]] = {}
    for path in sorted(directory.rglob("*")):
        kind = _TYPES.get(path.suffix)
        if not path.is_file() or kind is None:
            continue
        body = path.read_bytes()
        etag = b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"'
        files["/console/" + path.relative_to(directory).as_posix()] = (body, kind, etag)
    files["/console/"] = files["/console/index.html"]
    return files


class ConsoleApp:
    """The ASGI handler of ``/auth/...`` and ``/console...`` (mounted by the gateway app)."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self.static = load_static()
        self.networks = ConsoleNetworks(
            identity.config.console_allowed_cidrs, identity.config.trusted_proxies
        )
        session = identity.config.session
        self._session_attrs = ("; Path=/; HttpOnly; SameSite=" + session.same_site.capitalize()) + (
            "; Secure" if session.cookie_secure else ""
        )
        self._signin_attrs = "; Path=/; HttpOnly; SameSite=Lax" + (
            "; Secure" if session.cookie_secure else ""
        )

    @staticmethod
    def serves(path: str) -> bool:
        """Whether a path is this handler's."""
        return path.startswith("/auth/") or path == "/console" or path.startswith("/console/")

    def require_network(self, scope: Scope) -> None:
        """For the admin API: a request carrying a console session cookie (and no key) must
        come from the console's networks too (403 otherwise); key-authenticated automation
        is not the console's and is not judged here."""
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if read_cookie(headers, self.identity.session_cookie) is None:
            return
        if presented_key(headers):
            return
        self.networks.require(scope)

    async def start(self) -> None:
        """Nothing to open: the provider is contacted at the first sign-in."""

    async def stop(self) -> None:
        """Close the provider's connections and the session store."""
        await self.identity.close()

    # ------------------------------------------------------------ plumbing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"]
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        try:
            self.networks.require(scope)
        except GatewayError as exc:
            if path.startswith("/console"):
                await self._page(send, exc.status, "Not available from here", exc.message, False)
            else:
                await self._json(send, exc.status, exc.body(), exc.headers)
            return
        try:
            if path == "/console" or path.startswith("/console/"):
                await self._console(method, path, headers, send)
                return
            route = {
                ("GET", "/auth/login"): self._login,
                ("GET", "/auth/callback"): self._callback,
                ("GET", "/auth/session"): self._session,
                ("POST", "/auth/logout"): self._logout,
                ("POST", "/auth/admin-key"): self._admin_key,
            }.get((method, path))
            if route is None:
                raise GatewayError(404, f"Unknown path {method} {path}.", code="unknown_url")
            await route(scope, receive, send, headers, query)
        except SignInError as exc:
            await self._page(send, exc.status, "Sign-in failed", str(exc), retry=True)
        except GatewayError as exc:
            await self._json(send, exc.status, exc.body(), exc.headers)

    async def _send(
        self,
        send: Send,
        status: int,
        body: bytes,
        content_type: bytes,
        extra: list[tuple[bytes, bytes]] | None = None,
        cache: bytes = b"no-store",
    ) -> None:
        headers = [
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", cache),
            *_SECURITY_HEADERS,
            *(extra or []),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _json(
        self,
        send: Send,
        status: int,
        payload: Any,
        headers: Mapping[str, str] | None = None,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        more = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
        await self._send(
            send, status, orjson.dumps(payload), b"application/json", [*more, *(extra or [])]
        )

    async def _redirect(
        self, send: Send, location: str, cookies: list[str] | None = None, status: int = 303
    ) -> None:
        extra = [(b"location", location.encode("latin-1"))]
        extra += [(b"set-cookie", c.encode("latin-1")) for c in cookies or []]
        await self._send(send, status, b"", b"text/plain", extra)

    async def _page(self, send: Send, status: int, title: str, message: str, retry: bool) -> None:
        """A minimal page for people who land on an endpoint in the browser."""
        again = '<p><a href="/auth/login">Sign in again</a></p>' if retry else ""
        body = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title>"
            '<link rel="stylesheet" href="/console/style.css"></head>'
            f'<body><main class="notice"><h1>{html.escape(title)}</h1>'
            f"<p>{html.escape(message)}</p>{again}"
            '<p><a href="/console/">Back to the console</a></p></main></body></html>'
        ).encode()
        await self._send(send, status, body, _TYPES[".html"])

    async def _body(self, receive: Receive, headers: Mapping[str, str]) -> dict[str, Any]:
        size = int(headers.get("content-length") or 0)
        if size > _MAX_BODY:
            raise GatewayError(413, "The request body is too large.", code="request_too_large")
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > _MAX_BODY:
                raise GatewayError(413, "The request body is too large.", code="request_too_large")
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        if not raw:
            return {}
        if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return dict(parse_qsl(raw.decode()))
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise GatewayError(400, "The body must be JSON.", code="invalid_json") from None
        if not isinstance(data, dict):
            raise GatewayError(400, "The body must be a JSON object.", code="invalid_json")
        return data

    def _session_cookie(self, token: str) -> str:
        return f"{self.identity.session_cookie}={token}{self._session_attrs}"

    def _clear(self, name: str) -> str:
        attrs = self._session_attrs if name == self.identity.session_cookie else self._signin_attrs
        return f"{name}={attrs}; Max-Age=0"

    # ------------------------------------------------------------ routes

    async def _login(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], query: Any
    ) -> None:
        url, binding = await self.identity.start_login(query.get("return_to"))
        cookie = f"{self.identity.signin_cookie}={binding}{self._signin_attrs}; Max-Age=600"
        await self._redirect(send, url, [cookie], status=302)

    async def _callback(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], query: Any
    ) -> None:
        signed = await self.identity.finish_login(
            query,
            read_cookie(headers, self.identity.signin_cookie),
            read_cookie(headers, self.identity.session_cookie),
        )
        await self._signed_in(send, signed)

    async def _signed_in(self, send: Send, signed: SignedIn, as_json: bool = False) -> None:
        cookies = [self._session_cookie(signed.token), self._clear(self.identity.signin_cookie)]
        if as_json:
            extra = [(b"set-cookie", c.encode("latin-1")) for c in cookies]
            await self._json(send, 200, {"redirect": signed.return_to}, extra=extra)
        else:
            await self._redirect(send, signed.return_to, cookies)

    async def _session(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], query: Any
    ) -> None:
        found = await self.identity.session_of(headers)
        sign_in = {
            "sso": self.identity.oidc is not None,
            "admin_key_login": self.identity.config.admin_key_login,
        }
        if found is None:
            await self._json(send, 401, {"authenticated": False, **sign_in})
            return
        await self._json(send, 200, {**self.identity.describe(found[1]), **sign_in})

    async def _logout(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], query: Any
    ) -> None:
        body = await self._body(receive, headers)
        target, ended = await self.identity.logout(headers, everywhere=bool(body.get("everywhere")))
        cookie = self._clear(self.identity.session_cookie).encode("latin-1")
        await self._json(
            send,
            200,
            {"redirect": target, "sessions_ended": ended},
            extra=[(b"set-cookie", cookie)],
        )

    async def _admin_key(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], query: Any
    ) -> None:
        # No session yet, so no token to check: the Origin check stops cross-site posts.
        self.identity.check_origin(headers)
        body = await self._body(receive, headers)
        key = body.get("admin_key")
        if not isinstance(key, str) or not key:
            raise GatewayError(400, "Send `admin_key`.", param="admin_key", code="invalid_request")
        # Behind the edge the TCP peer is an Envoy proxy: the per-client limit and the
        # audit record need the person's own address.
        client = self.networks.client(scope)
        try:
            signed = await self.identity.admin_key_login(
                key,
                str(client) if client is not None else "unknown",
                read_cookie(headers, self.identity.session_cookie),
            )
        except SignInError as exc:
            raise GatewayError(exc.status, str(exc), code=exc.reason) from None
        await self._signed_in(send, signed, as_json=True)

    async def _console(self, method: str, path: str, headers: dict[str, str], send: Send) -> None:
        if method not in ("GET", "HEAD"):
            raise GatewayError(405, f"Method {method} is not allowed on {path}.")
        if path == "/console":
            await self._redirect(send, "/console/", status=308)
            return
        found = self.static.get(path)
        if found is None:
            raise GatewayError(404, f"No console file {path}.", code="unknown_url")
        body, kind, etag = found
        if headers.get("if-none-match") == etag.decode():
            await self._send(send, 304, b"", kind, [(b"etag", etag)], cache=b"no-cache")
            return
        await self._send(send, 200, body, kind, [(b"etag", etag)], cache=b"no-cache")
