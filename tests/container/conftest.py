"""Podman on a CI host without a Docker engine or a reachable image registry.

The session fixture ``gateway_image`` makes the gateway image buildable here:

1. podman (with runc, debootstrap and slirp4netns, which gives a pod its own
   network namespace) is installed from Debian when missing;
   the tests skip, saying why, only where that is impossible.
2. The three host adjustments go into a private ``containers.conf`` (selected
   with ``CONTAINERS_CONF``, so the host's own configuration is untouched): the
   ``runc`` runtime instead of crun, and explicit default ulimits.
3. No registry is reachable, so the base image is built from Debian packages
   with ``debootstrap --variant=minbase`` from the mirror apt uses, cached as a
   tarball under ``~/.cache/aigw`` and loaded with ``podman import``.
4. Where pip trusts an extra CA bundle, the build gets it as a build secret
   (mounted for one step, never stored in a layer).
5. The build starts in the background as soon as the session has collected a
   test that needs the image (:func:`start_background_build`, called from
   tests/conftest.py, which also runs those tests last): a cold build (the
   debootstrap base, the wheels) waits on the network for minutes, and the rest
   of the suite runs meanwhile. The fixture waits for it. Under xdist the build is
   the controller's (once per run, tests/workers.py): it publishes the image id (or
   why there is none) in the run's directory, where the worker running the podman
   tests waits for it.
"""

from __future__ import annotations

import configparser
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests import workers
from tests.workers import CACHE

if TYPE_CHECKING:
    from tests.container.planned_pod import PodBench

ROOT = Path(__file__).resolve().parents[2]
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
BASE_IMAGE = "localhost/aigw-base:" + SUITE
GATEWAY_IMAGE = "localhost/aigw-gateway:test"
CONTAINERS_CONF = """\
# Written by tests/container: podman on a CI host.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
"""
# Dropped from the base tarball: apt's caches and documentation weigh ~140 MB.
_TAR_EXCLUDES = (
    "./var/cache/apt/archives/*.deb",
    "./var/lib/apt/lists/*",
    "./usr/share/doc/*",
    "./usr/share/man/*",
    "./usr/share/locale/*",
)


