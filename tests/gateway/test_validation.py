"""Bad input: OpenAI-shaped 400s naming the field, 413 before the body is read whole."""

from __future__ import annotations

import http.client
import json
from typing import Any

import httpx
import openai
import pytest

from tests.gateway.conftest import Running


def _post(
    running: Running, path: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    host, port = running.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request(
        "POST", path, body=body, headers={"content-type": "application/json", **(headers or {})}
    )
    response = connection.getresponse()
    payload = json.loads(response.read())
    connection.close()
    return response.status, payload


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model", "Missing required parameter"),
        (
            {"model": "nope", "messages": [{"role": "user", "content": "x"}]},
            "model",
            "does not exist",
        ),
        ({"model": 5, "messages": []}, "model", "expected a string"),
        ({"model": "gpt-4o-mini", "messages": []}, "messages", "empty array"),
        ({"model": "gpt-4o-mini", "messages": "hi"}, "messages", "expected an array"),
        (
            {"model": "gpt-4o-mini", "messages": [{"role": "wizard", "content": "x"}]},
            "messages[0].role",
            "wizard",
        ),
        (
            {"model": "gpt-4o-mini", "messages": [{"role": "user"}]},
            "messages[0].content",
            "Missing",
        ),
        (
            {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": [{"type": "text", "text": 3}]}],
            },
            "messages[0].content[0].text",
            "expected a string",
        ),
        (
            {"model": "gpt-4o-mini", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
            "Missing",
        ),
        (
            {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "x"}],
                "temperature": "hot",
            },
            "temperature",
            "expected a decimal",
        ),
        (
            {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "x"}],
                "temperature": 3,
            },
            "temperature",
            "out of range",
        ),
        (
            {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "x"}],
                "max_tokens": 0,
            },
            "max_tokens",
            "minimum",
        ),
        (
            {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "x"}],
                "max_tokens": True,
            },
            "max_tokens",
            "expected an integer",
        ),
        (
            {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "x"}],
                "stream": "yes",
            },
            "stream",
            "expected a boolean",
        ),
        (
            {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "x"}],
                "stream_options": {"include_usage": True},
            },
            "stream_options",
            "only allowed",
        ),
        (
            {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "x"}],
                "tool_choice": "sometimes",
            },
            "tool_choice",
            "sometimes",
        ),
        (
            {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "function", "function": {}}],
            },
            "tools[0].function.name",
            "Missing",
        ),
        (
            {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "x"}],
                "response_format": {"type": "xml"},
            },
            "response_format.type",
            "xml",
        ),
        (
            {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "x"}],
                "stop": ["a", "b", "c", "d", "e"],
            },
            "stop",
            "4 strings",
        ),
        (
            {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "x"}],
                "metadata": {"a": 1},
            },
            "metadata.a",
            "expected a string",
        ),
    ],
)
def test_bad_fields_get_400_naming_the_field(
    standard: Running, body: dict[str, Any], param: str, fragment: str
) -> None:
    status, payload = _post(standard, "/v1/chat/completions", json.dumps(body).encode())
    assert status == 400
    assert payload["error"]["param"] == param
    assert payload["error"]["type"] == "invalid_request_error"
    assert fragment in payload["error"]["message"]


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b"\xff\xfe"])
def test_malformed_json_is_400(standard: Running, raw: bytes) -> None:
    status, payload = _post(standard, "/v1/chat/completions", raw)
    assert status == 400 and payload["error"]["code"] == "invalid_json"


def test_sdk_raises_bad_request_with_param(standard: Running) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        standard.client().chat.completions.create(model="gpt-4o-mini", messages=[])
    assert raised.value.param == "messages"


def test_oversized_body_is_413_from_content_length(gateway: Any) -> None:
    with gateway(
        {"m": {"deployments": [{"provider": "openai", "model": "x"}]}},
        server={"max_body_bytes": 2048},
    ) as gw:
        # Only the headers and a little of the body are sent: the gateway answers from Content-Length.
        host, port = gw.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.putrequest("POST", "/v1/chat/completions")
        connection.putheader("content-type", "application/json")
        connection.putheader("content-length", str(50 * 1024 * 1024))
        connection.endheaders(b"{")
        response = connection.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["error"]["code"] == "request_too_large"
        connection.close()


def test_oversized_chunked_body_is_413(gateway: Any) -> None:
    with gateway(
        {"m": {"deployments": [{"provider": "openai", "model": "x"}]}},
        server={"max_body_bytes": 2048},
    ) as gw:
        host, port = gw.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        body = iter([b'{"model": "m", "messages": "' + b"x" * 1500, b"y" * 1500 + b'"}'])
        connection.request(
            "POST",
            "/v1/chat/completions",
            body=body,
            headers={"content-type": "application/json"},
            encode_chunked=True,
        )
        response = connection.getresponse()
        assert response.status == 413
        connection.close()


def test_unknown_path_and_method(standard: Running) -> None:
    status, payload = _post(standard, "/v1/nothing", b"{}")
    assert status == 404 and payload["error"]["code"] == "unknown_url"
    status, payload = _post(standard, "/v1/models", b"{}")
    assert status == 405


def test_worker_survives_garbage_then_serves(standard: Running) -> None:
    for raw in (
        b"null",
        b'{"model": null, "messages": null}',
        b'{"model": "gpt-4o-mini", "messages": [null]}',
    ):
        status, _ = _post(standard, "/v1/chat/completions", raw)
        assert status == 400
    assert (
        standard.client()
        .chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "ok"}])
        .choices
    )


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b"99999999999999999999999", "99999999999999991611392"),  # parsed as a float
        (b"18446744073709551615", "18446744073709551615"),  # the largest u64
        (b"4294967296", "4294967296"),
    ],
)
def test_a_huge_integer_max_tokens_is_named_too_large(
    standard: Running, raw: bytes, shown: str
) -> None:
    body = b'{"model": "gpt-4o-mini", "max_tokens": %s, "messages": [{"role": "user", "content": "x"}]}'
    response = httpx.post(
        standard.url + "/v1/chat/completions",
        content=body % raw,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "max_tokens" and error["code"] == "invalid_value"
    assert "above the maximum 2147483647" in error["message"] and shown in error["message"]
    assert "expected an integer" not in error["message"]
