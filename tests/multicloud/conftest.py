"""One three-cloud simulation for the module's tests (starting it costs a few seconds)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.multicloud.clouds import Multicloud


@pytest.fixture(scope="session")
def multicloud() -> Iterator[Multicloud]:
    """aws, azure and gcp: three gateways, three Redis, three PostgreSQL, six links.

    Teardown checks that stopping the simulation ended every process it started
    (an error at teardown, if not): no test run leaves a server behind.
    """
    clouds = Multicloud.start()
    pids = [pid for cloud in clouds.clouds.values() for pid in cloud.pids()]
    assert len(pids) == 9, pids  # per cloud: gateway, redis-server, postmaster
    try:
        yield clouds
    finally:
        clouds.stop()
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
            alive.append(pid)
        except ProcessLookupError:
            pass
    assert not alive, f"processes still running after stop(): {alive}"


@pytest.fixture
def clouds(multicloud: Multicloud) -> Iterator[Multicloud]:
    """The simulation with every link healed before and after the test."""
    multicloud.heal()
    for cloud in multicloud.clouds.values():
        cloud.upstream.reset()
    yield multicloud
    multicloud.heal()
