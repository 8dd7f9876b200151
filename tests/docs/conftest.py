"""The gateway tests' fake upstreams, for the docs tests that run a gateway."""

from tests.gateway.conftest import _fakes, fake_anthropic, fake_openai

__all__ = ["_fakes", "fake_anthropic", "fake_openai"]
