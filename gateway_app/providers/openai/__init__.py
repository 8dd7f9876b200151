"""OpenAI (and any OpenAI-compatible upstream): the unified shape is its own.

Requests pass through with the upstream model name substituted; responses and
stream chunks are forwarded byte for byte. Streams always ask the upstream for
usage (``stream_options.include_usage``) so the gateway can account for them;
the usage chunk reaches the client only if it asked for it.
"""

from gateway_app.providers.openai.adapter import ADAPTER

__all__ = ["ADAPTER"]
