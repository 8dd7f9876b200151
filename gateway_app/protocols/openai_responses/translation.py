"""The Responses API for providers that serve only chat completions (Anthropic, Bedrock,
Vertex): a Responses body becomes a chat body, the chat answer (or stream) a response.

The adapters already translate chat to their own formats, so this is one step in
front of them. What chat cannot carry is refused with a 400 naming the field, the
feature and the model, never dropped: built-in tools (web search, file search,
code interpreter, computer use, MCP, image generation, custom tools), hosted
prompts, file inputs, reasoning effort (no chat adapter here maps it), log
probabilities, automatic truncation, tool-call limits. Reasoning items an earlier
OpenAI turn left in the conversation are the model's private state: they are not
sent to another provider.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from gateway_app.errors import GatewayError, invalid
from gateway_app.protocols.openai_responses.items import input_items, new_id
from gateway_app.protocols.openai_responses.native import ResponseResult, event_frame
from gateway_app.providers.base import ChatResult, StreamState, StreamTranslator

# Request fields chat cannot carry, with what to do instead.
_REFUSED_FIELDS = {
    "prompt": "hosted prompt templates live at OpenAI; send the prompt's text as input",
    "top_logprobs": "log probabilities are not available through chat translation",
    "max_tool_calls": "a limit on built-in tool calls has no chat equivalent",
}
# Fields the gateway answers itself or that change nothing for a chat upstream.
_KEPT_BY_THE_GATEWAY = frozenset(
    {
        "model",
        "input",
        "instructions",
        "stream",
        "store",
        "metadata",
        "include",  # asks for extra output (encrypted reasoning...) this upstream has none of
        "service_tier",
        "stream_options",
        "truncation",
        "background",
        "previous_response_id",
        "safety_identifier",
        "prompt_cache_key",
    }
)
# Fields chat_body translates.
_TRANSLATED = frozenset(
    {
        "text",
        "reasoning",
        "tools",
        "tool_choice",
        "max_output_tokens",
        "temperature",
        "top_p",
        "parallel_tool_calls",
        "user",
        *_REFUSED_FIELDS,
    }
)
_FINISH = {
    "length": ("incomplete", "max_output_tokens"),
    "content_filter": ("incomplete", "content_filter"),
}
_ECHOED = (
    "instructions",
    "max_output_tokens",
    "parallel_tool_calls",
    "temperature",
    "top_p",
    "tool_choice",
    "tools",
    "user",
)


class Lossy:
    """Builds the 400 for a feature the translation would lose."""

    def __init__(self, model: str, provider: str) -> None:
        self.model = model
        self.provider = provider

    def __call__(self, param: str, feature: str, hint: str = "") -> GatewayError:
        return invalid(
            param,
            f"{feature} is not available for model '{self.model}': its provider "
            f"({self.provider}) serves the Responses API through chat completions, which "
            f"cannot carry it{'; ' + hint if hint else ''}.",
            "unsupported_feature",
        )


def chat_body(body: dict[str, Any], model: str, provider: str) -> dict[str, Any]:
    """The chat-completions body for a Responses ``body`` (its ``input`` the whole
    conversation); a 400 naming the field, the feature and the model where lossy."""
    lossy = Lossy(model, provider)
    for name, hint in _REFUSED_FIELDS.items():
        if body.get(name) is not None:
            raise lossy(name, f"'{name}'", hint)
    if body.get("truncation") == "auto":
        raise lossy("truncation", "'truncation: auto'", "send 'disabled' or leave it out")
    effort = (body.get("reasoning") or {}).get("effort")
    if effort is not None:
        raise lossy("reasoning.effort", f"Reasoning effort ('{effort}')", "leave 'reasoning' out")
    chat: dict[str, Any] = {"model": body["model"]}
    messages: list[dict[str, Any]] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    for index, item in enumerate(input_items(body)):
        _add_item(messages, item, f"input[{index}]", lossy)
    chat["messages"] = messages
    if body.get("tools"):
        chat["tools"] = [_tool(tool, f"tools[{i}]", lossy) for i, tool in enumerate(body["tools"])]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        if choice.get("type") != "function":
            raise lossy("tool_choice.type", f"Tool choice '{choice.get('type')}'")
        choice = {"type": "function", "function": {"name": choice.get("name")}}
    if choice is not None:
        chat["tool_choice"] = choice
    form = (body.get("text") or {}).get("format") or {}
    if form.get("type") == "json_object":
        chat["response_format"] = {"type": "json_object"}
    elif form.get("type") == "json_schema":
        schema = {k: form[k] for k in ("name", "schema", "strict", "description") if k in form}
        chat["response_format"] = {"type": "json_schema", "json_schema": schema}
    if body.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = body["max_output_tokens"]
    for name in ("temperature", "top_p", "parallel_tool_calls", "user"):
        if body.get(name) is not None:
            chat[name] = body[name]
    for name in body.keys() - _KEPT_BY_THE_GATEWAY - _TRANSLATED:
        if body[name] is not None:  # a field this translation does not know: not dropped
            raise lossy(name, f"'{name}'")
    return chat


def _add_item(
    messages: list[dict[str, Any]], item: dict[str, Any], where: str, lossy: Lossy
) -> None:
    kind = item.get("type", "message")
    if kind == "message":
        role = item["role"]
        content = item.get("content")
        if isinstance(content, list):
            content = [
                _part(part, f"{where}.content[{i}]", lossy) for i, part in enumerate(content)
            ]
            if role != "user":  # chat takes only text for these roles
                content = "".join(part["text"] for part in content if part["type"] == "text")
        messages.append({"role": role, "content": content})
    elif kind == "function_call":
        call = {
            "id": item["call_id"],
            "type": "function",
            "function": {"name": item["name"], "arguments": item["arguments"]},
        }
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item["output"]
        if isinstance(output, list):
            output = "".join(
                _part(part, f"{where}.output[{i}]", lossy).get("text", "")
                for i, part in enumerate(output)
            )
        messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": output})
    elif kind != "reasoning":
        raise lossy(f"{where}.type", f"The input item type '{kind}'")


def _part(part: dict[str, Any], where: str, lossy: Lossy) -> dict[str, Any]:
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": part.get("text", "")}
    if kind == "refusal":
        return {"type": "text", "text": part.get("refusal", "")}
    if kind == "input_image" and isinstance(part.get("image_url"), str):
        image: dict[str, Any] = {"url": part["image_url"]}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_image":
        raise lossy(f"{where}.file_id", "An image by file id", "send it as a URL or a data URL")
    raise lossy(f"{where}.type", f"The content part type '{kind}'")


def _tool(tool: dict[str, Any], where: str, lossy: Lossy) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise lossy(f"{where}.type", f"The tool type '{tool.get('type')}'")
    function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool}
    return {"type": "function", "function": function}


# ---------------------------------------------------------------------- answers


def responses_usage(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    """A chat ``usage`` in the Responses API's shape."""
    if not usage:
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": int(cached)},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": int(reasoning)},
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
    }


