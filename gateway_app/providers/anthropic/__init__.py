"""Anthropic Messages API: translation to and from OpenAI chat completions.

``request`` extracts system/developer messages into ``system``, fills the
required ``max_tokens``, maps tools, tool calls and tool results to
``tool_use``/``tool_result`` blocks and images to image blocks; ``response``
maps content blocks, stop reasons and usage back; ``stream`` maps the Messages
stream events to OpenAI chunks including the final usage chunk; ``errors`` maps
Anthropic's error types to OpenAI-shaped errors.
"""

from gateway_app.providers.anthropic.adapter import ADAPTER

__all__ = ["ADAPTER"]
