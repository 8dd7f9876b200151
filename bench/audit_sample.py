"""The governed request the audit benchmarks buffer: its event's fields after the request
id, in :func:`gateway_app.governance.audit.request_line`'s order (``request_event_json``
takes the same). Shared by ``audit_entries.py`` and ``redis_memory.py`` so both measure
the same event."""

from __future__ import annotations

REQUEST_FIELDS = (
    "key_6481b2f5426333a4",  # key_id
    "team-search",  # team_id
    "project-web",  # project_id
    None,  # customer
    "gpt-4o-mini",  # model
    "openai/gpt-4o-mini",  # deployment
    "openai",  # provider
    200,  # status
    1234,  # prompt_tokens
    321,  # completion_tokens
    0.000712,  # cost_usd
    812.345,  # latency_ms
    None,  # cache_outcome
    None,  # rejection
    "reported",  # usage_source
    None,  # detail
)
