"""Short-lived cloud credentials, refreshed without blocking the event loop.

:class:`RefreshingCredential` caches one credential (AWS keys, an Entra or a
Google access token) with its expiry: requests use the cached value; inside
the refresh window a background task fetches the next one; only when the value
is missing or about to expire does a request wait for the fetch (one fetch,
however many requests wait). Blocking fetchers (botocore, google-auth) run in
a worker thread; Entra's token exchange is a plain async HTTP call.
"""

from gateway_app.credentials.cache import RefreshingCredential, credential_for, reset

__all__ = ["RefreshingCredential", "credential_for", "reset"]
