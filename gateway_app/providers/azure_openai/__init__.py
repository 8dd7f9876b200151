"""Azure OpenAI: OpenAI's wire format behind deployment URLs with an ``api-version``.

``request`` builds ``{endpoint}/openai/deployments/{deployment}/...?api-version=``
requests (the body is OpenAI's, streams always ask for usage); ``response`` and
``stream`` forward OpenAI's shape, dropping Azure's prompt-filter-only stream
chunks; ``errors`` maps Azure's errors, content-filter blocks included, to
clear OpenAI-shaped errors. Authentication is an ``api-key`` or a Microsoft
Entra token from the pod's workload identity (``gateway_app.credentials.azure``).
"""

from gateway_app.providers.azure_openai.adapter import ADAPTER

__all__ = ["ADAPTER"]