def message_item(text: str, item_id: str | None = None, status: str = "completed") -> Any:
    """An assistant output message holding ``text``."""
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {
        "id": item_id or new_id("msg"),
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [part] if status == "completed" else [],
    }


def call_item(call_id: str, name: str, arguments: str, item_id: str | None = None) -> Any:
    """A function call output item."""
    return {
        "id": item_id or new_id("fc"),
        "type": "function_call",
        "status": "completed",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


class ResponseShell:
    """The response object's fields that come from the request, not the answer."""

    def __init__(self, body: dict[str, Any], client_fields: dict[str, Any]) -> None:
        self.id = new_id("resp")
        self.created_at = int(time.time())
        self.fields = {name: body.get(name) for name in _ECHOED}
        self.fields.update(
            text=body.get("text") or {"format": {"type": "text"}},
            reasoning={"effort": None, "summary": None},
            metadata=body.get("metadata") or {},
            truncation="disabled",
            background=False,
            tools=body.get("tools") or [],
            tool_choice=body.get("tool_choice") or "auto",
            parallel_tool_calls=body.get("parallel_tool_calls", True),
            **client_fields,
        )

    def response(
        self,
        model: str,
        status: str,
        output: list[Any],
        usage: dict[str, Any] | None,
        finish: str | None = None,
    ) -> dict[str, Any]:
        """The response object."""
        status, reason = _FINISH.get(finish or "", (status, None))
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": None,
            "incomplete_details": {"reason": reason} if reason else None,
            "model": model,
            "output": output,
            "usage": responses_usage(usage),
            **self.fields,
        }


