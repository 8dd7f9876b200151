"""Sign-in for people: OpenID Connect, server-side sessions, and the web console's routes.

* :mod:`.oidc`: the relying party (discovery, code flow with PKCE, ID token checks);
* :mod:`.roles`: a person, and the claims-to-role rules;
* :mod:`.sessions`: sessions and pending sign-ins, in-process or in Redis;
* :mod:`.service`: sign-in, logout, break-glass, and the admin API's principal;
* :mod:`.web`: the ``/auth`` and ``/console`` ASGI routes.

The admin API (:class:`~gateway_app.governance.admin.AdminApi`) meets this package
at one seam, its ``People``: :meth:`.service.Identity.principal` turns a session
cookie into a :class:`~gateway_app.governance.rbac.Principal`, and an org admin's
``POST /auth/sessions/revoke`` (an admin route) ends a person's sessions. This
package builds on governance (roles, audit), never the other way round.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway_app.config import GatewayConfig
    from gateway_app.environment import Environment
    from gateway_app.governance.admin import AdminApi
    from gateway_app.identity.web import ConsoleApp


def build(
    config: GatewayConfig,
    admin: AdminApi | None,
    env: Environment,
    *,
    clock: Callable[[], float] = time.time,
) -> ConsoleApp:
    """The ``/auth`` + ``/console`` handler for a config with an ``identity`` section, wired
    to the admin API (people's sessions become its callers; its audit buffer and admin
    key serve sign-in).

    Sessions live in Redis when ``AIGW_REDIS_URL`` is set (shared by every replica),
    else in this process."""
    from gateway_app.config import ConfigError
    from gateway_app.identity.service import Identity
    from gateway_app.identity.sessions import InProcessSessionStore, RedisSessionStore
    from gateway_app.identity.web import ConsoleApp

    if admin is None:
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
    store = (
        RedisSessionStore.from_url(
            env.redis_url, env.redis_ca_file, credential=env.redis_credential(), **timeouts
        )
        if env.redis_url
        else InProcessSessionStore(**timeouts)
    )
    governance = admin.governance
    identity = Identity(
        config.identity,
        store,
        audit_sink=governance.state.append,
        admin_key=governance.admin_key,
        clock=clock,
    )
    admin.attach_people(identity)
    return ConsoleApp(identity)
