"""Load a Pulumi provider SDK's service packages one module at a time.

Every service package of the generated provider SDKs (``pulumi_gcp.compute``,
``pulumi_aws.ec2``, ``pulumi_azure_native.network``,
``pulumi_kubernetes.core.v1`` ...) has an ``__init__.py`` that star-imports
each of the service's resource and function modules: ``pulumi_gcp.compute``
alone has 280, and building their classes (each annotation goes through
``typing`` when the class is created) was most of an offline plan's time,
although the program uses a handful of them (bench/plan-profile.md).

:func:`install` puts a finder on ``sys.meta_path`` that runs no such
``__init__``. A name is looked up in the export table the star imports would
have built (each module's literal ``__all__``, a later module winning, as star
imports do) and only the module that defines it is imported. Those modules run
unchanged, so the program gets the very classes and functions the eager import
gives it. A package whose ``__init__`` has any other statement, or a module
without a literal ``__all__``, is imported by its real ``__init__``, as is
everything outside :data:`SDK_PACKAGES`.

The offline engine installs it (:mod:`infra.offline.engine`); a real
``pulumi up`` imports the SDKs as usual.
"""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.machinery
import re
import sys
from collections.abc import Collection, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

SDK_PACKAGES = frozenset({"pulumi_aws", "pulumi_azure_native", "pulumi_gcp", "pulumi_kubernetes"})
"""Top-level SDK packages whose service packages are loaded lazily."""

_STAR_IMPORT = re.compile(r"from \.(\w+) import \*")
_SUBMODULE_IMPORT = re.compile(r"from \. import (\w+)")
# The other statements of a generated service package's __init__, safe to skip:
# the modules import what they need themselves.
_SKIPPABLE = frozenset(
    {
        "import builtins as _builtins",
        "import typing",
        "from .. import _utilities",
        "from ... import _utilities",
    }
)
_ALL_START = re.compile(r"__all__ = \[(.*)")
_HEADER_LINES = 200
"""How far into a module ``__all__`` may start (it follows the imports)."""


def install(packages: Collection[str] = SDK_PACKAGES) -> None:
    """Load the service packages of ``packages`` lazily from now on (idempotent).

    Packages imported before keep their eager contents.
    """
    for finder in sys.meta_path:
        if isinstance(finder, ServicePackageFinder):
            finder.packages |= frozenset(packages)
            return
    sys.meta_path.insert(0, ServicePackageFinder(packages))


def service_layout(init_source: str) -> tuple[list[str], list[str]] | None:
    """The star-imported and the plainly imported submodules of a generated ``__init__``.

    ``None`` when the source has any other statement: that package is
    imported by its real ``__init__``.
    """
    stars: list[str] = []
    submodules: list[str] = []
    for raw in init_source.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line in _SKIPPABLE:
            continue
        if match := _STAR_IMPORT.fullmatch(line):
            stars.append(match.group(1))
        elif match := _SUBMODULE_IMPORT.fullmatch(line):
            submodules.append(match.group(1))
        else:
            return None
    return (stars, submodules) if stars else None


def declared_exports(module_file: Path) -> list[str] | None:
    """The module's literal ``__all__`` (what ``from module import *`` binds), else ``None``."""
    with module_file.open(encoding="utf-8") as source:
        for number, line in enumerate(source):
            if number > _HEADER_LINES:
                return None
            if match := _ALL_START.match(line):
                text = "[" + match.group(1)
                while not text.rstrip().endswith("]"):
                    following = source.readline()
                    if not following:
                        return None
                    text += following
                try:
                    names = ast.literal_eval(text)
                except (SyntaxError, ValueError):
                    return None
                if isinstance(names, list) and all(isinstance(n, str) for n in names):
                    return names
                return None
    return None


class ServicePackageFinder(importlib.abc.MetaPathFinder):
    """Gives the service packages of ``packages`` a :class:`ServicePackageLoader`."""

    def __init__(self, packages: Collection[str]):
        self.packages = frozenset(packages)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        """The normal spec of a service package, with its loader wrapped; else ``None``."""
        top, _, rest = fullname.partition(".")
        if top not in self.packages or not rest or path is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if (
            spec is None
            or spec.origin is None
            or not spec.submodule_search_locations
            or Path(spec.origin).name != "__init__.py"
            or not isinstance(spec.loader, importlib.abc.Loader)
        ):
            return None
        # The top-level package names every service (lazily): a service's
        # __init__ is read only when the service is first used, in exec_module.
        spec.loader = ServicePackageLoader(spec.loader, Path(spec.origin))
        return spec


