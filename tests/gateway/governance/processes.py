"""Gateway processes (``python -m gateway_app serve``) for multi-replica tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

import httpx
import yaml

from gateway_app.cli import EXIT_LISTEN
from tests.gateway.governance.services import PortTaken
from tests.ports import kept_port

ADMIN = "process-admin-key"


class GatewayProcess:
    """One gateway replica on loopback; stopped (or killed) by PID."""

    def __init__(
        self,
        config: dict[str, Any],
        env: dict[str, str],
        port: int | None = None,
        workers: int = 1,
        start_timeout_s: float = 30,
    ) -> None:
        self.workers = workers
        self.start_timeout_s = start_timeout_s
        self.dir = tempfile.mkdtemp(prefix="aigw-gw-")
        self.config_path = os.path.join(self.dir, "config.yaml")
        with open(self.config_path, "w") as handle:
            yaml.safe_dump(config, handle)
        self.env = {
            **os.environ,
            "AIGW_ADMIN_KEY": ADMIN,
            "AIGW_KEY_HASH_SECRET": "process-hash-secret",
            **env,
        }
        self.port = port or kept_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        for attempt in range(3):
            try:
                self.start()
                break
            except PortTaken:
                # The kept port chosen was bound by another process of the machine before
                # the gateway bound it: another one (only when the caller chose none).
                if port is not None or attempt == 2:
                    raise AssertionError("gateway could not bind:\n" + self.output()) from None
                self.port = kept_port()
                self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start (or restart) on ``self.port``; :class:`PortTaken` when it could not bind."""
        self.log = open(os.path.join(self.dir, "gateway.log"), "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway_app",
                "serve",
                "--config",
                self.config_path,
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--workers",
                str(self.workers),
            ],
            env=self.env,
            cwd=self.dir,
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            if self.process.poll() == EXIT_LISTEN:
                self.log.close()
                raise PortTaken(f"gateway could not listen on {self.port}")
            assert self.process.poll() is None, self.output()
            try:
                if httpx.get(self.url + "/health/live", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() >= deadline:
                self.stop()  # not left running behind the failure
                raise AssertionError("gateway did not start:\n" + self.output())
            time.sleep(0.1)

    def output(self) -> str:
        with open(os.path.join(self.dir, "gateway.log"), "rb") as handle:
            return handle.read().decode(errors="replace")[-4000:]

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flush (a crash)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.log.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.close()

    def admin(self, method: str, path: str, timeout: float = 10, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method,
            self.url + path,
            headers={"authorization": f"Bearer {ADMIN}"},
            timeout=timeout,
            **kwargs,
        )


def gateway_config(openai_url: str, **governance: Any) -> dict[str, Any]:
    return {
        "providers": {"openai": {"type": "openai", "api_key": "sk-fake", "base_url": openai_url}},
        "models": {
            "gpt-4o-mini": {"deployments": [{"provider": "openai", "model": "gpt-4o-mini"}]}
        },
        "governance": {"enabled": True, **governance},
    }
