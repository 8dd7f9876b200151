"""The ``governance:`` section of the gateway config."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PeerConfig(BaseModel):
    """One cloud of the global governance plane, as the others reach and trust it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(
        description="base URL of the cloud's internal endpoint (`/internal/v1/...`), e.g. "
        "https://governance.aws.internal.example.com:8443"
    )
    issuer: str = Field(
        description="OIDC issuer of the cloud's cluster: the `iss` of its gateways' tokens"
    )
    subject: str = Field(
        "system:serviceaccount:aigw:gateway",
        description="the `sub` of its gateways' tokens (their Kubernetes ServiceAccount)",
    )
    jwks: list[dict[str, Any]] | None = Field(
        None,
        description="the issuer's public signing keys (JWKs), pinned; unset: read from the "
        "issuer's discovery document (`jwks_uri`), cached and re-read on an unknown `kid`",
    )
    ca_file: str | None = Field(
        None, description="CA bundle for the endpoint's TLS certificate (default: system CAs)"
    )


class GlobalConfig(BaseModel):
    """One governance plane across clouds (docs/decisions/0001-global-governance-plane.md).

    The home cloud owns every write of keys, limits and projects; the other clouds
    follow its change feed over the internal channel and forward admin calls to it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    cloud: str | None = Field(
        None, description="this cloud's name; unset: AIGW_CLOUD (set by the deployment)"
    )
    home: str = Field(description="the cloud that owns writes (one of `peers`)")
    peers: dict[str, PeerConfig] = Field(
        description="every cloud of the plane by name (this cloud's own entry is ignored)"
    )
    port: int = Field(
        8443,
        ge=1,
        le=65535,
        description="the internal listener's port: `/internal/v1/...` is served there only "
        "(404 on the public port, and the public API is 404 there), so the channel's load "
        "balancer and NetworkPolicy can admit it alone",
    )
    audience: str = Field(
        "aigw-governance", description="`aud` of the tokens on the internal channel"
    )
    token_file: str = Field(
        "/var/run/secrets/aigw-governance/token",
        description="this gateway's own token (a projected ServiceAccount token with the "
        "audience above, rotated by the kubelet): re-read whenever it changes",
    )
    epoch: int = Field(
        1, ge=1, description="the home's generation: raised when a follower is promoted"
    )
    heartbeat_s: float = Field(1.0, gt=0, le=10, description="feed heartbeat interval")
    dead_after_s: float = Field(
        3.0, gt=0, le=60, description="a feed silent this long is reconnected"
    )
    read_your_writes_s: float = Field(
        2.0,
        ge=0,
        le=30,
        description="a forwarded write waits at most this long for its change to apply "
        "locally before the answer is relayed",
    )
    forward_timeout_s: float = Field(
        10.0,
        gt=0,
        le=120,
        description="an admin call forwarded to the home, end to end (analytics and the "
        "audit search wait at least the home's `admin_query_timeout_s` + 5 s)",
    )

    lease_fraction: float = Field(
        0.05,
        gt=0,
        le=1,
        description="the largest lease of a budget one cloud is granted at a time, as a "
        "share of the budget: what may sit unspent in a cloud (underuse, never overspend)",
    )
    lease_cover_s: float = Field(
        10.0, gt=0, le=600, description="a lease covers this much of the cloud's recent spend"
    )
    lease_wait_s: float = Field(
        0.25,
        ge=0,
        le=5,
        description="a request finding its cloud's lease spent waits this long for an "
        "urgent renewal before its 429",
    )
    lease_tick_s: float = Field(
        1.0, gt=0, le=30, description="every cloud reports its spend and renews leases this often"
    )

    partition_overdraft_leases: int = Field(
        0,
        ge=0,
        le=20,
        description="opt in (k >= 1): a cloud whose lease renewals have failed for two "
        "ticks may spend up to k leases (k x lease_fraction of a budget) beyond what the "
        "home granted it, once per budget and period; reported on heal. Overspend is then "
        "at most N x k x lease_fraction of a budget (N clouds). 0: never overspend",
    )
    rate_share_floor: float = Field(
        0.1,
        ge=0,
        le=0.5,
        description="the share of every RPM/TPM limit each cloud always holds: what it "
        "enforces before it has heard from the home and once its share has expired in a "
        "partition. The home moves the rest (1 - N x floor) between clouds by demand; N x "
        "floor must be at most 1",
    )
    rate_share_lease_s: float = Field(
        30.0,
        gt=0,
        le=300,
        description="a cloud keeps a share of a rate limit this long after the sending of "
        "its last renewal the home answered, then falls back to the floor; the home "
        "reassigns a silent cloud's share after this plus two windows (120 s) and 5 s",
    )

    audit_ship_s: float = Field(
        1.0, gt=0, le=60, description="a follower ships its new audit events to the home this often"
    )
    audit_ship_batch: int = Field(
        2000,
        ge=1,
        le=5000,
        description="audit events per shipped batch (cut short at 8 MiB, half the internal "
        "endpoint's body limit)",
    )

    @model_validator(mode="after")
    def _home_is_a_peer(self) -> GlobalConfig:
        if self.home not in self.peers:
            raise ValueError(
                f"home {self.home!r} is not among peers {sorted(self.peers)}: add it to "
                "`peers` (every cloud of the plane, the home included)"
            )
        if self.cloud is not None and self.cloud not in self.peers:
            raise ValueError(f"cloud {self.cloud!r} is not among peers {sorted(self.peers)}")
        if self.rate_share_floor * len(self.peers) > 1:
            raise ValueError(
                f"rate_share_floor {self.rate_share_floor} x {len(self.peers)} clouds is more "
                f"than the whole of a limit: set it to at most {1 / len(self.peers):.3f}"
            )
        return self


class AdmissionConfig(BaseModel):
    """Replica-local admission leases (docs/explanation/governance.md): each replica
    reserves chunks of a limit's headroom in Redis and admits requests from them without
    a round trip. Never more than the limit in all (a chunk is a reservation); what one
    replica holds unused is refused elsewhere until it is returned (underuse)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        True, description="admit from local chunks (false: one Redis round trip per request)"
    )
    share: float = Field(
        0.05,
        gt=0,
        le=0.5,
        description="a chunk takes at most this share of the headroom a replica last saw: "
        "near a limit (headroom under 1/share + 1 requests: 21 by default) every request takes the exact path",
    )
    max_requests: int = Field(
        128,
        ge=2,
        le=10_000,
        description="a chunk holds at most this many requests' worth (the request's own "
        "amount times this): one round trip per this many requests far from the limits",
    )
    refill_at: float = Field(
        0.25,
        ge=0,
        lt=1,
        description="a chunk left with less than this share of what it held after its last "
        "grant is topped up ahead, in the background (no request waits for that round trip); "
        "0: refilled only when a request finds it short, and the requests meanwhile wait",
    )
    hold_s: float = Field(
        1.0,
        gt=0,
        le=60,
        description="a chunk unused this long goes back to Redis (and the headroom a replica "
        "saw is trusted this long); a rate limit's chunk also goes back when its minute ends",
    )


