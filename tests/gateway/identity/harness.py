"""A governed gateway with sign-in, served on loopback, and a scripted browser for it.

``console_gateway`` serves the real :class:`GatewayApp` with governance (SQLite,
in-process state) and the ``identity`` section pointing at the test OpenID
Provider. ``Browser`` follows redirects like a browser between the gateway and
the provider and keeps the gateway's cookies itself, because they are ``Secure``
(``http.cookiejar`` would never send them over plain-http loopback); it records
their attributes so tests can assert them.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import uvicorn

from gateway_app.app import GatewayApp
from gateway_app.config import parse
from gateway_app.environment import Environment
from gateway_app.governance.admin import AdminApi
from gateway_app.governance.hooks import governance_hooks
from gateway_app.governance.service import Governance
from gateway_app.governance.storage import Database
from gateway_app.identity import build
from gateway_app.state.governance import InProcessGovernanceState
from tests.gateway.conftest import STANDARD_MODELS, providers
from tests.gateway.identity.provider import OpenIDProvider, client_registration

ADMIN = "admin-secret-key-for-identity-tests"
CLIENT_ID = "aigw-console"
CLIENT_SECRET = "console-client-secret-0123456789"

ACCOUNTS: dict[str, dict[str, Any]] = {
    "alice": {"email": "alice@example.com", "name": "Alice Admin", "groups": ["platform-admins"]},
    "bob": {"email": "bob@example.com", "name": "Bob Search", "groups": ["search-leads"]},
    "carol": {"email": "carol@example.com", "name": "Carol Ads", "groups": ["ads-leads"]},
    "victor": {"email": "victor@example.com", "name": "Victor Viewer", "groups": []},
    "mallory": {"email": "mallory@elsewhere.test", "name": "Mallory", "groups": ["guests"]},
}
ROLES: list[dict[str, Any]] = [
    {"group": "platform-admins", "role": "org_admin"},
    {"group": "search-leads", "role": "team_admin", "team": "search"},
    {"group": "ads-leads", "role": "team_admin", "team": "ads"},
    {"email_domain": "example.com", "role": "viewer", "team": "search"},
]


class Clock:
    """Wall time plus an offset the test moves (expiry without sleeping)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Console:
    """A running gateway with sign-in."""

    url: str
    app: GatewayApp
    governance: Governance
    clock: Clock
    provider: OpenIDProvider
    loop: asyncio.AbstractEventLoop

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine on the gateway's event loop (its connections live there)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    @property
    def identity(self) -> Any:
        assert self.app.console is not None
        return self.app.console.identity

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An admin API call with the shared admin key."""
        return httpx.request(
            method, self.url + path, headers={"authorization": f"Bearer {ADMIN}"}, **kwargs
        )

    def audit(self, action: str, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The stored audit events of ``action`` (waits for ``count`` to be written)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.governance.db.fetch(
                "SELECT * FROM audit_events WHERE action = ? ORDER BY ts", [action]
            )
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)


def _listen() -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]


@contextmanager
def console_gateway(
    provider: OpenIDProvider,
    fake_openai: Any,
    fake_anthropic: Any,
    tmp_path: Path,
    *,
    identity: dict[str, Any] | None = None,
    oidc: dict[str, Any] | None = None,
    accounts: dict[str, dict[str, Any]] | None = None,
    client_extra: dict[str, Any] | None = None,
    extra_clients: list[dict[str, Any]] | None = None,
    id_token_ttl: int = 600,
    sso: bool = True,
) -> Iterator[Console]:
    """Serve a governed gateway whose ``identity`` signs in at ``provider``."""
    sock, port = _listen()
    url = f"http://127.0.0.1:{port}"
    if sso:
        provider.configure(
            [
                client_registration(CLIENT_ID, CLIENT_SECRET, url, **(client_extra or {})),
                *(extra_clients or []),
            ],
            accounts or ACCOUNTS,
            id_token_ttl=id_token_ttl,
        )
    section: dict[str, Any] = {"public_url": url, "roles": ROLES, **(identity or {})}
    if sso:
        section["oidc"] = {
            "issuer": provider.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scopes": ["openid", "email", "profile", "groups"],
            **(oidc or {}),
        }
    raw = {
        "providers": providers(fake_openai, fake_anthropic),
        "models": STANDARD_MODELS,
        "governance": {"enabled": True, "audit_interval_s": 0},
        "identity": section,
    }
    config = parse(raw)
    governance = Governance(
        config,
        state=InProcessGovernanceState(),
        db=Database(f"sqlite:///{tmp_path / 'gov.sqlite3'}"),
        admin_key=ADMIN,
        secret=b"identity-test-secret",
    )
    clock = Clock()
    admin = AdminApi(governance)
    console = build(config, admin, Environment(), clock=clock)
    loops: list[asyncio.AbstractEventLoop] = []
    started = console.start

    async def start() -> None:  # remember the server's loop for Console.run
        loops.append(asyncio.get_running_loop())
        await started()

    console.start = start  # type: ignore[method-assign]
    app = GatewayApp(config, hooks=governance_hooks(governance), admin=admin, console=console)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning", loop="asyncio"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("gateway failed to start")
        time.sleep(0.01)
    try:
        yield Console(url, app, governance, clock, provider, loops[0])
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@dataclass
class SetCookie:
    """One Set-Cookie header, parsed."""

    name: str
    value: str
    attributes: dict[str, str]

    @classmethod
    def parse(cls, header: str) -> SetCookie:
        first, *rest = header.split(";")
        name, _, value = first.strip().partition("=")
        attributes = {}
        for part in rest:
            key, _, val = part.strip().partition("=")
            attributes[key.lower()] = val
        return cls(name, value, attributes)


@dataclass
class Browser:
    """Follows redirects between the gateway and the provider; keeps the gateway's cookies."""

    gateway: str
    jar: dict[str, str] = field(default_factory=dict)
    set_cookies: list[SetCookie] = field(default_factory=list)
    provider_http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))
    gateway_http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    def _is_gateway(self, url: str) -> bool:
        return url.startswith(self.gateway)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request, without following redirects."""
        if not url.startswith("http"):
            url = self.gateway + url
        if not self._is_gateway(url):
            return self.provider_http.request(method, url, **kwargs)
        headers = dict(kwargs.pop("headers", None) or {})
        if self.jar:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        response = self.gateway_http.request(method, url, headers=headers, **kwargs)
        self.gateway_http.cookies.clear()
        for header in response.headers.get_list("set-cookie"):
            cookie = SetCookie.parse(header)
            self.set_cookies.append(cookie)
            if cookie.attributes.get("max-age") == "0":
                self.jar.pop(cookie.name, None)
            else:
                self.jar[cookie.name] = cookie.value
        return response

    def follow(self, response: httpx.Response, stop: Callable[[str], bool] | None = None) -> Any:
        """Follow redirects (303 as GET); stop before a URL ``stop`` accepts."""
        hops = 0
        while response.status_code in (301, 302, 303, 307, 308):
            location = str(response.url.join(response.headers["location"]))
            if stop is not None and stop(location):
                return location
            hops += 1
            assert hops < 20, "redirect loop"
            response = self.request("GET", location)
        return response

    def sign_in(self, account: str, stop: Callable[[str], bool] | None = None) -> Any:
        """The whole sign-in: /auth/login, the provider's page (choose ``account``), back."""
        page = self.follow(self.request("GET", "/auth/login?return_to=/console/%23keys"))
        assert page.status_code == 200, page.text
        action = str(page.url)
        posted = self.request("POST", action, data={"account": account})
        return self.follow(posted, stop)

    def csrf(self) -> str:
        return self.request("GET", "/auth/session").json()["csrf_token"]

    def api(
        self, method: str, path: str, *, csrf: str | None = None, origin: str | None = "", **kw: Any
    ) -> httpx.Response:
        """An admin API call from the console: Origin and X-CSRF-Token as its script sends."""
        headers = dict(kw.pop("headers", None) or {})
        if origin is not None:
            headers["origin"] = origin or self.gateway
        if csrf is not None:
            headers["x-csrf-token"] = csrf
        return self.request(method, path, headers=headers, **kw)


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
