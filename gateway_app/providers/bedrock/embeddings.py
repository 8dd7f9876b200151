"""OpenAI embeddings <-> Bedrock ``InvokeModel`` for Titan Text Embeddings and Cohere Embed.

Titan embeds one text per call, so a list ``input`` becomes one call per text
(sent concurrently by the router, at most :data:`MAX_TITAN_INPUTS`). Cohere
Embed takes up to 96 texts per call; longer lists are split into calls of 96.
The model family is read from the model id (``amazon.titan-embed-text-*``,
``cohere.embed-*``, with or without an inference-profile prefix such as
``us.``) or, for ARNs, from the deployment's ``params.embeddings_format``
(``titan`` or ``cohere``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from gateway_app.errors import GatewayError, invalid
from gateway_app.providers.base import ChatResult
from gateway_app.providers.embeddings import (
    dimensions,
    encoding_format,
    openai_response,
    text_inputs,
)

if TYPE_CHECKING:
    from gateway_app.config import DeploymentConfig

TITAN_DIMENSIONS = (256, 512, 1024)
MAX_TITAN_INPUTS = 128  # one upstream call each: a bound on one request's fan-out
COHERE_BATCH = 96  # Cohere Embed's limit of texts per call
MAX_COHERE_INPUTS = 2048  # OpenAI's own limit of inputs per request
COHERE_INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")
TOKEN_COUNT_HEADER = "x-amzn-bedrock-input-token-count"


def family(deployment: DeploymentConfig) -> str:
    """``titan`` (v2), ``titan-v1`` or ``cohere``; else a 400 naming the model family."""
    explicit = deployment.params.get("embeddings_format")
    if explicit in ("titan", "titan-v1", "cohere"):
        return str(explicit)
    model = deployment.model
    if "amazon.titan-embed-text-v1" in model:
        return "titan-v1"
    if "amazon.titan-embed-text" in model:
        return "titan"
    if "cohere.embed" in model:
        return "cohere"
    raise invalid(
        "model",
        f"Bedrock model {model!r} is not an embeddings model the gateway translates: "
        "supported are Amazon Titan Text Embeddings (amazon.titan-embed-text-v2:0, "
        "amazon.titan-embed-text-v1) and Cohere Embed (cohere.embed-english-v3, "
        "cohere.embed-multilingual-v3); for an ARN set the deployment's "
        "params.embeddings_format to `titan` or `cohere`.",
        "unsupported_model",
    )


def request_bodies(body: dict[str, Any], deployment: DeploymentConfig) -> list[dict[str, Any]]:
    """The ``InvokeModel`` bodies for an OpenAI embeddings body, in input order."""
    kind = family(deployment)
    texts = text_inputs(body, "Bedrock")
    encoding_format(body)
    size = dimensions(body)
    if kind == "cohere":
        if size is not None:
            raise invalid(
                "dimensions",
                f"Invalid 'dimensions': {size}; Cohere Embed on Bedrock has a fixed size "
                "(1024) and takes no `dimensions`. Leave it out.",
                "invalid_value",
            )
        if len(texts) > MAX_COHERE_INPUTS:
            raise invalid(
                "input",
                f"Invalid 'input': {len(texts)} items; at most {MAX_COHERE_INPUTS} per request.",
                "invalid_value",
            )
        input_type = deployment.params.get("input_type", "search_document")
        if input_type not in COHERE_INPUT_TYPES:
            raise GatewayError(
                500,
                f"deployment {deployment.id}: params.input_type {input_type!r} is not one of "
                f"{', '.join(COHERE_INPUT_TYPES)}",
                code="bad_deployment",
            )
        return [
            {"texts": texts[i : i + COHERE_BATCH], "input_type": input_type}
            for i in range(0, len(texts), COHERE_BATCH)
        ]
    if len(texts) > MAX_TITAN_INPUTS:
        raise invalid(
            "input",
            f"Invalid 'input': {len(texts)} items; Titan embeds one text per upstream call "
            f"and the gateway sends at most {MAX_TITAN_INPUTS} per request. Split the list.",
            "invalid_value",
        )
    if kind == "titan-v1":
        if size is not None:
            raise invalid(
                "dimensions",
                f"Invalid 'dimensions': {size}; amazon.titan-embed-text-v1 has a fixed size "
                "(1536). Leave it out, or use amazon.titan-embed-text-v2:0.",
                "invalid_value",
            )
        return [{"inputText": text} for text in texts]
    if size is not None and size not in TITAN_DIMENSIONS:
        raise invalid(
            "dimensions",
            f"Invalid 'dimensions': {size}; Titan Text Embeddings V2 supports "
            f"{', '.join(map(str, TITAN_DIMENSIONS))}.",
            "invalid_value",
        )
    extra = {"dimensions": size} if size is not None else {}
    # OpenAI's vectors are unit length; so are Titan's with `normalize`.
    return [{"inputText": text, **extra, "normalize": True} for text in texts]


def translate_responses(
    responses: list[tuple[bytes, Mapping[str, str]]],
    body: dict[str, Any],
    deployment: DeploymentConfig,
) -> ChatResult:
    """One OpenAI embeddings response from the ``InvokeModel`` responses, in order."""
    vectors: list[list[float]] = []
    tokens = 0
    cohere = family(deployment) == "cohere"
    for raw, headers in responses:
        data = orjson.loads(raw)
        if cohere:
            embeddings = data["embeddings"]
            if isinstance(embeddings, dict):  # embedding_types requested: {"float": [...]}
                embeddings = embeddings["float"]
            vectors.extend(embeddings)
            header = {k.lower(): v for k, v in headers.items()}.get(TOKEN_COUNT_HEADER)
            tokens += int(header) if header else 0
        else:
            vectors.append(data["embedding"])
            tokens += int(data.get("inputTextTokenCount") or 0)
    return openai_response(vectors, tokens, str(body["model"]), encoding_format(body))
