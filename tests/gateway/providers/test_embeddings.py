"""Embeddings on Bedrock (Titan, Cohere) and Vertex AI: fake fidelity, translation, limits, errors."""

from __future__ import annotations

from typing import Any

import boto3
import google.oauth2.credentials
import openai
import orjson
import pytest
from botocore.config import Config
from google import genai
from google.genai import types

from tests.fakes import error
from tests.fakes.bedrock import FakeBedrock
from tests.fakes.server import fake_vector
from tests.fakes.vertex import FakeVertex
from tests.gateway.conftest import serve
from tests.gateway.providers.conftest import AWS_KEY, AWS_SECRET

TITAN = "amazon.titan-embed-text-v2:0"
COHERE = "cohere.embed-english-v3"


# ------------------------------------------------------------ fake fidelity (official SDKs)


def test_boto3_invoke_model_reads_titan_and_cohere_embeddings_from_the_fake(
    fake_bedrock: FakeBedrock,
) -> None:
    client = boto3.client(
        "bedrock-runtime",
        endpoint_url=fake_bedrock.url,
        region_name="us-east-1",
        aws_access_key_id=AWS_KEY,
        aws_secret_access_key=AWS_SECRET,
        config=Config(retries={"total_max_attempts": 1}),
    )
    titan = client.invoke_model(
        modelId=TITAN, body=orjson.dumps({"inputText": "hello there", "dimensions": 256})
    )
    data = orjson.loads(titan["body"].read())
    assert data["embedding"] == fake_vector("hello there", 256)
    assert data["inputTextTokenCount"] == 2
    cohere = client.invoke_model(
        modelId=COHERE,
        body=orjson.dumps({"texts": ["a b", "c"], "input_type": "search_document"}),
    )
    assert len(orjson.loads(cohere["body"].read())["embeddings"]) == 2
    headers = cohere["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-bedrock-input-token-count"] == "3"
    # Like Titan, the fake rejects fields the model does not know.
    with pytest.raises(client.exceptions.ValidationException, match="extraneous key \\[model\\]"):
        client.invoke_model(modelId=TITAN, body=orjson.dumps({"inputText": "x", "model": "m"}))
    with pytest.raises(client.exceptions.ValidationException, match="dimensions"):
        client.invoke_model(modelId=TITAN, body=orjson.dumps({"inputText": "x", "dimensions": 3}))
    assert fake_bedrock.rejected == []


def test_google_genai_embed_content_reads_the_fakes_predict(fake_vertex: FakeVertex) -> None:
    client = genai.Client(
        vertexai=True,
        project="proj-1",
        location="us-central1",
        credentials=google.oauth2.credentials.Credentials(token="test-token"),
        http_options=types.HttpOptions(base_url=fake_vertex.url, api_version="v1"),
    )
    reply = client.models.embed_content(
        model="text-embedding-005",
        contents=["first text", "second"],
        config=types.EmbedContentConfig(output_dimensionality=16),
    )
    assert [e.values for e in reply.embeddings] == [
        fake_vector("first text", 16),
        fake_vector("second", 16),
    ]
    assert reply.embeddings[0].statistics.token_count == 2
    sent = fake_vertex.requests[0]
    assert (sent["model"], sent["method"]) == ("text-embedding-005", "predict")
    assert [i["content"] for i in sent["json"]["instances"]] == ["first text", "second"]


def test_the_vertex_fake_requires_instances(fake_vertex: FakeVertex) -> None:
    import httpx

    reply = httpx.post(
        fake_vertex.url
        + "/v1/projects/p/locations/us-central1/publishers/google/models/text-embedding-005:predict",
        headers={"authorization": "Bearer test-token"},
        json={"content": "x"},
    )
    assert reply.status_code == 400 and "instances" in reply.json()["error"]["message"]


# ------------------------------------------------------------ through the gateway


def config(fake_bedrock: FakeBedrock, fake_vertex: FakeVertex) -> dict[str, Any]:
    return {
        "providers": {
            "aws": {"type": "bedrock", "base_url": fake_bedrock.url, "region": "us-east-1"},
            "gcp": {"type": "vertex", "base_url": fake_vertex.url, "project": "proj-1"},
        },
        "models": {
            "titan": {"deployments": [{"provider": "aws", "model": TITAN}]},
            "titan-v1": {
                "deployments": [{"provider": "aws", "model": "amazon.titan-embed-text-v1"}]
            },
            "cohere": {"deployments": [{"provider": "aws", "model": COHERE}]},
            "claude": {
                "deployments": [
                    {"provider": "aws", "model": "anthropic.claude-3-5-haiku-20241022-v1:0"}
                ]
            },
            "gecko": {
                "deployments": [
                    {
                        "provider": "gcp",
                        "model": "text-embedding-005",
                        "params": {"location": "us-central1"},
                    }
                ]
            },
        },
    }


@pytest.fixture
def gateway(
    fake_bedrock: FakeBedrock, fake_vertex: FakeVertex, aws_env: None, google_adc: None
) -> Any:
    with serve(config(fake_bedrock, fake_vertex)) as running:
        yield running.client()


TEXTS = ["the first input", "two", "a third one here", "four four"]


@pytest.mark.parametrize("model", ["titan", "cohere", "gecko"])
@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_a_list_keeps_its_order_and_sums_usage(gateway: Any, model: str, encoding: str) -> None:
    # The SDK asks for base64 unless told otherwise and decodes it; both shapes must work.
    kwargs = {"encoding_format": "float"} if encoding == "float" else {}
    reply = gateway.embeddings.create(model=model, input=TEXTS, **kwargs)
    assert reply.model == model and reply.object == "list"
    assert [d.index for d in reply.data] == [0, 1, 2, 3]
    # The fakes' vectors start with the text's length: the order is the inputs'.
    assert [d.embedding[0] for d in reply.data] == [float(len(t)) for t in TEXTS]
    words = sum(len(t.split()) for t in TEXTS)
    assert (reply.usage.prompt_tokens, reply.usage.total_tokens) == (words, words)


