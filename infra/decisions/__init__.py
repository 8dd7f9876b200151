"""The pure decisions of each part: names, address plans, sizing, scaling. No resources.

One module per cloud and one for Kubernetes (:mod:`infra.decisions.aws`,
:mod:`~infra.decisions.azure`, :mod:`~infra.decisions.gcp`,
:mod:`~infra.decisions.k8s`), and one for what spans them: each cloud's PostgreSQL
connection budget at the gateway's peak (:mod:`~infra.decisions.postgres`). They sit below both the stack config, which runs
them while it validates (a VPC too small for its subnets is a config error
naming the key), and the components, which build resources from their answers;
under the cloud folders they would close an import cycle with the config. They
import only the ground floor (:mod:`infra.contracts`), the standard library and
PyYAML (a kubeconfig's text) at import time (``azure.redis_sku`` reads the SDK's
SKU enum when called). The three clouds' kubeconfigs come from one builder,
:func:`infra.decisions.k8s.kubeconfig`, each cloud naming its own credential
plugin (``aws eks get-token``, ``gke-gcloud-auth-plugin``, ``kubelogin``).
"""
