"""Session services for the sign-in tests: the OpenID Provider (and Redis, for sessions)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gateway.governance.conftest import redis_server  # noqa: F401 (a shared fixture)
from tests.gateway.identity.provider import OpenIDProvider, start_provider


@pytest.fixture(scope="session")
def openid_provider() -> Iterator[OpenIDProvider]:
    provider = start_provider()
    yield provider
    provider.stop()
