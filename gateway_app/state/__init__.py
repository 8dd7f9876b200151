"""Shared state behind small interfaces: in-process now, Redis from the governance issue.

Every store is a Protocol with an in-process implementation (the embedded
default: one replica, no services). A Redis implementation of the same Protocol
shares the state across replicas; one contract test suite runs against both.
"""

from gateway_app.state.circuit import (
    CircuitBreakerStore,
    CircuitState,
    InProcessCircuitBreakerStore,
)

__all__ = ["CircuitBreakerStore", "CircuitState", "InProcessCircuitBreakerStore"]