@dataclass(frozen=True)
class Podman:
    """Runs podman with the private containers.conf."""

    env: dict[str, str]

    def run(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """``podman ARGS``; raises with podman's stderr when ``check`` and it fails."""
        result = _run(["podman", *args], env=self.env, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(
                f"podman {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result


class _Build:
    """One image build on a background thread; its processes are tracked to be stopped."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.image_id: str | None = None
        self.skip: str | None = None
        self.error: BaseException | None = None
        self.processes: list[subprocess.Popen[str]] = []
        self.thread: threading.Thread | None = None
        self.cancelled = False
        self.publish = False  # the xdist controller's: the result goes to the workers

    def start(self, work: Callable[[_Build], None]) -> None:
        """Run ``work(self)`` on a daemon thread; ``done`` is set when it returns or raises."""

        def body() -> None:
            _background.build = self  # what _run on this thread belongs to
            try:
                work(self)
            except BaseException as exc:  # handed to the fixture, which raises it in a test
                self.error = exc
            finally:
                if self.publish:
                    workers.publish(
                        "image",
                        {
                            "image_id": self.image_id,
                            "skip": self.skip,
                            "error": None
                            if self.error is None
                            else f"{type(self.error).__name__}: {self.error}",
                        },
                    )
                self.done.set()

        self.thread = threading.Thread(target=body, name="gateway-image-build", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """End the running step, with its children (its own process group), and the thread."""
        self.cancelled = True
        for process in list(self.processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        if self.thread is not None:
            self.thread.join(timeout=60)

    def run(
        self, command: list[str], env: dict[str, str] | None, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """Run one step at nice 10 in its own process group (stoppable as a whole)."""
        if self.cancelled:
            raise RuntimeError("the session ended before the image build")
        process = subprocess.Popen(
            ["nice", "-n", "10", *command],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.processes.append(process)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
        finally:
            self.processes.remove(process)
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


_background = threading.local()
_BUILD = _Build()
"""The session's gateway image build (:func:`start_background_build`)."""


def _run(
    command: list[str], *, env: dict[str, str] | None = None, timeout: float
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run``; on a build's thread, that build's stoppable, lower-priority step.

    The tests in the foreground come first: the image is needed only at the end
    of the session.
    """
    build: _Build | None = getattr(_background, "build", None)
    if build is not None:
        return build.run(command, env, timeout)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def _install_podman() -> str | None:
    """Install podman, runc and debootstrap from Debian; the reason when impossible."""
    tools = ("podman", "runc", "debootstrap", "slirp4netns")
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if not missing:
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return f"{', '.join(missing)} missing and cannot be installed (needs root and apt-get)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with workers.machine_lock("apt"):  # one apt-get at a time (chromium's, another run's)
        for command in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "podman", "runc", "debootstrap", "slirp4netns"],
        ):
            result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
            if result.returncode != 0:
                return f"`{' '.join(command)}` failed: {result.stderr.strip()[-500:]}"
    return None


def apt_mirror() -> str:
    """The Debian mirror apt is configured with (deb822 ``.sources`` or ``sources.list``)."""
    candidates = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in candidates:
        for line in path.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    for path in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*.list")]:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            parts = line.split()
            if parts[:1] == ["deb"] and "security" not in line:
                uri = next(p for p in parts[1:] if not p.startswith("["))
                return uri
    raise AssertionError("no Debian mirror found in /etc/apt/sources.list*")


def pip_ca_bundle() -> Path | None:
    """The extra CA bundle pip trusts here (``PIP_CERT``, pip's config, ``SSL_CERT_FILE``)."""
    candidates = [os.environ.get("PIP_CERT")]
    for path in (
        Path("/etc/pip.conf"),
        Path("/etc/xdg/pip/pip.conf"),
        Path.home() / ".pip/pip.conf",
    ):
        if path.exists():
            parser = configparser.ConfigParser()
            parser.read(path)
            candidates.append(parser.get("global", "cert", fallback=None))
    candidates.append(os.environ.get("SSL_CERT_FILE"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def base_tarball() -> Path:
    """The cached minbase root filesystem (built with debootstrap on first use)."""
    key = hashlib.sha256(f"{SUITE} {' '.join(BASE_PACKAGES)} {_TAR_EXCLUDES}".encode()).hexdigest()
    tarball = CACHE / f"base-{SUITE}-{key[:12]}.tar"
    if tarball.exists():
        return tarball
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        root = Path(work) / "root"
        result = _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                SUITE,
                str(root),
                apt_mirror(),
            ],
            # In the background at nice 10 on a loaded machine it took over 10 minutes.
            timeout=1200,
        )
        if result.returncode != 0:
            raise AssertionError(f"debootstrap failed:\n{result.stdout[-3000:]}{result.stderr}")
        partial = Path(work) / "base.tar"
        excludes = [f"--exclude={pattern}" for pattern in _TAR_EXCLUDES]
        tar = _run(
            ["tar", "-C", str(root), "-c", "--numeric-owner", *excludes, "-f", str(partial), "."],
            timeout=300,
        )
        if tar.returncode != 0:
            raise AssertionError(f"tar of the base image failed:\n{tar.stderr[-3000:]}")
        partial.rename(tarball)  # atomic: an interrupted run never leaves a half tarball
    return tarball


def _podman() -> Podman:
    """Podman with the private containers.conf (written on first use)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    conf = CACHE / "containers.conf"
    if not conf.exists() or conf.read_text() != CONTAINERS_CONF:
        conf.write_text(CONTAINERS_CONF)
    return Podman(env={**os.environ, "CONTAINERS_CONF": str(conf)})


def build_gateway_image(podman: Podman) -> str:
    """Build the gateway image from ``gateway_app/Dockerfile`` on the debootstrap base.

    Returns its image id, not its tag: another checkout on the same machine may
    build and tag its own image while this session's tests run.
    """
    if podman.run("image", "exists", BASE_IMAGE, check=False).returncode != 0:
        podman.run("import", str(base_tarball()), BASE_IMAGE, timeout=300)
    with tempfile.TemporaryDirectory() as work:
        image_id = Path(work) / "id"
        build = [
            "build",
            # Build steps use the host's network (the only way out to the package index here).
            "--network=host",
            "--file",
            str(ROOT / "gateway_app" / "Dockerfile"),
            "--build-arg",
            f"BASE_IMAGE={BASE_IMAGE}",
            "--tag",
            GATEWAY_IMAGE,
            "--iidfile",
            str(image_id),
        ]
        bundle = pip_ca_bundle()
        if bundle is not None:
            build += ["--secret", f"id=ca_bundle,src={bundle}"]
        podman.run(*build, str(ROOT), timeout=1200)
        return image_id.read_text().strip()


def _build_gateway_image(build: _Build) -> None:
    build.skip = _install_podman()
    if build.skip is None:
        build.image_id = build_gateway_image(_podman())


def start_background_build(publish: bool = False) -> None:
    """Start building the gateway image on a background thread (once per session);
    ``publish``: the xdist controller's build, its result for the workers
    (:func:`tests.workers.publish`)."""
    if _BUILD.thread is None:
        _BUILD.publish = publish
        _BUILD.start(_build_gateway_image)


def stop_background_build() -> None:
    """End a build still running when the session ends (``-x``, an interrupt)."""
    _BUILD.stop()


BUILD_WAIT_S = 2700.0
"""At most how long an xdist worker waits for the controller's build (its steps' bounds)."""


def _built_by_controller() -> bool:
    """An xdist worker of a run whose controller builds the image (its collection asked)."""
    shared = workers.run_dir()
    return shared is not None and (shared / "needs-image").exists()


@pytest.fixture(scope="session")
def podman() -> Iterator[Podman]:
    """Podman configured for this host, or a skip saying why it cannot be installed."""
    if _built_by_controller():
        reason = workers.published("image", BUILD_WAIT_S)["skip"]
    elif _BUILD.thread is not None:
        _BUILD.done.wait()  # the background build installs podman first
        reason = _BUILD.skip
    else:
        reason = _install_podman()
    if reason:
        pytest.skip(f"container test skipped: {reason}")
    yield _podman()


@pytest.fixture(scope="session")
def gateway_image(podman: Podman) -> str:
    """The gateway image's id: from the background build when one was started."""
    if _built_by_controller():
        built = workers.published("image", BUILD_WAIT_S)
        if built["error"] is not None:
            raise AssertionError(f"the gateway image build failed: {built['error']}")
        assert built["image_id"], "the background image build ended without an image"
        return str(built["image_id"])
    if _BUILD.thread is None:
        return build_gateway_image(podman)
    _BUILD.done.wait()
    if _BUILD.error is not None:
        raise _BUILD.error
    assert _BUILD.image_id, "the background image build ended without an image"
    return _BUILD.image_id


@pytest.fixture(scope="session")
def bench(podman: Podman, gateway_image: str) -> Iterator[PodBench]:
    """Local Redis, PostgreSQL and provider fakes for planned pods (:class:`PodBench`)."""
    from tests.container.planned_pod import PodBench

    bench = PodBench(podman, gateway_image)
    try:
        yield bench
    finally:
        bench.close()
