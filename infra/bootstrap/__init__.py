"""One-time setup a deployment needs before the first ``pulumi login``.

``infra.bootstrap.state`` creates a self-managed Pulumi state backend (an S3
bucket and a KMS key for the ``awskms://`` secrets provider); ``aigw
bootstrap-state aws`` runs it.
"""
