"""Deployments' prices: ``genai-prices`` (pydantic's dataset), overridden by the config.

Part of the config contract: the gateway refuses to start with unpriced
deployments when governance counts budgets (:func:`startup_refusal`), and
``aigw plan`` applies the same check to each cluster's file, so infra imports
this module (never the rest of governance). Governance prices each request's
tokens with it.

``genai-prices`` (pydantic's maintained dataset) knows the current prices of
the providers' models, including cached-input prices; a deployment's ``price``
in the config overrides it (negotiated rates, fine-tuned or self-hosted
models). Reasoning tokens are part of OpenAI's ``completion_tokens`` and billed
as output; cached prompt tokens are billed at the cache-read price, and prompt tokens
written to the cache (Anthropic's usage reports them) at the cache-write price.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from gateway_app.config import DeploymentConfig, GatewayConfig

log = logging.getLogger("gateway_app.governance")

# Gateway provider type -> genai-prices provider id.
_PROVIDER_IDS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "azure_openai": "azure",
    "bedrock": "aws",
    "vertex": "google",
}


@dataclass(frozen=True, slots=True)
class TokenPrices:
    """USD per token."""

    input: float
    output: float
    cache_read: float
    # Prompt tokens written to the provider's prompt cache (Anthropic's 1.25x); the input
    # price where the provider charges no premium (and for a price set in the config).
    cache_write: float = -1.0

    def __post_init__(self) -> None:
        if self.cache_write < 0:
            object.__setattr__(self, "cache_write", self.input)


class Tokens(NamedTuple):
    """What a response consumed, as the provider bills it.

    A named tuple, not a frozen dataclass: built once or twice per governed request, and a
    frozen dataclass's ``__init__`` (``object.__setattr__`` per field) costs ~4x a tuple's."""

    prompt: int = 0  # every prompt token, cache reads and writes included
    completion: int = 0
    cached: int = 0  # of ``prompt``: read from the provider's prompt cache
    cache_write: int = 0  # of ``prompt``: written to it

    @classmethod
    def from_usage(cls, usage: dict[str, Any] | None) -> Tokens:
        """From OpenAI's ``usage`` object, or Anthropic's (the Messages API: its
        ``input_tokens`` exclude the cache reads and writes it counts apart)."""
        if not usage:
            return cls()
        if "cache_read_input_tokens" in usage or "cache_creation_input_tokens" in usage:
            read = int(usage.get("cache_read_input_tokens") or 0)
            write = int(usage.get("cache_creation_input_tokens") or 0)
            return cls(
                prompt=int(usage.get("input_tokens") or 0) + read + write,
                completion=int(usage.get("output_tokens") or 0),
                cached=read,
                cache_write=write,
            )
        details = usage.get("prompt_tokens_details")
        # Positional fields, no {} for absent details: 0.72 -> 0.47 µs a call, and settle
        # and the access line each call it per request (bench/partial-cuts.md).
        return cls(
            int(usage.get("prompt_tokens") or usage.get("input_tokens") or 0),
            int(usage.get("completion_tokens") or usage.get("output_tokens") or 0),
            int(details.get("cached_tokens") or 0) if details else 0,
        )

    @property
    def total(self) -> int:
        return self.prompt + self.completion


class Pricing:
    """Prices per deployment, looked up once and cached."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str, str], TokenPrices] = {}
        self._warned: set[str] = set()
        self.unpriced: set[str] = set()  # deployment ids with no price anywhere

    def source(self, deployment: DeploymentConfig, provider_type: str) -> str | None:
        """Where a deployment's price comes from: ``config``, ``genai-prices`` or None."""
        self.prices(deployment, provider_type)
        if deployment.price is not None:
            return "config"
        return None if deployment.id in self.unpriced else "genai-prices"

    def prices(self, deployment: DeploymentConfig, provider_type: str) -> TokenPrices:
        """The deployment's override, else the dataset's price, else zero (logged once)."""
        key = (deployment.id, provider_type, deployment.model)
        found = self._cache.get(key)
        if found is None:
            found = self._lookup(deployment, provider_type)
            self._cache[key] = found
        return found

    def _lookup(self, deployment: DeploymentConfig, provider_type: str) -> TokenPrices:
        if deployment.price is not None:
            price = deployment.price
            return TokenPrices(
                price.input_per_mtok / 1e6,
                price.output_per_mtok / 1e6,
                price.input_per_mtok / 1e6,
            )
        from genai_prices import Usage, calc_price

        million = 1_000_000
        provider_id = _PROVIDER_IDS.get(provider_type)
        try:
            input_price = calc_price(
                Usage(input_tokens=million), deployment.model, provider_id=provider_id
            )
            output_price = calc_price(
                Usage(output_tokens=million), deployment.model, provider_id=provider_id
            )
            cached_price = calc_price(
                Usage(input_tokens=million, cache_read_tokens=million),
                deployment.model,
                provider_id=provider_id,
            )
            write_price = calc_price(
                Usage(input_tokens=million, cache_write_tokens=million),
                deployment.model,
                provider_id=provider_id,
            )
        except LookupError:
            self.unpriced.add(deployment.id)
            if deployment.id not in self._warned:
                self._warned.add(deployment.id)
                log.warning(
                    "no price for deployment %s (model %r); set models.<name>.deployments[].price",
                    deployment.id,
                    deployment.model,
                )
            return TokenPrices(0.0, 0.0, 0.0)
        return TokenPrices(
            float(input_price.total_price) / million,
            float(output_price.total_price) / million,
            float(cached_price.total_price) / million,
            float(write_price.total_price) / million,
        )

    @staticmethod
    def cost(prices: TokenPrices, tokens: Tokens) -> float:
        """USD for ``tokens`` at ``prices``."""
        # The caps as comparisons, not min(): 0.48 -> 0.25 µs a call (bench/partial-cuts.md).
        prompt, completion, cached, written = tokens
        if cached > prompt:
            cached = prompt
        if written > prompt - cached:
            written = prompt - cached
        return (
            (prompt - cached - written) * prices.input
            + cached * prices.cache_read
            + written * prices.cache_write
            + completion * prices.output
        )


