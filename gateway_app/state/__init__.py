"""Shared state behind small interfaces, each with an in-process and a Redis implementation.

Every store is a Protocol with an in-process implementation (the embedded
default: one replica, no services). A Redis implementation of the same Protocol
shares the state across replicas; one contract test suite runs against both.
Circuit breakers: ``circuit`` / ``circuit_redis``. Rate limits, budget
reservations and the audit buffer: ``governance`` / ``governance_redis``.
"""

from gateway_app.state.circuit import (
    CircuitBreakerStore,
    CircuitState,
    InProcessCircuitBreakerStore,
)

__all__ = ["CircuitBreakerStore", "CircuitState", "InProcessCircuitBreakerStore"]
