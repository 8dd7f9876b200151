"""Azure OpenAI: fake fidelity (openai.AzureOpenAI), URLs, auth (api-key, Entra), streams, errors."""

from __future__ import annotations

from typing import Any

import openai
import orjson
import pytest

from gateway_app.credentials import cache
from tests.fakes import error, ok
from tests.fakes.azure import FakeAzureOpenAI
from tests.fakes.bedrock import FakeBedrock
from tests.gateway.conftest import serve
from tests.gateway.providers.test_bedrock import MODEL_ID

API_VERSION = "2024-10-21"


def azure_client(fake: FakeAzureOpenAI, **auth: Any) -> openai.AzureOpenAI:
    auth = auth or {"api_key": fake.api_key}
    return openai.AzureOpenAI(
        azure_endpoint=fake.url, api_version=API_VERSION, max_retries=0, **auth
    )


# ------------------------------------------------------------ fake fidelity (AzureOpenAI)


def test_azure_sdk_parses_the_fakes_responses_streams_and_embeddings(
    fake_azure: FakeAzureOpenAI,
) -> None:
    client = azure_client(fake_azure)
    reply = client.chat.completions.create(
        model="my-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == "echo: hi"
    chunks = list(
        client.chat.completions.create(
            model="my-4o-mini", messages=[{"role": "user", "content": "hello"}], stream=True
        )
    )
    assert chunks[0].choices == []  # Azure's prompt-filter chunk
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: hello"
    vectors = client.embeddings.create(model="my-embedding", input=["a", "b"])
    assert len(vectors.data) == 2
    assert fake_azure.requests[0]["path"] == "/openai/deployments/my-4o-mini/chat/completions"
    assert fake_azure.requests[0]["query"] == {"api-version": API_VERSION}


def test_azure_sdk_sees_content_filter_and_auth_errors(fake_azure: FakeAzureOpenAI) -> None:
    fake_azure.script(error(400, error_type="content_filter"))
    with pytest.raises(openai.BadRequestError) as caught:
        azure_client(fake_azure).chat.completions.create(
            model="d", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.code == "content_filter"
    with pytest.raises(openai.AuthenticationError):
        azure_client(fake_azure, api_key="wrong").chat.completions.create(
            model="d", messages=[{"role": "user", "content": "x"}]
        )


def test_azure_sdk_accepts_a_token_from_the_fake_entra(fake_azure: FakeAzureOpenAI) -> None:
    import httpx

    token = httpx.post(
        fake_azure.url + "/tenant-1/oauth2/v2.0/token",
        data={
            "client_id": fake_azure.client_id,
            "scope": "https://cognitiveservices.azure.com/.default",
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": fake_azure.assertion,
        },
    ).json()["access_token"]
    reply = azure_client(fake_azure, azure_ad_token=token).chat.completions.create(
        model="d", messages=[{"role": "user", "content": "x"}]
    )
    assert reply.choices[0].message.content == "echo: x"


# ------------------------------------------------------------ through the gateway


def azure_config(
    fake: FakeAzureOpenAI, *, api_key: str | None = "azure-key", **provider: Any
) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": "azure_openai", "base_url": fake.url, **provider}
    if api_key:
        entry["api_key"] = api_key
    return {
        "providers": {"azure": entry},
        "models": {
            "gpt-4o-mini": {"deployments": [{"provider": "azure", "model": "prod-4o-mini"}]},
            "text-embedding-3-small": {
                "deployments": [{"provider": "azure", "model": "prod-embeddings"}]
            },
        },
    }


def test_api_key_requests_use_deployment_urls_and_api_version(fake_azure: FakeAzureOpenAI) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    fake_azure.script(ok(tool_calls=[{"name": "f", "arguments": {"a": 1}}]))
    with serve(azure_config(fake_azure, api_version="2025-04-01-preview")) as gw:
        client = gw.client()
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], tools=tools
        )
        vectors = client.embeddings.create(model="text-embedding-3-small", input="a")
    call = reply.choices[0].message.tool_calls[0]
    assert reply.choices[0].finish_reason == "tool_calls" and orjson.loads(
        call.function.arguments
    ) == {"a": 1}
    assert len(vectors.data) == 1
    chat, embeddings = fake_azure.requests
    assert chat["path"] == "/openai/deployments/prod-4o-mini/chat/completions"
    assert embeddings["path"] == "/openai/deployments/prod-embeddings/embeddings"
    assert chat["query"] == embeddings["query"] == {"api-version": "2025-04-01-preview"}
    assert chat["headers"]["api-key"] == "azure-key" and "Authorization" not in chat["headers"]
    assert chat["json"]["tools"] == tools


