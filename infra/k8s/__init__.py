"""The gateway on any Kubernetes cluster, given a kube provider.

:mod:`infra.decisions.k8s` holds the pure decisions (names, scaling,
resources, canary objects, checksum); :mod:`infra.k8s.edge` the cluster's
Gateway API implementation (Envoy Gateway) and certificate issuer; :mod:`infra.k8s.gateway` the
``ai-gateway:k8s:GatewayDeployment`` component. Nothing here knows which cloud
it runs in beyond what its args say. This package file imports nothing, so
``infra.config`` can use the decisions without loading the Kubernetes SDK.
"""
