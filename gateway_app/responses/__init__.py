"""OpenAI's Responses API (``/v1/responses``): what Codex and the OpenAI Agents SDK speak.

* :mod:`~gateway_app.responses.validation`: the body's checks (400s naming the field);
* :mod:`~gateway_app.responses.call`: one call, served natively by deployments that
  declare ``Capability.OPENAI_RESPONSES`` (OpenAI, Azure OpenAI), through chat elsewhere;
* :mod:`~gateway_app.responses.native`: the upstream's answer and typed events passed
  through, usage handed to accounting;
* :mod:`~gateway_app.responses.translation`: a Responses body as a chat body, a chat
  answer or stream as a response or its typed events; lossy features refused by name;
* :mod:`~gateway_app.responses.store`: stored responses, per team, with a lifetime
  (``previous_response_id``, ``GET``/``DELETE /v1/responses/{id}``, ``input_items``);
* :mod:`~gateway_app.responses.items`: input items and what may be replayed upstream.

docs/reference/agent-apis.md is the support matrix.
"""