class GovernanceConfig(BaseModel):
    """Virtual keys, budgets, rate limits, audit and analytics.

    Off by default (the embedded gateway takes any client key); on when
    ``enabled: true`` or when ``AIGW_ADMIN_KEY`` is set and ``enabled`` is left unset.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

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
    audit_batch: int = Field(
        50,
        ge=1,
        le=10000,
        description="audit events per database write, at most (a write takes whole audit "
        "stream entries: a batcher flush of more events is one write): larger batches cut "
        "PostgreSQL's transactions (50: up to ~25 per 1,000 requests/s; 500: ~2-3) and "
        "lengthen the gateway's latency tail (added p99 at one connection ~0.8-1.1 ms at "
        "50, ~1.8-2.4 ms at 500)",
    )
    audit_interval_s: float = Field(
        0.25,
        ge=0,
        le=60,
        description="a partial batch waits this long for more events before the next read: "
        "fewer, larger database writes (events are already durable in the buffer)",
    )
    admin_query_timeout_s: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="the admin API's analytics and audit search run on their own database "
        "connection and a query of theirs is cancelled after this long (PostgreSQL "
        "`statement_timeout`; SQLite interrupted), answered 503 `admin_query_timeout`: a "
        "range that reads billions of raw audit rows (today at 50,000 requests/s) must not "
        "hold the database",
    )
    audit_retention_days: int | None = Field(
        None,
        ge=1,
        le=36500,
        description="keep audit events this many days before today, then drop them "
        "(PostgreSQL: whole day partitions, by `audit-maintain`; SQLite: deleted by the "
        "gateway hourly); unset: keep every event",
    )
    audit_claim_idle_s: float = Field(
        30.0, gt=0, description="pending audit events of a dead replica are taken over after this"
    )
    settle_interval_s: float = Field(
        0.02,
        gt=0,
        le=1,
        description="(Redis) settlements and audit events are written in one pipeline per "
        "this interval (or per 256 events): a crash loses at most this much of a replica's "
        "events; each flush costs the replica ~75 CPU µs however few it carries",
    )
    unpriced_models: Literal["refuse_at_startup", "refuse_with_budget"] = Field(
        "refuse_at_startup",
        description="a deployment with no price (neither `price` in the config nor in "
        "genai-prices): refuse_at_startup fails the start naming it and the price to set; "
        "refuse_with_budget starts and refuses its requests from keys with a budget at any "
        "level (403 model_unpriced). Never billed silently at $0",
    )
    admission: AdmissionConfig = Field(
        default_factory=AdmissionConfig,
        description="replica-local admission leases: most requests make no Redis round trip",
    )
    global_: GlobalConfig | None = Field(
        None,
        alias="global",
        description="one governance plane across clouds: a home cloud owns writes, the "
        "others follow its change feed (unset: this deployment is its own island)",
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

    def active(self, admin_key_set: bool) -> bool:
        """Whether governance runs: ``enabled``, else iff an admin key (AIGW_ADMIN_KEY) is set."""
        return self.enabled if self.enabled is not None else admin_key_set
