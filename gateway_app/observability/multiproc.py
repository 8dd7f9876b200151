"""The shared metrics directory of a multi-worker ``serve``.

Kept apart from :mod:`gateway_app.observability.metrics` on purpose: it must
run before ``prometheus_client`` is first imported, because the client picks
its single- or multi-process value class at import. A server that forks its
workers after importing the app (ours does) would otherwise give every worker
private, unsummed counters.
"""

from __future__ import annotations

import os

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir() -> str:
    """Create (or reuse) ``PROMETHEUS_MULTIPROC_DIR`` before workers import prometheus_client.

    A fresh private directory under /tmp per ``serve``: stale files from an
    earlier run would be summed into this one's counters.
    """
    existing = os.environ.get(MULTIPROC_ENV)
    if existing:
        os.makedirs(existing, exist_ok=True)
        return existing
    import atexit
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="aigw-metrics-", dir="/tmp")
    os.environ[MULTIPROC_ENV] = path
    atexit.register(shutil.rmtree, path, True)  # in the serving parent, after workers exit
    return path