@dataclass(frozen=True, slots=True)
class UnpricedDeployment:
    """A deployment with no price: ``models.<model>.deployments[<index>]`` of a config."""

    model: str
    index: int
    deployment_id: str
    upstream_model: str

    def __str__(self) -> str:
        return (
            f"models.{self.model}.deployments[{self.index}] ({self.deployment_id}, upstream "
            f"model {self.upstream_model!r})"
        )


def unpriced_deployments(
    config: GatewayConfig, pricing: Pricing | None = None
) -> list[UnpricedDeployment]:
    """Each deployment without a price (neither ``price`` in the config nor in genai-prices)."""
    pricing = pricing or Pricing()
    found = []
    for name, model in config.models.items():
        for index, deployment in enumerate(model.deployments):
            provider_type = config.providers[deployment.provider].type
            if pricing.source(deployment, provider_type) is None:
                found.append(UnpricedDeployment(name, index, deployment.id, deployment.model))
    return found


def startup_refusal(
    config: GatewayConfig, *, governance_on: bool, pricing: Pricing | None = None
) -> list[UnpricedDeployment]:
    """The unpriced deployments the gateway refuses to start with (empty: it starts).

    With governance on and ``governance.unpriced_models: refuse_at_startup`` (the
    default), each of them would count $0 against every budget. ``serve``, the
    governance start and ``aigw plan`` (on each cluster's file, so a stack whose
    pod would refuse to start is never deployed) all apply this one check.
    """
    if not governance_on or config.governance.unpriced_models != "refuse_at_startup":
        return []
    return unpriced_deployments(config, pricing)


def unpriced_error(found: Sequence[UnpricedDeployment]) -> str:
    """The start-up error for unpriced deployments: each one and how to price it."""
    listed = "\n".join(f"  {entry}" for entry in found)
    return (
        "governance is on, and these deployments have no price (genai-prices does not know "
        f"them), so their requests would count $0 against every budget:\n{listed}\n"
        "Set each one's `price: {input_per_mtok: ..., output_per_mtok: ...}` (USD per million "
        "tokens; 0 for a model that is truly free), or set governance.unpriced_models: "
        "refuse_with_budget to start anyway and refuse their requests from keys with a budget."
    )
