"""One team's RPM and TPM limits used from three clouds at once are never exceeded together.

Each cloud enforces its share of the limit, read by the reservation script in
the same Redis round trip; the home's ledger moves shares by demand, lowering
before raising (docs/decisions/0001-global-governance-plane.md, "RPM and TPM
limits: shares of the limit"). The stated bound: at every instant, the sum over
the clouds of their sliding-window counts is at most the limit, partitions
included. Without shares each cloud would admit the whole limit: 3x.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.fakes import slow
from tests.multicloud.clouds import CLOUDS, Multicloud, PeakSampler, run
from tests.multicloud.test_budgets import MAX_TOKENS, MESSAGES, PER_CLOUD, _burst

WINDOW_S = 60
# What one request reserves against a TPM limit (service.Governance.estimate).
TOKENS = len(orjson.dumps(MESSAGES)) // 3 + 16 + MAX_TOKENS


class _Windows(PeakSampler):
    """Samples the limit's sliding-window count in every cloud's Redis, as the script does."""

    def __init__(self, clouds: Multicloud, scope: str, kind: str) -> None:
        super().__init__(clouds, interval_s=0.01)
        self.prefix = f"{{aigw}}:rl:{scope}:{kind}:"

    def now(self) -> dict[str, float]:
        now = time.time()
        minute, frac = int(now // WINDOW_S), (now % WINDOW_S) / WINDOW_S
        out = {}
        for name, client in self.clients.items():
            cur, prev = client.mget([f"{self.prefix}{minute}", f"{self.prefix}{minute - 1}"])
            out[name] = float(prev or 0) * (1 - frac) + float(cur or 0)
        return out

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.close()


def _shares(clouds: Multicloud, rate: str) -> dict[str, dict[str, int]]:
    db = clouds["aws"].database()
    try:
        rows = db.fetch(
            "SELECT cloud, granted_ppm, held_ppm, reported_at FROM rate_shares WHERE rate = ?",
            (rate,),
        )
    finally:
        db.close()
    return {r["cloud"]: dict(r) for r in rows}


@pytest.fixture
def team_limit(clouds: Multicloud, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """A fresh team with an RPM limit of 90 (or a TPM limit of 60 requests' reservations),
    its key known in every cloud, and every cloud holding a share of the limit."""
    kind = request.param
    team = f"t-rate-{kind}-{request.node.name[:20].strip('[]_')}-{int(time.time())}"
    limit = 90 if kind == "rpm" else 60 * TOKENS
    put = clouds["azure"].admin("PUT", f"/admin/limits/team/{team}", json={kind: limit})
    assert put.status_code == 200, put.text
    made = clouds["gcp"].admin("POST", "/admin/keys", json={"team_id": team, "project_id": team})
    assert made.status_code == 201, made.text
    for cloud in clouds.clouds.values():
        cloud.upstream.script(*[slow(1.0, usage=(11, 60)) for _ in range(PER_CLOUD)])
    rate = f"team:{team}|{kind}"
    deadline = time.monotonic() + 5
    while set(_shares(clouds, rate)) != set(CLOUDS):
        assert time.monotonic() < deadline, _shares(clouds, rate)
        time.sleep(0.1)
    # Not in a minute's last seconds: the burst's window is one minute's count.
    if time.time() % WINDOW_S > WINDOW_S - 8:
        time.sleep(WINDOW_S - time.time() % WINDOW_S + 0.1)
    yield {"team": team, "kind": kind, "limit": limit, "key": made.json()["key"], "rate": rate}


def _admitted(results: dict[str, list[tuple[int, str | None]]]) -> dict[str, int]:
    refused = {code for r in results.values() for status, code in r if status != 200}
    assert refused <= {"rate_limit_exceeded"}, refused
    return {name: sum(1 for status, _ in r if status == 200) for name, r in results.items()}


@pytest.mark.parametrize("team_limit", ["rpm", "tpm"], indirect=True)
def test_three_clouds_bursting_on_one_rate_limit_never_use_more_than_it(
    clouds: Multicloud, team_limit: dict[str, Any]
) -> None:
    team, kind, limit = team_limit["team"], team_limit["kind"], team_limit["limit"]
    with _Windows(clouds, f"team:{team}", kind) as windows:
        admitted = _admitted(run(_burst(clouds, team_limit["key"])))
    # The bound: the clouds' windows together never held more than the limit.
    assert windows.peak <= limit + 1e-6, f"peak {windows.peak / limit:.3f} of the limit"
    per_request = 1 if kind == "rpm" else TOKENS
    assert sum(admitted.values()) * per_request <= limit, admitted
    # And the limit was used, in every cloud (the shares split it, none hoards it).
    assert all(admitted[name] > 0 for name in CLOUDS), admitted
    assert sum(admitted.values()) * per_request >= 0.8 * limit, admitted
    print(f"\n{kind}: admitted {admitted}; peak {windows.peak / limit:.3f} x limit")


@pytest.mark.parametrize("team_limit", ["tpm"], indirect=True)
def test_a_cloud_cut_off_keeps_serving_within_its_share_then_heals(
    clouds: Multicloud, team_limit: dict[str, Any]
) -> None:
    team, kind, limit = team_limit["team"], team_limit["kind"], team_limit["limit"]
    held = _shares(clouds, team_limit["rate"])["gcp"]["granted_ppm"]
    clouds.isolate("gcp")
    with _Windows(clouds, f"team:{team}", kind) as windows:
        admitted = _admitted(run(_burst(clouds, team_limit["key"])))
        gcp_window = windows.now()["gcp"]
    assert windows.peak <= limit + 1e-6, f"peak {windows.peak / limit:.3f} of the limit"
    # gcp, cut off, served within the share it held (its lease outlasts the burst).
    assert 0 < gcp_window <= limit * held / 1_000_000 + 1e-6, (gcp_window, held, admitted)
    clouds.heal()
    # Healed: gcp renews its share with the home again within a few ticks.
    cut_at = time.time()
    deadline = time.monotonic() + 8
    while _shares(clouds, team_limit["rate"])["gcp"]["reported_at"] < cut_at:
        assert time.monotonic() < deadline, _shares(clouds, team_limit["rate"])
        time.sleep(0.1)
    shares = _shares(clouds, team_limit["rate"])
    assert sum(row["held_ppm"] for row in shares.values()) <= 1_000_000, shares
