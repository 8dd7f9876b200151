"""The ground floor: the enums and contract types the components exchange.

Nothing here imports a component, the stack config or a cloud SDK beyond
``pulumi`` itself, so every other module of ``infra`` may import it (the
import-linter contracts in pyproject.toml hold it to that):

* :mod:`infra.contracts.enums`: environment, clouds, DNS providers, routing policies;
* :mod:`infra.contracts.workload`: what a cloud's identity hands the gateway's
  workload (:class:`WorkloadIdentity`, :class:`EgressRule`);
* :mod:`infra.contracts.footprint`: what every cloud's footprint hands the program
  (:class:`CloudFootprint` and each cloud's typed outputs).
"""

from infra.contracts.enums import Cloud, DnsProvider, Environment, RoutingPolicy

__all__ = ["Cloud", "DnsProvider", "Environment", "RoutingPolicy"]
