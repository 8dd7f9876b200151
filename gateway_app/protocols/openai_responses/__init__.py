"""OpenAI's Responses API (``POST /v1/responses``): what Codex and the Agents SDK speak.

The protocol itself; the gateway's side (one call per deployment, the store of
responses) is :mod:`gateway_app.responses`.

* :mod:`.validation`: the body's checks (400s naming the field);
* :mod:`.native`: a native upstream's answer and typed events passed through, usage
  handed to accounting, and the API's error shape (a late error is an ``error`` event);
* :mod:`.translation`: a Responses body as a chat body, a chat answer or stream as a
  response or its typed events; lossy features refused by name;
* :mod:`.items`: input items and what may be replayed upstream.
"""
