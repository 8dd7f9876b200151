"""OpenAI's Responses API (``/v1/responses``), the gateway's side: what Codex and the
OpenAI Agents SDK speak. The wire protocol itself (validation, typed events, the chat
translation, items) is :mod:`gateway_app.protocols.openai_responses`.

* :mod:`~gateway_app.responses.call`: one call, served natively by deployments that
  declare ``Capability.OPENAI_RESPONSES`` (OpenAI, Azure OpenAI), through chat elsewhere;
* :mod:`~gateway_app.responses.store`: stored responses, per team, with a lifetime
  (``previous_response_id``, ``GET``/``DELETE /v1/responses/{id}``, ``input_items``).

docs/reference/agent-apis.md is the support matrix.
"""
