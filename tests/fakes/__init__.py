"""Test support: fake upstreams speaking each provider's wire format.

Used by tests/gateway, tests/multicloud and tests/container (which starts them on
the host for the pod it runs). They live under tests/, outside the gateway's
package, so the gateway image never contains them (tests/container checks).
"""

from tests.fakes.fakes import Behaviour, FakeUpstream, drop, error, ok, slow

__all__ = ["Behaviour", "FakeUpstream", "drop", "error", "ok", "slow"]
