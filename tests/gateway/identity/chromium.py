"""Debian's chromium, driven by Playwright (its bundled driver; no browser download).

Installed with apt-get when missing (as tests/container installs podman); the
tests fail, saying why, only where that is impossible (not root, no apt-get).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.workers import machine_lock

CHROMIUM = "/usr/bin/chromium"
# What works on a CI host without a display, GPU or user namespaces.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def ensure_chromium() -> str:
    """The chromium binary, installed from Debian's packages if needed."""
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail("chromium is missing and cannot be installed here: apt-get install chromium")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with machine_lock("apt"):  # one apt-get at a time (podman's, another worker's)
        if os.path.exists(CHROMIUM):  # installed while this one waited
            return CHROMIUM
        for command in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
        ):
            result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
            if result.returncode != 0:
                pytest.fail(f"`{' '.join(command)}` failed: {result.stderr.strip()[-500:]}")
    return CHROMIUM