class ExportIndex:
    """Which module of a service package binds each name, as its star imports would.

    Read from the modules' literal ``__all__`` (at the top of each file: for the
    service packages a plan uses, about 0.15 s of CPU in all), in the
    ``__init__``'s order, a later module winning as with star imports.
    """

    def __init__(self, directory: Path, stars: Sequence[str]):
        self.directory = directory
        self.stars = tuple(stars)
        self._table: dict[str, str] | None = None
        self._read = False

    def table(self) -> dict[str, str] | None:
        """Every exported name -> the module that binds it; ``None`` if an ``__all__`` is not literal."""
        if not self._read:
            # Two threads may both read it the first time: they build the same table.
            self._table = self._read_table()
            self._read = True
        return self._table

    def _read_table(self) -> dict[str, str] | None:
        table: dict[str, str] = {}
        for module in self.stars:
            file = self.directory / f"{module}.py"
            names = declared_exports(file) if file.is_file() else None
            if names is None:
                return None
            table.update(dict.fromkeys(names, module))
        return table


class ServicePackageLoader(importlib.abc.Loader):
    """Runs a generated service ``__init__`` lazily: a name imports the module that exports it."""

    def __init__(self, original: importlib.abc.Loader, init_file: Path):
        self.original = original
        self.init_file = init_file

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        """The default module object."""
        return None

    def exec_module(self, module: ModuleType) -> None:
        """Bind the lazy lookup, or run the real ``__init__`` when it is not generated."""
        layout = service_layout(self.init_file.read_text(encoding="utf-8"))
        if layout is None:
            self.original.exec_module(module)
            return
        stars, plain = layout
        index = ExportIndex(self.init_file.parent, stars)
        submodules = frozenset([*stars, *plain])
        package = module.__name__
        namespace = module.__dict__
        original = self.original

        def lookup(name: str) -> Any:
            # No lock of its own: the import system's per-module locks make
            # concurrent first uses safe, and binding a name twice is harmless.
            table = index.table()
            if table is None:
                return _run_real_init(original, module, name)
            if name == "__all__":  # `from package import *`: what the star imports bound
                return [*table, *sorted(m for m in submodules if not m.startswith("_"))]
            if name in table:
                value = getattr(importlib.import_module(f"{package}.{table[name]}"), name)
                namespace[name] = value
                return value
            if name in submodules:
                return importlib.import_module(f"{package}.{name}")
            raise AttributeError(f"module {package!r} has no attribute {name!r}")

        def names() -> list[str]:
            return sorted({*namespace, *(index.table() or {}), *submodules})

        namespace["__getattr__"] = lookup
        namespace["__dir__"] = names
        namespace[_INDEX] = index
        module.__class__ = _ServicePackage


_INDEX = "__aigw_export_index__"


class _ServicePackage(ModuleType):
    """A lazily loaded service package: a submodule never hides the name it exports.

    Importing ``package.Namespace`` binds the submodule as the package's
    ``Namespace`` attribute; the eager ``__init__`` then rebinds the name to
    what its star imports bring (pulumi_kubernetes: the ``Namespace`` class).
    Keep that outcome whoever imports the submodule, and whenever.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        index = self.__dict__.get(_INDEX)
        table = index.table() if isinstance(index, ExportIndex) else None
        if (
            table is not None
            and name in table
            and isinstance(value, ModuleType)
            and value.__name__ == f"{self.__name__}.{name}"
        ):
            value = getattr(importlib.import_module(f"{self.__name__}.{table[name]}"), name)
        super().__setattr__(name, value)


def _run_real_init(original: importlib.abc.Loader, module: ModuleType, name: str) -> Any:
    """Run the package's real ``__init__`` into the module, then look ``name`` up."""
    namespace = module.__dict__
    for key in ("__getattr__", "__dir__", _INDEX):
        namespace.pop(key, None)
    module.__class__ = ModuleType
    original.exec_module(module)
    return getattr(module, name)
