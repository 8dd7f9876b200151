"""Running a measurement in a fresh interpreter on another source tree (``--tree NAME=PATH``).

The bench scripts that compare two versions (``audit_drain.py``, ``hook_path.py``) run each
measurement in its own interpreter with the tree first on its path, so each imports that
tree's ``gateway_app``; the child prints its result as JSON on its last line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any


def run_in_tree(tree: str, code: str, args: list[str], timeout: float) -> Any:
    """``python -c code tree *args`` with ``tree`` on ``PYTHONPATH``, from a temporary
    directory; the JSON on its last line of output. RuntimeError (with its stderr's tail)
    if it fails."""
    result = subprocess.run(
        [sys.executable, "-c", code, tree, *args],
        env={**os.environ, "PYTHONPATH": tree},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tempfile.gettempdir(),
    )
    if result.returncode:
        raise RuntimeError(f"{tree}: {result.stderr[-2000:]}")
    return json.loads(result.stdout.splitlines()[-1])
