"""The gateway tests' fake upstreams and OpenID Provider, for the docs tests that run a
gateway."""

from tests.gateway.conftest import _fakes, fake_anthropic, fake_openai
from tests.gateway.identity.conftest import openid_provider

__all__ = ["_fakes", "fake_anthropic", "fake_openai", "openid_provider"]
