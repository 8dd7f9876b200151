"""AWS Bedrock Converse API: translation to and from OpenAI chat completions.

``request`` builds Converse bodies (system blocks, messages with text, image,
toolUse and toolResult blocks, inferenceConfig, toolConfig); ``response`` maps
the output message, stop reason and usage back; ``stream`` decodes
ConverseStream's AWS event-stream framing and maps its events to OpenAI chunks
including the usage chunk; ``errors`` maps Bedrock's exception types to
OpenAI-shaped errors. Requests are signed with SigV4 from botocore's standard
credential chain (``gateway_app.credentials.aws``).
"""

from gateway_app.providers.bedrock.adapter import ADAPTER

__all__ = ["ADAPTER"]
