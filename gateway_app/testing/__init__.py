"""Test support: fake upstreams speaking the OpenAI and Anthropic wire formats.

Used by tests/gateway and by the benchmark; shipped in the package so bench/
and the container test can start them too. Not imported by the gateway itself.
"""

from gateway_app.testing.fakes import Behaviour, FakeUpstream, drop, error, ok, slow

__all__ = ["Behaviour", "FakeUpstream", "drop", "error", "ok", "slow"]
