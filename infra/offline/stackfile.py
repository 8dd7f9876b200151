"""Reading ``Pulumi.yaml`` and ``Pulumi.<stack>.yaml`` the way the Pulumi CLI does.

The CLI hands a program its config as a flat map of ``namespace:key`` to
strings, with structured values (mappings and lists) JSON-encoded, and a list
of the keys that were secret. Encrypted values (``secure: ...``) cannot be
decrypted offline; they are replaced by a placeholder and stay marked secret,
so the program treats them exactly as it would the real secret.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class StackFileError(ValueError):
    """A project or stack file that cannot be read; the message names the file."""


@dataclass(frozen=True)
class Project:
    """What the engine needs from ``Pulumi.yaml``."""

    name: str
    root: Path
    main: Path


@dataclass(frozen=True)
class StackConfigFile:
    """One stack file's config as the CLI would pass it to the program."""

    stack: str
    path: Path
    values: dict[str, str]
    secret_keys: list[str] = field(default_factory=list)


def find_project_root(start: Path | None = None) -> Path:
    """The nearest directory at or above ``start`` holding a ``Pulumi.yaml``."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    raise StackFileError(
        f"no Pulumi.yaml found in {here} or its parents; run from the repository "
        "or pass --project-dir"
    )


def read_project(root: Path) -> Project:
    """Parse ``Pulumi.yaml`` in ``root``."""
    path = root / "Pulumi.yaml"
    data = _read_yaml(path)
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise StackFileError(f"{path}: `name` is missing; set the project name")
    main = root / str(data.get("main", "."))
    if main.is_dir():
        main = main / "__main__.py"
    if not main.is_file():
        raise StackFileError(f"{path}: `main` points at {main}, which does not exist")
    return Project(name=name, root=root, main=main)


def read_stack_file(path: Path, stack: str | None = None) -> StackConfigFile:
    """Parse a stack file into the CLI's flat config map."""
    data = _read_yaml(path)
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise StackFileError(f"{path}: `config` must be a mapping of keys to values")
    values: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in config.items():
        if ":" not in str(key):
            raise StackFileError(
                f"{path}: config key {key!r} has no namespace; write it as "
                f"'<project>:{key}' or '<provider>:{key}'"
            )
        if _contains_secure(value):
            secret_keys.append(str(key))
            value = _placeholder(value, str(key))
        values[str(key)] = value if isinstance(value, str) else json.dumps(value)
    name = stack or path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    return StackConfigFile(stack=name, path=path, values=values, secret_keys=secret_keys)


def _contains_secure(value: Any) -> bool:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return True
        return any(_contains_secure(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_secure(v) for v in value)
    return False


def _placeholder(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return f"offline-placeholder-for-{key}"
        return {k: _placeholder(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_placeholder(v, f"{key}[{i}]") for i, v in enumerate(value)]
    return value


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise StackFileError(f"{path} does not exist") from None
    except yaml.YAMLError as exc:
        raise StackFileError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise StackFileError(f"{path} must be a YAML mapping")
    return data
