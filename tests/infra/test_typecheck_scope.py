"""mypy reads in full every provider SDK module the program uses.

pyproject.toml skips the provider SDKs' service packages in mypy (followed whole they
cost a cold run over 6 minutes and 7 GB; bench/suite-time.md) except the ones listed.
A service package the program starts to use but the list lacks would be typed ``Any``:
its calls unchecked, silently. This test reads the program's sources for every SDK
name they reach (``aws.ec2.Vpc``, ``from pulumi_azure_native import network``,
``aws.get_region_output``), resolves each to the module that defines it, and asks
mypy's own configuration parser whether that module is followed.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import io
from pathlib import Path
from types import ModuleType

from mypy.config_parser import parse_config_file
from mypy.options import Options

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("infra", "policies", "docgen", "gateway_app")
_spec = importlib.util.spec_from_file_location(
    "compile_bytecode", ROOT / "scripts" / "compile_bytecode.py"
)
assert _spec is not None and _spec.loader is not None
compile_bytecode = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compile_bytecode)
sdk_references = compile_bytecode.sdk_references


def defining_modules(sdk: str, name: str) -> list[str]:
    """The module ``sdk.name`` is, or defines it; for a package, also its own modules."""
    package = importlib.import_module(sdk)
    value = getattr(package, name)
    if not isinstance(value, ModuleType):
        return [value.__module__]
    directory = Path(package.__file__ or "").parent / name
    if not directory.is_dir():
        return [f"{sdk}.{name}"]
    return [f"{sdk}.{name}"] + [
        f"{sdk}.{name}.{path.stem if path.is_file() else path.name}"
        for path in sorted(directory.iterdir())
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").is_file()
    ]


def mypy_options() -> Options:
    """The project's mypy options, parsed by mypy itself from pyproject.toml."""
    options = Options()
    parse_config_file(
        options, lambda: None, str(ROOT / "pyproject.toml"), io.StringIO(), io.StringIO()
    )
    return options


def test_the_sdk_modules_the_program_uses_are_type_checked() -> None:
    references: set[tuple[str, str]] = set()
    for source in SOURCES:
        for path in sorted((ROOT / source).rglob("*.py")):
            references |= sdk_references(ast.parse(path.read_text(), str(path)))
    # The scan sees what the program reaches: the clouds' core services at least.
    assert {("pulumi_aws", "ec2"), ("pulumi_azure_native", "network")} <= references
    assert ("pulumi_kubernetes", "core") in references

    options = mypy_options()
    unchecked = sorted(
        f"{sdk}.{name}"
        for sdk, name in references
        if any(
            options.clone_for_module(module).follow_imports != "normal"
            for module in defining_modules(sdk, name)
        )
    )
    assert not unchecked, (
        f"the program uses {unchecked}, which mypy skips (typed Any, calls unchecked): add "
        "each (a service package as 'pkg.service.*', with its modules) to the "
        '[[tool.mypy.overrides]] section with follow_imports = "normal" in pyproject.toml'
    )


def test_a_service_package_the_program_does_not_use_is_skipped() -> None:
    """The skip is what keeps mypy's cold run small: it must stay in force."""
    options = mypy_options()
    assert options.clone_for_module("pulumi_aws.sagemaker").follow_imports == "skip"
    assert options.clone_for_module("pulumi_azure_native.web.webapp").follow_imports == "skip"
    assert options.clone_for_module("pulumi_aws.ec2.vpc").follow_imports == "normal"
