"""The ``governance:`` section of the gateway config."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class GovernanceConfig(BaseModel):
    """Virtual keys, budgets, rate limits, audit and analytics.

    Off by default (the embedded gateway takes any client key); on when
    ``enabled: true`` or when ``AIGW_ADMIN_KEY`` is set and ``enabled`` is left unset.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool | None = Field(None, description="default: on iff AIGW_ADMIN_KEY is set")
    fail_closed: bool = Field(
        True, description="refuse requests (503) when Redis is unreachable, rather than skip limits"
    )
    default_max_output_tokens: int = Field(
        4096, ge=1, description="output bound for the budget reservation when max_tokens is unset"
    )
    customer_header: str = Field(
        "x-aigw-customer", description="header naming the end customer (else the body's `user`)"
    )
    key_refresh_s: float = Field(
        10.0,
        gt=0,
        description="full reload of keys and limits: the revocation bound if a pub/sub message is lost",
    )
    sqlite_path: str = Field(
        "aigw.sqlite3", description="embedded database when AIGW_DATABASE_URL is unset"
    )
    audit_batch: int = Field(500, ge=1, le=10000, description="audit events per database write")
    audit_interval_s: float = Field(
        0.25,
        ge=0,
        le=60,
        description="a partial batch waits this long for more events before the next read: "
        "fewer, larger database writes (events are already durable in the buffer)",
    )
    audit_claim_idle_s: float = Field(
        30.0, gt=0, description="pending audit events of a dead replica are taken over after this"
    )
    unpriced_models: Literal["refuse_at_startup", "refuse_with_budget"] = Field(
        "refuse_at_startup",
        description="a deployment with no price (neither `price` in the config nor in "
        "genai-prices): refuse_at_startup fails the start naming it and the price to set; "
        "refuse_with_budget starts and refuses its requests from keys with a budget at any "
        "level (403 model_unpriced). Never billed silently at $0",
    )
    audit_prompts: bool = Field(False, description="store prompts and completions in the audit log")
    audit_redact: list[str] = Field(
        default_factory=lambda: [
            r"sk-[A-Za-z0-9_\-]{16,}",
            r"\b\d{13,19}\b",
            r"[\w.+-]+@[\w-]+\.[\w.]+",
        ],
        description="regexes replaced by [REDACTED] in stored prompts and completions",
    )