def test_stream_drops_filter_only_chunks_and_reports_usage(fake_azure: FakeAzureOpenAI) -> None:
    with serve(azure_config(fake_azure)) as gw:
        chunks = list(
            gw.client().chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "stream me"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        plain = list(
            gw.client().chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], stream=True
            )
        )
    assert all(c.choices for c in chunks[:-1])  # no choiceless chunk but the usage one
    assert "".join(c.choices[0].delta.content or "" for c in chunks[:-1]) == "echo: stream me"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 18
    assert all(c.choices for c in plain)  # usage hidden when not asked for
    assert fake_azure.requests[1]["json"]["stream_options"] == {"include_usage": True}


def test_content_filter_block_is_a_clear_400(fake_azure: FakeAzureOpenAI) -> None:
    fake_azure.script(error(400, error_type="content_filter"))
    with serve(azure_config(fake_azure)) as gw, pytest.raises(openai.BadRequestError) as caught:
        gw.client().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.code == "content_filter"
    assert "content filter blocked the prompt (violence (high), jailbreak)" in caught.value.message
    assert len(fake_azure.requests) == 1  # not retried, not failed over


def test_output_filtered_finish_reason_passes_through(fake_azure: FakeAzureOpenAI) -> None:
    fake_azure.script(ok("partial", finish_reason="content_filter"))
    with serve(azure_config(fake_azure)) as gw:
        reply = gw.client().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    assert reply.choices[0].finish_reason == "content_filter"


def test_throttling_is_retried_after_retry_after(fake_azure: FakeAzureOpenAI) -> None:
    fake_azure.script(error(429, "Requests have exceeded the rate limit", retry_after="3"))
    with serve(azure_config(fake_azure)) as gw:
        reply = gw.client().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    assert reply.choices[0].message.content == "echo: x"
    assert gw.sleeps and gw.sleeps[0] >= 3


@pytest.mark.parametrize(
    ("status", "sdk_error"), [(400, openai.BadRequestError), (429, openai.RateLimitError)]
)
def test_errors_keep_openai_statuses(
    fake_azure: FakeAzureOpenAI, status: int, sdk_error: type
) -> None:
    fake_azure.script(*[error(status, "bad")] * 3)
    with serve(azure_config(fake_azure)) as gw, pytest.raises(sdk_error) as caught:
        gw.client().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.code == ("rate_limit_exceeded" if status == 429 else None)


def test_a_wrong_api_key_is_the_gateways_502_not_the_clients_401(
    fake_azure: FakeAzureOpenAI,
) -> None:
    """Issue 20 item 4: the gateway's credential is wrong, not the client's."""
    with (
        serve(azure_config(fake_azure, api_key="wrong")) as gw,
        pytest.raises(openai.InternalServerError) as caught,
    ):
        gw.client().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.status_code == 502 and caught.value.code == "upstream_auth_failed"
    assert "refused the gateway's credential (HTTP 401" in caught.value.message
    assert "invalid subscription key" not in caught.value.message


# ------------------------------------------------------------ Entra workload identity


def test_entra_token_is_fetched_once_and_sent_as_bearer(
    fake_azure: FakeAzureOpenAI, workload_identity: None
) -> None:
    with serve(azure_config(fake_azure, api_key=None)) as gw:
        for _ in range(3):
            gw.client().chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
            )
        list(
            gw.client().chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], stream=True
            )
        )
    assert fake_azure.issued == ["entra-token-1"]
    (exchange,) = fake_azure.token_requests
    assert exchange["tenant"] == "tenant-1"
    assert exchange["scope"] == "https://cognitiveservices.azure.com/.default"
    assert exchange["client_assertion"] == fake_azure.assertion
    assert {r["headers"]["Authorization"] for r in fake_azure.requests} == {"Bearer entra-token-1"}
    assert all("api-key" not in r["headers"] for r in fake_azure.requests)


