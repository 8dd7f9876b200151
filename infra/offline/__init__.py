"""The offline engine: runs the Pulumi program under mocks and records every resource.

Used by the tests and by ``aigw plan``; needs no Pulumi CLI, no cloud account
and no network. See :mod:`infra.offline.engine`; :mod:`infra.offline.policy_gate`
runs the policy pack over a recorded plan.
"""

from infra.offline.engine import Plan, RecordedResource, Secret, record

__all__ = ["Plan", "RecordedResource", "Secret", "record"]
