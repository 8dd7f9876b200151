"""Anthropic's Messages API (``POST /v1/messages``, ``/v1/messages/count_tokens``).

Claude Code and the ``anthropic`` SDKs speak it. A deployment whose adapter
declares ``Capability.ANTHROPIC_MESSAGES`` (Anthropic, Claude on Bedrock, Claude
on Vertex) receives the request natively: the client's body with only the model
id replaced, ``anthropic-version``/``anthropic-beta`` forwarded, and its stream
relayed event by event. Any other chat deployment gets it translated to chat
completions and back (:mod:`.translation`), and a feature the translation would
lose is refused with a 400 naming the feature and the model.

* :mod:`.validation`: the body's checks (a 400 naming the field);
* :mod:`.errors`: Anthropic's error shape, in bodies and in streams;
* :mod:`.stream`: the native relay, and chat chunks -> Messages events;
* :mod:`.translation`: Messages <-> chat completions, and the token estimate;
* :mod:`.upstream`: per deployment, the upstream request and how to read its answer.
"""

from gateway_app.protocols.anthropic_messages.errors import ANTHROPIC_ERRORS
from gateway_app.protocols.anthropic_messages.validation import (
    validate_count_tokens,
    validate_messages,
)

__all__ = ["ANTHROPIC_ERRORS", "validate_count_tokens", "validate_messages"]