def response_of(chat: ChatResult, shell: ResponseShell) -> ResponseResult:
    """The response object for a complete chat answer."""
    data = chat.data
    choice = (data.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    output: list[Any] = []
    if message.get("content"):
        output.append(message_item(message["content"]))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        output.append(call_item(call["id"], function["name"], function.get("arguments", "")))
    response = shell.response(
        str(data.get("model")), "completed", output, data.get("usage"), choice.get("finish_reason")
    )
    return ResponseResult(orjson.dumps(response), response)


class ChatToResponsesStream:
    """A chat stream (an adapter's translator's frames) as the Responses API's typed events."""

    def __init__(self, chat: StreamTranslator, shell: ResponseShell) -> None:
        self.chat = chat
        self.shell = shell
        self.state = StreamState()
        self._sequence = 0
        self._model = ""
        self._started = False
        self._output: list[Any] = []  # completed items
        self._open: dict[str, Any] | None = None  # the item being streamed
        self._calls: dict[int, dict[str, Any]] = {}  # by the chat tool call index
        self._finish: str | None = None

    def _event(self, kind: str, **payload: Any) -> bytes:
        data = {"type": kind, "sequence_number": self._sequence, **payload}
        self._sequence += 1
        return event_frame(kind.encode(), orjson.dumps(data))

    def feed(self, event: bytes | None, data: bytes) -> list[bytes]:
        """Typed events for one upstream event."""
        return self._translate(self.chat.feed(event, data))

    def done(self) -> bool:
        """Whether the upstream stream ended."""
        return self.chat.done()

    def finish(self) -> list[bytes]:
        """The last items' ``done`` events and ``response.completed``."""
        frames = self._translate(self.chat.finish())
        frames.extend(self._close())
        response = self.shell.response(
            self._model, "completed", self._output, self.state.usage, self._finish
        )
        self.state.extra["response"] = response
        self.state.finish_reason = response["status"]
        frames.append(self._event(f"response.{response['status']}", response=response))
        return frames

    def _translate(self, chat_frames: list[bytes]) -> list[bytes]:
        frames: list[bytes] = []
        for frame in chat_frames:
            payload = frame[len(b"data: ") :].strip()
            if payload == b"[DONE]":
                continue
            chunk = orjson.loads(payload)
            self._model = chunk.get("model") or self._model
            if not self._started:
                self._started = True
                pending = self.shell.response(self._model, "in_progress", [], None)
                frames.append(self._event("response.created", response=pending))
                frames.append(self._event("response.in_progress", response=pending))
            if chunk.get("usage"):
                self.state.usage = chunk["usage"]
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    frames.extend(self._text(delta["content"]))
                for call in delta.get("tool_calls") or []:
                    frames.extend(self._call(call))
                if choice.get("finish_reason"):
                    self._finish = choice["finish_reason"]
            self.state.chunks += 1
        return frames

    def _where(self) -> dict[str, Any]:
        assert self._open is not None
        return {"item_id": self._open["id"], "output_index": len(self._output)}

    def _text(self, text: str) -> list[bytes]:
        frames: list[bytes] = []
        if self._open is None or self._open["type"] != "message":
            frames.extend(self._close())
            self._open = message_item("", status="in_progress")
            self._open["text"] = ""
            item = {k: v for k, v in self._open.items() if k != "text"}
            frames.append(
                self._event("response.output_item.added", output_index=len(self._output), item=item)
            )
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            frames.append(
                self._event(
                    "response.content_part.added", **self._where(), content_index=0, part=part
                )
            )
        self._open["text"] += text
        frames.append(
            self._event(
                "response.output_text.delta",
                **self._where(),
                content_index=0,
                delta=text,
                logprobs=[],
            )
        )
        return frames

    def _call(self, call: dict[str, Any]) -> list[bytes]:
        frames: list[bytes] = []
        index = int(call.get("index", 0))
        function = call.get("function") or {}
        if index not in self._calls:
            frames.extend(self._close())
            item = call_item(call.get("id") or new_id("call"), function.get("name", ""), "")
            item["status"] = "in_progress"
            self._calls[index] = self._open = item
            frames.append(
                self._event(
                    "response.output_item.added", output_index=len(self._output), item=dict(item)
                )
            )
        arguments = function.get("arguments")
        if arguments:
            self._calls[index]["arguments"] += arguments
            frames.append(
                self._event(
                    "response.function_call_arguments.delta", **self._where(), delta=arguments
                )
            )
        return frames

    def _close(self) -> list[bytes]:
        item, self._open = self._open, None
        if item is None:
            return []
        frames: list[bytes] = []
        where = {"item_id": item["id"], "output_index": len(self._output)}
        if item["type"] == "message":
            text = item.pop("text")
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            frames.append(
                self._event(
                    "response.output_text.done", **where, content_index=0, text=text, logprobs=[]
                )
            )
            frames.append(
                self._event("response.content_part.done", **where, content_index=0, part=part)
            )
            item["content"] = [part]
        else:
            frames.append(
                self._event(
                    "response.function_call_arguments.done",
                    **where,
                    name=item["name"],
                    arguments=item["arguments"],
                )
            )
        item["status"] = "completed"
        frames.append(
            self._event("response.output_item.done", output_index=len(self._output), item=item)
        )
        self._output.append(item)
        return frames
