"""Google Vertex AI Gemini: ``generateContent`` and ``streamGenerateContent``.

``request`` builds Gemini bodies (``contents`` with user/model roles and parts:
text, inline or file images, function calls and responses;
``systemInstruction``; ``tools.functionDeclarations`` and ``toolConfig``;
``generationConfig``); ``response`` maps candidates, function calls, finish and
block reasons (safety blocks become ``content_filter``) and ``usageMetadata``
back; ``stream`` maps the SSE stream of ``GenerateContentResponse`` chunks to
OpenAI chunks with the usage chunk; ``errors`` maps Google's error statuses.
OAuth tokens come from application default credentials (Workload Identity on
GKE) through google-auth, refreshed in a worker thread
(``gateway_app.credentials.google``). Project and location are per deployment.
"""

from gateway_app.providers.vertex.adapter import ADAPTER

__all__ = ["ADAPTER"]
