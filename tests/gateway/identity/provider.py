"""A real OpenID Provider for the tests: the certified ``oidc-provider`` npm package on Node.

``op/package.json`` and ``op/package-lock.json`` pin it; ``npm ci`` installs them
once into a cache directory keyed by the lock file's hash (``AIGW_CACHE_DIR``,
default ``~/.cache/aigw``), so a fresh machine needs only node, npm and the npm
registry. ``op/provider.mjs`` configures it; the tests steer it through its
loopback-only ``/__control/`` endpoints (clients, accounts, key rotation).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

from tests.workers import CACHE, machine_lock

OP_DIR = Path(__file__).resolve().parent / "op"


def _install() -> Path:
    """The cache directory holding node_modules for the committed lock file."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail(
            "node and npm are needed to run the test OpenID Provider (oidc-provider): "
            "install Debian's nodejs and npm packages"
        )
    lock = (OP_DIR / "package-lock.json").read_bytes()
    target = CACHE / f"oidc-provider-{hashlib.sha256(lock).hexdigest()[:16]}"
    with machine_lock(target.name):  # another worker may be installing it
        _npm_ci(target)
    # The script resolves `oidc-provider` from its own directory: run it from the cache.
    shutil.copy(OP_DIR / "provider.mjs", target / "provider.mjs")
    return target


def _npm_ci(target: Path) -> None:
    if not (target / "node_modules" / "oidc-provider" / "package.json").exists():
        target.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(OP_DIR / name, target / name)
        result = subprocess.run(
            ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=target,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            shutil.rmtree(target / "node_modules", ignore_errors=True)
            raise AssertionError(f"npm ci of the test OpenID Provider failed:\n{result.stderr}")


@dataclass
class OpenIDProvider:
    """The running provider: its issuer URL and controls."""

    process: subprocess.Popen[str]
    issuer: str
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def control(self, action: str, **body: Any) -> dict[str, Any]:
        response = httpx.post(f"{self.issuer}/__control/{action}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def configure(
        self,
        clients: list[dict[str, Any]],
        accounts: dict[str, dict[str, Any]],
        id_token_ttl: int = 600,
    ) -> None:
        """Register clients and people (``{"alice": {"email":..., "groups": [...]}}``)."""
        self.accounts = accounts
        self.control("configure", clients=clients, accounts=accounts, id_token_ttl=id_token_ttl)

    def rotate(self, retire: bool = False) -> list[str]:
        """Sign with a new key from now on; the old ones stay published unless ``retire``."""
        return self.control("rotate", retire=retire)["kids"]

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_provider() -> OpenIDProvider:
    """Install (cached) and start the provider on a loopback port."""
    directory = _install()
    process = subprocess.Popen(
        ["node", "provider.mjs"],
        cwd=directory,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "NODE_ENV": "test"},
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    line = process.stdout.readline()
    if not line or time.monotonic() > deadline:
        process.kill()
        raise AssertionError("the test OpenID Provider did not start")
    port = json.loads(line)["port"]
    return OpenIDProvider(process, f"http://127.0.0.1:{port}")


def client_registration(
    client_id: str, secret: str, gateway_url: str, **extra: Any
) -> dict[str, Any]:
    """A confidential client for a gateway at ``gateway_url``."""
    return {
        "client_id": client_id,
        "client_secret": secret,
        "redirect_uris": [urljoin(gateway_url, "/auth/callback")],
        "post_logout_redirect_uris": [urljoin(gateway_url, "/console/")],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
        **extra,
    }
