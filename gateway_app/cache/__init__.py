"""Response caching: exact (hash of the request) and semantic (embedding + guard).

The :class:`~gateway_app.cache.hook.CacheHook` is a before/after hook: the
exact lookup is one hash and one store read (no embedding on that path); the
semantic lookup runs only on an exact miss, for models or requests that opted
in, in a bounded worker thread.
"""
