"""Client-facing wire protocols besides OpenAI's chat completions and embeddings.

Each is a package holding what the protocol itself is (request validation, its
error shape, its stream events) and its translation to and from chat completions
for deployments whose provider does not speak it natively. The entries that put a
protocol on a path are in :mod:`gateway_app.apis`; which deployments serve it
natively is declared by their adapters (``Capability``).
"""
