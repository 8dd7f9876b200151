"""Compile a copy of the gateway's hot modules with mypyc, in place (bench/partial-native.md).

A measurement tool, not the shipping build: the gateway ships pure Python (compiled,
the governance path was no cheaper and the shared pipeline broke at run time; see
bench/partial-native.md). Run it on a copy of the tree, never on a checkout you
commit from:

    git archive HEAD | tar -x -C /tmp/native
    /tmp/mypyc-venv/bin/python /tmp/native/bench/mypyc_tree.py              # governance-only
    /tmp/mypyc-venv/bin/python /tmp/native/bench/mypyc_tree.py --shared     # + the pipeline
    /tmp/mypyc-venv/bin/python /tmp/native/bench/mypyc_tree.py --clean
    cd /tmp/native && /path/to/checkout/.venv/bin/python bench/bench.py ...

The interpreter must be the one the gateway runs on (the extensions are built for its
ABI and headers: gcc and its development headers installed), with ``mypy`` (which ships
mypyc), ``setuptools``, the gateway's locked dependencies (mypyc type-checks the
modules with the project's ``[tool.mypy]`` settings), ``types-pyyaml`` and the
semantic cache's numpy, safetensors and tokenizers. Python imports an extension module
in preference to the ``.py`` beside it, so the tree runs the compiled code as is.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Governance-only modules (resp.py is left out: mypyc refuses its ConnectionError
# subclass without a mypy_extensions decorator the runtime does not install).
GOVERNANCE: tuple[str, ...] = (
    "gateway_app/governance/service.py",
    "gateway_app/governance/check_plan.py",
    "gateway_app/governance/audit.py",
    "gateway_app/governance/hooks.py",
    "gateway_app/state/admission.py",
    "gateway_app/state/governance.py",
    "gateway_app/state/governance_redis.py",
)
# The shared pipeline (router.py: async generators are unimplemented in mypyc; hooks.py:
# the interpreted hooks, e.g. ObservabilityHook, cannot subclass a compiled Hook).
# Two source changes are needed for it to serve requests (partial-native.md).
SHARED: tuple[str, ...] = (
    "gateway_app/server.py",
    "gateway_app/app.py",
    "gateway_app/observability/logs.py",
    "gateway_app/observability/metrics.py",
    "gateway_app/transport.py",
)
# The Pulumi SDK sections of [tool.mypy] do not apply here; their unused-section note
# would fail the build.
MYPY_FLAGS: tuple[str, ...] = ("--no-warn-unused-configs",)


def built(root: Path = ROOT) -> list[Path]:
    """Every extension a build left: mypyc's runtime and each module's beside its ``.py``."""
    found = list(root.glob("*__mypyc.*.so"))
    found += [
        so
        for so in (root / "gateway_app").rglob("*.cpython-*.so")
        if so.with_name(so.name.split(".")[0] + ".py").exists()
    ]
    return sorted(found)


def clean(root: Path = ROOT) -> list[Path]:
    """Remove every extension a build left; returns the removed paths."""
    removed = built(root)
    for path in removed:
        path.unlink()
    return removed


def build(modules: tuple[str, ...], root: Path = ROOT) -> list[Path]:
    """Compile ``modules`` (paths relative to ``root``) in place; returns the extensions."""
    from mypyc.build import mypycify
    from setuptools import Distribution

    clean(root)
    os.chdir(root)
    # setup() would read the project's pyproject.toml as a package to build; a bare
    # Distribution builds only these extensions.
    dist = Distribution({"name": "aigw-mypyc", "ext_modules": mypycify([*MYPY_FLAGS, *modules])})
    command = dist.get_command_obj("build_ext")
    command.inplace = True  # type: ignore[attr-defined]
    dist.run_command("build_ext")
    return built(root)


def main(argv: list[str] | None = None) -> int:
    """The command line: build (governance-only, or ``--shared`` too) or ``--clean``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--shared", action="store_true", help="compile the pipeline too")
    parser.add_argument("--clean", action="store_true", help="remove the built extensions")
    args = parser.parse_args(argv)
    if args.clean:
        for path in clean():
            print(f"removed {path.relative_to(ROOT)}")
        return 0
    for path in build(GOVERNANCE + (SHARED if args.shared else ())):
        print(f"built {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
