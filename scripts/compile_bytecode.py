"""Compile the virtualenv's bytecode, except the SDK service packages nothing imports.

Run by ``scripts/bootstrap.sh`` after ``uv sync``. With PYTHONDONTWRITEBYTECODE set
(as on this project's machines and CI) nothing is cached at run time, so the
modules a plan or a test imports must be compiled here (bench/plan-profile.md).
``uv sync --compile-bytecode`` compiles everything: 554 MB of source, 430 MB of it
the provider SDKs' service packages, most of which nothing ever imports (94
s of CPU on a fresh clone; bench/suite-time.md). This compiles everything except
the service packages of ``pulumi_aws``, ``pulumi_azure_native``, ``pulumi_gcp``
and ``pulumi_kubernetes`` that the program does not use: the ones mypy is told to
read in full in pyproject.toml (tests/infra/test_typecheck_scope.py keeps that
list complete). A module outside it still runs if imported, compiled in memory.
"""

from __future__ import annotations

import compileall
import re
import sys
import sysconfig
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SDKS = ("pulumi_aws", "pulumi_azure_native", "pulumi_gcp", "pulumi_kubernetes")


def used_service_packages(pyproject: Path) -> set[str]:
    """``pkg.service`` for every SDK service package mypy follows (pyproject.toml)."""
    config = tomllib.loads(pyproject.read_text())
    used: set[str] = set()
    for override in config["tool"]["mypy"].get("overrides", []):
        if override.get("follow_imports") != "normal":
            continue
        for module in override["module"]:
            parts = module.removesuffix(".*").split(".")
            if parts[0] in SDKS and len(parts) == 2:
                used.add(".".join(parts))
    return used


def unused_service_packages(site_packages: Path, used: set[str]) -> list[Path]:
    """The SDK service package directories not in ``used``."""
    return [
        directory
        for sdk in SDKS
        if (site_packages / sdk).is_dir()
        for directory in sorted((site_packages / sdk).iterdir())
        if (directory / "__init__.py").is_file() and f"{sdk}.{directory.name}" not in used
    ]


def main() -> int:
    """Compile ``sys.prefix``'s site-packages; 0 even when a file does not compile.

    Packages ship files that are not meant to compile (templates, other Python
    versions' code): ``uv sync --compile-bytecode`` ignores those too.
    """
    site_packages = Path(sysconfig.get_paths()["purelib"])
    used = used_service_packages(ROOT / "pyproject.toml")
    if not used:
        print("error: no SDK service packages found in pyproject.toml's mypy overrides")
        return 1
    skip = unused_service_packages(site_packages, used)
    pattern = re.compile("|".join(re.escape(f"{path}/") for path in skip)) if skip else None
    compileall.compile_dir(site_packages, quiet=2, workers=0, rx=pattern)
    return 0


if __name__ == "__main__":
    sys.exit(main())