def test_entra_token_is_refreshed_before_it_expires(
    fake_azure: FakeAzureOpenAI, workload_identity: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1_000_000.0]
    monkeypatch.setattr(cache, "now", lambda: clock[0])

    def ask() -> None:
        gw.client().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )

    with serve(azure_config(fake_azure, api_key=None)) as gw:
        ask()
        clock[0] += 3000  # still fresh
        ask()
        assert fake_azure.issued == ["entra-token-1"]
        clock[0] += 400  # 200 s left: inside the refresh window
        ask()  # served with the current token while a new one is fetched in the background
        assert fake_azure.wait_for(lambda: len(fake_azure.issued) == 2)
        ask()
        clock[0] += 3600 - 30  # the new token has 30 s left: the request waits for a third
        ask()
    assert [r["headers"]["Authorization"] for r in fake_azure.requests] == [
        "Bearer entra-token-1",
        "Bearer entra-token-1",
        "Bearer entra-token-1",
        "Bearer entra-token-2",
        "Bearer entra-token-3",
    ]


def test_token_endpoint_from_provider_config_and_a_rejected_assertion_is_401(
    fake_azure: FakeAzureOpenAI,
    workload_identity: None,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "http://127.0.0.1:9/")  # unused: token_url wins
    bad = tmp_path / "bad-token"
    bad.write_text("not-federated")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(bad))
    config = azure_config(
        fake_azure, api_key=None, token_url=fake_azure.url + "/tenant-9/oauth2/v2.0/token"
    )
    with serve(config) as gw, pytest.raises(openai.AuthenticationError) as caught:
        gw.client().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    assert "AADSTS700211" in caught.value.message
    assert fake_azure.token_requests[0]["tenant"] == "tenant-9"
    assert fake_azure.requests == []


def test_readiness_names_missing_workload_identity_variables(fake_azure: FakeAzureOpenAI) -> None:
    with serve(azure_config(fake_azure, api_key=None)) as gw:
        ready = gw.client()._client.get(gw.url + "/health/ready").json()
        with pytest.raises(openai.AuthenticationError) as caught:
            gw.client().chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
            )
    assert ready["providers_missing_credentials"] == ["azure"]
    assert ready["providers"]["azure"]["set"][:3] == [
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_FEDERATED_TOKEN_FILE",
    ]
    assert "AZURE_FEDERATED_TOKEN_FILE" in caught.value.message


# ------------------------------------------------------------ failover across clouds


def test_bedrock_throttling_fails_over_to_azure_openai(
    fake_bedrock: FakeBedrock, fake_azure: FakeAzureOpenAI, aws_env: None, workload_identity: None
) -> None:
    fake_bedrock.script(*[error(429)] * 3)
    config = {
        "providers": {
            "aws": {"type": "bedrock", "base_url": fake_bedrock.url, "region": "us-east-1"},
            "azure": {"type": "azure_openai", "base_url": fake_azure.url},
        },
        "models": {
            "chat": {
                "deployments": [
                    {"provider": "aws", "model": MODEL_ID},
                    {"provider": "azure", "model": "prod-4o-mini"},
                ]
            }
        },
    }
    with serve(config) as gw:
        reply = gw.client().chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "x"}]
        )
        streamed = list(
            gw.client().chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "y"}], stream=True
            )
        )
    assert reply.choices[0].message.content == "echo: x"
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == "echo: y"
    # Three throttled tries on Bedrock, then Azure; the stream went to Bedrock (script empty).
    assert len(fake_bedrock.requests) == 4 and len(fake_azure.requests) == 1
    assert fake_azure.requests[0]["headers"]["Authorization"] == "Bearer entra-token-1"