def test_titan_gets_one_signed_call_per_input(gateway: Any, fake_bedrock: FakeBedrock) -> None:
    reply = gateway.embeddings.create(model="titan", input=TEXTS, dimensions=256)
    assert len(reply.data[0].embedding) == 256
    sent = sorted((r["json"] for r in fake_bedrock.requests), key=lambda b: b["inputText"])
    assert sent == sorted(
        ({"inputText": t, "dimensions": 256, "normalize": True} for t in TEXTS),
        key=lambda b: b["inputText"],
    )
    assert {r["path"] for r in fake_bedrock.requests} == {
        "/model/amazon.titan-embed-text-v2:0/invoke"
    }
    assert fake_bedrock.rejected == []


def test_a_single_string_on_each_provider(gateway: Any, fake_vertex: FakeVertex) -> None:
    for model in ("titan", "titan-v1", "cohere", "gecko"):
        reply = gateway.embeddings.create(model=model, input="just one", encoding_format="float")
        assert len(reply.data) == 1 and reply.data[0].embedding[0] == 8.0
        assert reply.usage.prompt_tokens == 2
    assert len(gateway.embeddings.create(model="titan-v1", input="x").data[0].embedding) == 1536
    assert fake_vertex.requests[0]["json"] == {"instances": [{"content": "just one"}]}


def test_vertex_maps_dimensions_and_batches_in_one_call(
    gateway: Any, fake_vertex: FakeVertex
) -> None:
    reply = gateway.embeddings.create(model="gecko", input=TEXTS, dimensions=64)
    assert {len(d.embedding) for d in reply.data} == {64}
    assert len(fake_vertex.requests) == 1
    sent = fake_vertex.requests[0]
    assert sent["json"]["parameters"] == {"outputDimensionality": 64}
    assert (sent["project"], sent["location"], sent["method"]) == (
        "proj-1",
        "us-central1",
        "predict",
    )
    assert sent["headers"]["Authorization"].startswith("Bearer ya29.fake-")


def test_cohere_splits_long_lists_into_calls_of_96(gateway: Any, fake_bedrock: FakeBedrock) -> None:
    texts = [f"text {'x' * i}" for i in range(200)]
    reply = gateway.embeddings.create(model="cohere", input=texts, encoding_format="float")
    assert [d.embedding[0] for d in reply.data] == [float(len(t)) for t in texts]
    assert sorted(len(r["json"]["texts"]) for r in fake_bedrock.requests) == [8, 96, 96]
    assert {r["json"]["input_type"] for r in fake_bedrock.requests} == {"search_document"}


@pytest.mark.parametrize(
    ("model", "kwargs", "param", "says"),
    [
        (
            "titan",
            {"dimensions": 300},
            "dimensions",
            "300; Titan Text Embeddings V2 supports 256, 512, 1024",
        ),
        ("titan-v1", {"dimensions": 256}, "dimensions", "fixed size (1536)"),
        ("cohere", {"dimensions": 256}, "dimensions", "takes no `dimensions`"),
        ("titan", {"input": [[1, 2, 3]]}, "input", "token arrays"),
        ("gecko", {"input": [1, 2, 3]}, "input", "token arrays"),
        ("titan", {"input": ["x"] * 129}, "input", "at most 128"),
        ("gecko", {"input": ["x"] * 251}, "input", "at most 250"),
        ("claude", {}, "model", "not an embeddings model"),
    ],
)
def test_requests_a_provider_cannot_serve_are_400s_naming_the_field(
    gateway: Any,
    fake_bedrock: FakeBedrock,
    fake_vertex: FakeVertex,
    model: str,
    kwargs: dict[str, Any],
    param: str,
    says: str,
) -> None:
    kwargs = {"input": "text", **kwargs}
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.embeddings.create(model=model, **kwargs)
    assert caught.value.body["param"] == param
    assert says in caught.value.body["message"]
    assert fake_bedrock.requests == [] and fake_vertex.requests == []


def test_bedrock_errors_are_translated_and_throttling_retried(
    gateway: Any, fake_bedrock: FakeBedrock
) -> None:
    fake_bedrock.script(error(429), *[error(403, "no access", error_type="AccessDeniedException")])
    with pytest.raises(openai.InternalServerError) as caught:
        gateway.embeddings.create(model="titan", input="a")
    # The gateway's role lacks access: its own 502, naming the provider's code only.
    assert caught.value.body["code"] == "upstream_auth_failed"
    assert "(HTTP 403 AccessDeniedException)" in caught.value.body["message"]
    assert "no access" not in caught.value.body["message"]
    assert len(fake_bedrock.requests) == 2  # the 429 was retried


def test_one_failing_titan_call_fails_the_request(gateway: Any, fake_bedrock: FakeBedrock) -> None:
    fake_bedrock.script(*[error(400, "bad text", error_type="ValidationException")] * 4)
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.embeddings.create(model="titan", input=TEXTS)
    assert caught.value.body["code"] == "ValidationException"


def test_vertex_errors_are_translated(gateway: Any, fake_vertex: FakeVertex) -> None:
    fake_vertex.script(*[error(429, "quota exceeded")] * 3)
    with pytest.raises(openai.RateLimitError) as caught:
        gateway.embeddings.create(model="gecko", input="a")
    assert caught.value.body["code"] == "RESOURCE_EXHAUSTED"
    assert "quota exceeded" in caught.value.body["message"]
