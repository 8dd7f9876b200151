"""Reading the stack config: from a mapping of keys (:func:`parse`) or from Pulumi (:func:`load`)."""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Mapping
from typing import Any

from pydantic import (
    ValidationError,
)

from infra.config.base import (
    LEGACY_PROVIDER_KEYS,
    NAMESPACE,
    OIDC_CLIENT_SECRET,
    PROVIDER_KEYS,
    SECRET_SETTINGS,
    SECTIONS,
    ConfigError,
    provider_key_variable,
)
from infra.config.errors import _format_value, _messages
from infra.config.stack import StackConfig
from infra.contracts import Environment


def parse(values: Mapping[str, Any], secret_keys: Collection[str] | None = None) -> StackConfig:
    """Validate the ``ai-gateway:`` namespace, given as ``{section: value}``.

    Values may be JSON strings (as the Pulumi engine passes structured config)
    or already-decoded objects. Raises :class:`ConfigError` naming every bad
    key at once.

    The secret settings (:data:`SECRET_SETTINGS`) are accepted but left out of
    the returned model; when ``secret_keys`` (the full keys the engine marks
    secret) is given, a secret setting stored in plain text is an error.
    """
    decoded: dict[str, Any] = {}
    problems = []
    for key, raw in values.items():
        if key in LEGACY_PROVIDER_KEYS:
            name = LEGACY_PROVIDER_KEYS[key]
            problems.append(
                f"{NAMESPACE}:{key}: replaced by {NAMESPACE}:{PROVIDER_KEYS}.{name}; run "
                f"`pulumi config rm {NAMESPACE}:{key}` and `pulumi config set --secret --path "
                f"'{NAMESPACE}:{PROVIDER_KEYS}.{name}' VALUE`"
            )
            continue
        if key not in SECTIONS:
            problems.append(
                f"{NAMESPACE}:{key}: unknown key; check the spelling (known keys: "
                f"{', '.join(SECTIONS)})"
            )
            continue
        if key in SECRET_SETTINGS:
            if secret_keys is not None and f"{NAMESPACE}:{key}" not in secret_keys:
                how = f"--path '{NAMESPACE}:{key}.<name>'" if key == PROVIDER_KEYS else key
                problems.append(
                    f"{NAMESPACE}:{key}: is stored in plain text in the stack file; remove it "
                    f"and run `pulumi config set --secret {how} VALUE` so it is encrypted"
                )
            elif key == PROVIDER_KEYS:
                names, bad = _provider_key_names(_decode(raw))
                problems += bad
                decoded[key] = names
            elif key == OIDC_CLIENT_SECRET:
                if not isinstance(raw, str) or not raw.strip():
                    problems.append(
                        f"{NAMESPACE}:{key}: is empty; set it with `pulumi config set --secret "
                        f"{NAMESPACE}:{key} VALUE` or remove it"
                    )
                decoded[key] = True
            continue
        decoded[key] = _decode(raw)
    env = decoded.get("environment")
    try:
        env = Environment(env) if env is not None else None
    except ValueError:
        problems.append(
            f"{NAMESPACE}:environment: {_format_value(env)} is not allowed; use one of "
            "dev, staging, prod"
        )
        env = None
    if problems:
        raise ConfigError(problems)
    try:
        return StackConfig.model_validate(decoded, context={"environment": env or Environment.DEV})
    except ValidationError as exc:
        raise ConfigError(_messages(exc)) from None


def _provider_key_names(keys: Any) -> tuple[list[str], list[str]]:
    """The names of ``providerKeys`` and the problems with it (never showing a value)."""
    where = f"{NAMESPACE}:{PROVIDER_KEYS}"
    if not isinstance(keys, Mapping) or not keys:
        return [], [
            f"{where}: is not a mapping of names to keys; set each key with `pulumi config set "
            f"--secret --path '{where}.<name>' VALUE` (for example {where}.openai)"
        ]
    names, problems = [], []
    for name, value in keys.items():
        try:
            provider_key_variable(name)
        except ValueError as exc:
            problems.append(f"{where}.{name}: {exc}")
            continue
        if not isinstance(value, str) or not value.strip():
            problems.append(
                f"{where}.{name}: is empty; set the key with `pulumi config set --secret "
                f"--path '{where}.{name}' VALUE` or remove it"
            )
            continue
        names.append(name)
    return sorted(names), problems


def _decode(raw: Any) -> Any:
    if isinstance(raw, str):
        stripped = raw.strip()
        if stripped[:1] in {"{", "["}:
            try:
                return json.loads(stripped)
            except json.JSONDecodeError:
                return raw
    return raw


def _value_of(name: str, values: Mapping[str, Any]) -> str:
    return str(values[name])


def load() -> StackConfig:
    """Read and validate the current stack's ``ai-gateway:`` config from ``pulumi.Config``.

    Call once, at the top of the program, before registering any resource.
    """
    from pulumi.runtime import config as runtime_config

    prefix = f"{NAMESPACE}:"
    values = {
        key[len(prefix) :]: value
        for key, value in runtime_config.CONFIG.get().items()
        if key.startswith(prefix)
    }
    secret_keys = {
        f"{prefix}{key}"
        for key in values
        if key in SECRET_SETTINGS and runtime_config.is_config_secret(f"{prefix}{key}")
    }
    return parse(values, secret_keys)


def secret_settings(config: StackConfig) -> dict[str, Any]:
    """The secret settings that are set, as secret ``pulumi.Output`` values.

    ``{"adminKey": Output[str], "oidcClientSecret": Output[str], "providerKeys": {name:
    Output[str]}}``; an unset admin key or OIDC client secret is absent (the program then generates one with pulumi_random),
    and ``providerKeys`` holds exactly ``config.provider_keys``. Call after
    :func:`load`, which has already refused plain-text values.
    """
    import pulumi

    settings = pulumi.Config(NAMESPACE)
    found: dict[str, Any] = {PROVIDER_KEYS: {}}
    admin_key = settings.get_secret("adminKey")
    if admin_key is not None:
        found["adminKey"] = admin_key
    if config.oidc_client_secret:
        found[OIDC_CLIENT_SECRET] = settings.require_secret(OIDC_CLIENT_SECRET)
    if config.provider_keys:
        keys = settings.require_secret_object(PROVIDER_KEYS)
        found[PROVIDER_KEYS] = {
            name: pulumi.Output.secret(keys.apply(functools.partial(_value_of, name)))
            for name in config.provider_keys
        }
    return found
