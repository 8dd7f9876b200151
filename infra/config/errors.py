"""Error messages from pydantic's errors: each names the full key, the value and the fix."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ValidationError,
)

from infra.config.base import NAMESPACE, _SectionError
from infra.config.stack import StackConfig


def _fix_for(error: Mapping[str, Any]) -> str:
    """The 'how to fix it' half of a message, from a pydantic error."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind in {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
        return ""  # completed by the caller, which knows both bounds
    if kind == "int_parsing" or kind == "int_type" or kind == "int_from_float":
        return "use a whole number"
    if kind in {"bool_parsing", "bool_type"}:
        return "use true or false"
    if kind in {"string_type"}:
        return "use a string"
    if kind in {"list_type"}:
        return "use a list"
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return "use a mapping of keys to values"
    if kind in {"literal_error", "enum"}:
        expected = ctx.get("expected", "")
        return f"use one of {expected}"
    if kind == "string_pattern_mismatch":
        return f"use a value matching {ctx.get('pattern')}"
    if kind == "string_too_short":
        return f"use at least {ctx.get('min_length')} character(s)"
    if kind == "string_too_long":
        return f"use at most {ctx.get('max_length')} characters"
    return ""


def _bounds(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> tuple[Any, Any]:
    """The ge/le bounds of the field at ``loc`` (for 'use an integer from A to B')."""
    field = None
    for part in loc:
        if model is None:
            return None, None
        field = next((f for n, f in model.model_fields.items() if part in {n, f.alias}), None)
        if field is None:
            return None, None
        annotation = field.annotation
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    low = high = None
    for meta in field.metadata if field else []:
        low = getattr(meta, "ge", low)
        high = getattr(meta, "le", high)
    return low, high


def _format_value(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if value == "" or " " in value else value
    try:
        return json.dumps(value)
    except TypeError:
        return repr(value)


def _messages(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(str(p) for p in error["loc"])
        key = f"{NAMESPACE}:" + ".".join(loc) if loc else NAMESPACE
        value = error.get("input")
        kind = error["type"]
        original = (error.get("ctx") or {}).get("error")
        if isinstance(original, _SectionError):
            for sub, message in ((original.key, str(original)), *original.more):
                problems.append(f"{NAMESPACE}:" + ".".join((*loc, sub)) + f": {message}")
            continue
        if kind == "extra_forbidden":
            model = _model_at(loc[:-1])
            known = (
                ", ".join(sorted(f.alias or n for n, f in model.model_fields.items()))
                if model
                else ""
            )
            problems.append(f"{key}: unknown key; check the spelling (known keys here: {known})")
        elif kind == "missing":
            problems.append(
                f"{key}: is required; set it in Pulumi.<stack>.yaml or with "
                f"`pulumi config set --path '{key}' VALUE`"
            )
        elif kind in {"greater_than_equal", "less_than_equal"}:
            low, high = _bounds(StackConfig, loc)
            what = "an integer" if isinstance(value, int) else "a number"
            fix = (
                f"use {what} from {low} to {high}"
                if low is not None and high is not None
                else (
                    f"use {what} of at least {low}"
                    if low is not None
                    else f"use {what} of at most {high}"
                )
            )
            problems.append(f"{key}: {_format_value(value)} is not allowed; {fix}")
        elif kind == "value_error":
            message = str(original) if original is not None else error["msg"]
            problems.append(f"{key}: {message}")
        else:
            fix = _fix_for(error)
            reason = "" if kind in {"literal_error", "enum"} else f" ({error['msg'].lower()})"
            problems.append(
                f"{key}: {_format_value(value)} is not allowed{reason}"
                + (f"; {fix}" if fix else "")
            )
    return problems


def _model_at(loc: tuple[str, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = StackConfig
    for part in loc:
        if model is None:
            return None
        field = next((f for n, f in model.model_fields.items() if part in {n, f.alias}), None)
        if field is None:
            return None
        annotation = field.annotation
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    return model
