"""The AI gateway: an OpenAI-compatible LLM gateway (routing, failover, streaming).

Run it with ``python -m gateway_app serve`` or ``aigw serve``; see
docs/getting-started/local.md.
"""
