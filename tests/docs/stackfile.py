"""What the guides' ``pulumi config set|rm`` and YAML edits do to a stack file, without the CLI.

There is no Pulumi CLI here: ``pulumi config set --secret --path`` is applied to
a copy of a stack file as the CLI writes it (an encrypted ``secure:`` value
under the path), and a guide's YAML snippet is merged the way a reader merges
it into the file.
"""

from __future__ import annotations

import copy
import re
from typing import Any

#: A guide's steps: the blocks between ``<!-- howto-steps:NAME:start -->`` and ``...:end -->``.
STEPS = re.compile(r"<!-- howto-steps:([a-z-]+):start -->(.*?)<!-- howto-steps:\1:end -->", re.S)
#: A fenced block: its language and body.
BLOCK = re.compile(r"```(sh|yaml)\n(.*?)```", re.S)


def step_blocks(text: str, name: str) -> list[tuple[str, str]]:
    """The fenced blocks of one named steps section of a page, in order, unindented."""
    (steps,) = [body for found, body in STEPS.findall(text) if found == name]
    blocks = []
    for kind, body in BLOCK.findall(steps):
        lines = body.splitlines()
        indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
        blocks.append((kind, "\n".join(line[indent:] for line in lines)))
    return blocks


def _options(argv: list[str], stack: str) -> tuple[bool, bool, list[str]]:
    secret = path = False
    positional: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--secret":
            secret = True
        elif arg == "--path":
            path = True
        elif arg in ("--stack", "-s"):
            assert next(args) == stack, f"the step targets another stack: {argv}"
        elif arg.startswith("-"):
            raise AssertionError(f"pulumi config option {arg} is not emulated")
        else:
            positional.append(arg)
    return secret, path, positional


def _parent(config: dict[str, Any], key: str, path: bool) -> tuple[dict[str, Any], str]:
    if not path:
        return config, key
    namespace, _, dotted = key.partition(":")
    top, *rest = dotted.split(".")
    if not rest:
        return config, key
    node = config.setdefault(f"{namespace}:{top}", {})
    for part in rest[:-1]:
        node = node.setdefault(part, {})
    return node, rest[-1]


def config_set(stack_file: dict[str, Any], argv: list[str], stack: str) -> str:
    """``pulumi config set [--secret] [--path] KEY [VALUE] --stack S`` on a stack file's mapping.

    Returns the config key it set. A missing VALUE is what the CLI prompts for.
    """
    secret, path, positional = _options(argv, stack)
    key, *value = positional
    entered = value[0] if value else f"prompted-value-for-{key}"
    stored: Any = {"secure": f"v1:encrypted:{entered}"} if secret else entered
    node, leaf = _parent(stack_file.setdefault("config", {}), key, path)
    node[leaf] = stored
    return key


def config_rm(stack_file: dict[str, Any], argv: list[str], stack: str) -> str:
    """``pulumi config rm [--path] KEY --stack S``: the key leaves the file (absent is fine)."""
    _, path, (key,) = _options(argv, stack)
    node, leaf = _parent(stack_file.setdefault("config", {}), key, path)
    node.pop(leaf, None)
    return key


def merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    """Merge ``update`` into ``into`` the way a reader merges a snippet into a file."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)
