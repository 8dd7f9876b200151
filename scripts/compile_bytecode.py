"""Compile the virtualenv's bytecode, except the SDK service packages nothing imports.

Run by ``scripts/bootstrap.sh`` after ``uv sync``. With PYTHONDONTWRITEBYTECODE set
(as on this project's machines and CI) nothing is cached at run time, so the
modules a plan or a test imports must be compiled here (bench/plan-profile.md).
``uv sync --compile-bytecode`` compiles everything: 554 MB of source, 430 MB of it
the provider SDKs' service packages, most of which nothing ever imports (94
s of CPU on a fresh clone; bench/suite-time.md). This compiles everything except
the service packages of ``pulumi_aws``, ``pulumi_azure_native``, ``pulumi_gcp``
and ``pulumi_kubernetes`` that nothing in the repository uses: compiled are the ones
mypy is told to read in full in pyproject.toml (tests/infra/test_typecheck_scope.py
keeps that list complete) and any the sources, the tests' fixture programs
included, reach. A module outside them still runs if imported, compiled in memory.
"""

from __future__ import annotations

import ast
import compileall
import re
import sys
import sysconfig
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SDKS = ("pulumi_aws", "pulumi_azure_native", "pulumi_gcp", "pulumi_kubernetes")
SOURCES = ("infra", "policies", "docgen", "gateway_app", "tests", "bench")
"""Where SDK references are looked for: the program, and the tests' fixture programs."""


def sdk_references(tree: ast.AST) -> set[tuple[str, str]]:
    """``(sdk, first attribute)`` for every SDK name a module's source reaches."""
    aliases: dict[str, str] = {}
    found: set[tuple[str, str]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] in SDKS:
                    if len(parts) > 1:
                        found.add((parts[0], parts[1]))
                    if alias.asname or len(parts) == 1:
                        aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[0] in SDKS:
                first = parts[1:2] or [alias.name for alias in node.names]
                found.update((parts[0], name) for name in first)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            target = aliases.get(node.value.id)
            if target is not None:
                parts = target.split(".")
                found.add((parts[0], parts[1] if len(parts) > 1 else node.attr))
    return found


def referenced_service_packages(root: Path) -> set[str]:
    """``pkg.name`` for every SDK name the repository's sources reach (tests included)."""
    found: set[str] = set()
    for source in SOURCES:
        for path in sorted((root / source).rglob("*.py")):
            try:
                tree = ast.parse(path.read_text(), str(path))
            except SyntaxError:
                continue
            found |= {f"{sdk}.{name}" for sdk, name in sdk_references(tree)}
    return found


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
    # The tests' fixture programs use a few more (secretsmanager, storage, ...).
    used |= referenced_service_packages(ROOT)
    skip = unused_service_packages(site_packages, used)
    pattern = re.compile("|".join(re.escape(f"{path}/") for path in skip)) if skip else None
    compileall.compile_dir(site_packages, quiet=2, workers=0, rx=pattern)
    return 0


if __name__ == "__main__":
    sys.exit(main())
