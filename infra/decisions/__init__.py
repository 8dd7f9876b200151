"""The pure decisions of each part: names, address plans, sizing, scaling. No resources.

One module per cloud and one for Kubernetes (:mod:`infra.decisions.aws`,
:mod:`~infra.decisions.azure`, :mod:`~infra.decisions.gcp`,
:mod:`~infra.decisions.k8s`). They sit below both the stack config, which runs
them while it validates (a VPC too small for its subnets is a config error
naming the key), and the components, which build resources from their answers;
under the cloud folders they would close an import cycle with the config. They
import only the ground floor (:mod:`infra.contracts`) and the standard library at
import time (``azure.redis_sku`` reads the SDK's SKU enum when called).
"""
