"""Sign-in for people: OpenID Connect, server-side sessions, and the web console's routes.

* :mod:`.settings`: the ``identity:`` config section (provider, role rules, sessions);
* :mod:`.oidc`: the relying party (discovery, code flow with PKCE, ID token checks);
* :mod:`.roles`: a person, and the claims-to-role rules;
* :mod:`.sessions`: sessions and pending sign-ins, in-process or in Redis;
* :mod:`.service`: sign-in, logout, break-glass, and the admin API's principal;
* :mod:`.web`: the ``/auth`` and ``/console`` ASGI routes.

The admin API meets this package at one seam: ``Governance.identity.principal(headers,
method)`` turns a session cookie into a :class:`~gateway_app.governance.rbac.Principal`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway_app.config import GatewayConfig
    from gateway_app.identity.web import ConsoleApp


def build(
    config: GatewayConfig, governance: Any, *, clock: Callable[[], float] = time.time
) -> ConsoleApp:
    """The ``/auth`` + ``/console`` handler for a config with an ``identity`` section, wired
    to the governance admin API (its audit buffer, admin key and key authentication).

    Sessions live in Redis when ``AIGW_REDIS_URL`` is set (shared by every replica),
    else in this process."""
    from gateway_app.config import ConfigError
    from gateway_app.identity.service import Identity
    from gateway_app.identity.sessions import InProcessSessionStore, RedisSessionStore
    from gateway_app.identity.web import ConsoleApp

    if governance is None:
        raise ConfigError(
            "identity: sign-in and the console need governance (keys, roles, audit): set "
            "AIGW_ADMIN_KEY or governance.enabled: true, or remove the identity section"
        )
    settings = config.identity.session
    timeouts = {
        "idle_timeout_s": settings.idle_timeout_s,
        "absolute_timeout_s": settings.absolute_timeout_s,
        "clock": clock,
    }
    url = os.environ.get("AIGW_REDIS_URL")
    store = (
        RedisSessionStore.from_url(url, os.environ.get("AIGW_REDIS_CA_FILE") or None, **timeouts)
        if url
        else InProcessSessionStore(**timeouts)
    )
    identity = Identity(
        config.identity,
        store,
        audit_sink=governance.state.append,
        admin_key=governance.admin_key,
        clock=clock,
    )
    governance.identity = identity
    return ConsoleApp(identity, bearer=governance._principal)
