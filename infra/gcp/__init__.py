"""The GCP footprint: VPC, GKE, Memorystore for Redis and Cloud SQL for PostgreSQL.

:mod:`infra.gcp.footprint` composes the four components into the per-cloud
contract; :mod:`infra.decisions.gcp` and :mod:`infra.decisions.gcp` hold the pure
decisions (address ranges, names within GCP's limits) and import no Pulumi SDK,
so the stack config can use them.
"""
