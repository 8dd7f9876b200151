"""Keys, limits and projects are one set across the clouds (issue 29, phase B, slice 1).

The home (aws) owns every write; azure and gcp follow its change feed over the
internal channel and forward admin calls to it. The bounds tested are the ones
the decision record states (docs/decisions/0001-global-governance-plane.md):
a key created, rotated or revoked through any cloud works or stops in every
connected cloud within 2 s (with 100 ms one-way between the clouds, a far pair
of regions), and at once in the cloud that served the admin call; a cloud cut
off from the home keeps serving the keys it knows and catches up on heal.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from gateway_app.config.governance import GlobalConfig
from gateway_app.governance import changes
from tests.multicloud.clouds import CLOUDS, Cloud, Multicloud

BOUND_S = 2.0  # the stated propagation bound while the feed is up
FORWARD_S = GlobalConfig.model_fields["forward_timeout_s"].default
HEAL_BOUND_S = 5.0  # after a silent connection loss: 3 s to notice, reconnect, catch up
ONE_WAY_S = 0.1


def _chat(cloud: Cloud, key: str) -> int:
    """One chat completion with the official SDK: 200, or the status it was refused with."""
    client = openai.OpenAI(base_url=cloud.url + "/v1", api_key=key, max_retries=0, timeout=5)
    try:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    except openai.APIStatusError as exc:
        return exc.status_code
    return 200


def _until(cloud: Cloud, key: str, status: int, bound: float) -> float:
    """Seconds until ``cloud`` answers ``key`` with ``status``; fails past ``bound`` (+1 s)."""
    started = time.monotonic()
    while True:
        got = _chat(cloud, key)
        elapsed = time.monotonic() - started
        if got == status:
            return elapsed
        assert elapsed < bound + 1.0, f"{cloud.name} still answers {got}, not {status}"
        time.sleep(0.05)


def _create_key(cloud: Cloud, project: str, team: str = "t-repl") -> dict[str, Any]:
    response = cloud.admin("POST", "/admin/keys", json={"team_id": team, "project_id": project})
    assert response.status_code == 201, response.text
    assert response.headers["x-aigw-served-by"] == "aws"  # the home answered
    return response.json()


def _cursor(cloud: Cloud) -> int:
    db = cloud.database()
    try:
        return changes.cursor(db)[1]
    finally:
        db.close()


def _metrics(cloud: Cloud) -> dict[str, float]:
    """The ``aigw_gov_*`` samples of a cloud's /metrics, by name with labels."""
    text = httpx.get(cloud.url + "/metrics", timeout=5).text
    return {
        name: float(value)
        for name, _, value in (line.rpartition(" ") for line in text.splitlines())
        if name.startswith("aigw_gov_")
    }


def _head(cloud: Cloud) -> int:
    db = cloud.database()
    try:
        return changes.head(db)
    finally:
        db.close()


@pytest.fixture
def far(clouds: Multicloud) -> Iterator[Multicloud]:
    """Every link 100 ms one way (each fixture heals them afterwards)."""
    for cloud in clouds.clouds.values():
        for link in cloud.links.values():
            link.delay(ONE_WAY_S)
    yield clouds


def test_a_key_created_through_any_cloud_serves_in_every_cloud_within_the_bound(
    far: Multicloud,
) -> None:
    for creator in CLOUDS:
        key = _create_key(far[creator], f"born-in-{creator}")["key"]
        # Read your writes: the cloud that answered the admin call serves the key at once.
        assert _chat(far[creator], key) == 200
        started = time.monotonic()
        for other in CLOUDS:
            if other != creator:
                _until(far[other], key, 200, BOUND_S)
        took = time.monotonic() - started
        assert took < BOUND_S, f"created in {creator}: {took:.2f}s to serve everywhere"
        print(f"\ncreated through {creator}: serving everywhere after {took * 1000:.0f} ms")
    # Limits and project ownership travel the same feed: a limit set through gcp is in
    # every cloud's own copy (read locally), the same everywhere.
    put = far["gcp"].admin(
        "PUT", "/admin/limits/team/t-repl", json={"monthly_usd": 25.0, "rpm": 600}
    )
    assert put.status_code == 200, put.text
    for cloud in far.clouds.values():
        local = cloud.admin("GET", "/admin/limits/team/t-repl", params={"consistency": "local"})
        assert local.status_code == 200, (cloud.name, local.text)
        assert local.json()["monthly_usd"] == 25.0 and local.json()["rpm"] == 600
        projects = cloud.admin("GET", "/admin/projects", params={"consistency": "local"})
        owned = {p["id"]: p["team_id"] for p in projects.json()["data"]}
        assert {owned.get(f"born-in-{c}") for c in CLOUDS} == {"t-repl"}, cloud.name


def test_a_revoked_key_stops_everywhere_at_least_as_fast_and_at_once_where_revoked(
    far: Multicloud,
) -> None:
    key = _create_key(far["aws"], "to-revoke")
    for cloud in far.clouds.values():
        _until(cloud, key["key"], 200, BOUND_S)
    revoked = far["azure"].admin("POST", f"/admin/keys/{key['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert _chat(far["azure"], key["key"]) == 401  # where it was revoked: at once
    started = time.monotonic()
    for name in ("aws", "gcp"):
        _until(far[name], key["key"], 401, BOUND_S)
    took = time.monotonic() - started
    assert took < BOUND_S
    print(f"\nrevoked through azure: refused everywhere after {took * 1000:.0f} ms")


def test_a_rotated_key_old_secret_stops_and_new_one_works_everywhere(far: Multicloud) -> None:
    key = _create_key(far["aws"], "to-rotate")
    for cloud in far.clouds.values():
        _until(cloud, key["key"], 200, BOUND_S)
    rotated = far["gcp"].admin("POST", f"/admin/keys/{key['id']}/rotate")
    assert rotated.status_code == 200, rotated.text
    fresh = rotated.json()["key"]
    assert _chat(far["gcp"], fresh) == 200 and _chat(far["gcp"], key["key"]) == 401
    started = time.monotonic()
    for name in ("aws", "azure"):
        _until(far[name], fresh, 200, BOUND_S)
        _until(far[name], key["key"], 401, BOUND_S)
    assert time.monotonic() - started < BOUND_S


def test_every_cloud_gives_the_same_answer_to_admin_reads(clouds: Multicloud) -> None:
    _create_key(clouds["gcp"], "same-answer")
    answers = {}
    for name, cloud in clouds.clouds.items():
        for path in ("/admin/keys", "/admin/limits", "/admin/projects"):
            response = cloud.admin("GET", path)
            assert response.status_code == 200, response.text
            assert response.headers["x-aigw-served-by"] == "aws"
            answers.setdefault(path, {})[name] = response.content
    for path, by_cloud in answers.items():
        assert len(set(by_cloud.values())) == 1, path


@pytest.mark.parametrize("mode", ["drop", "reset"])
def test_a_cut_off_follower_keeps_serving_known_keys_and_catches_up_on_heal(
    clouds: Multicloud, mode: str
) -> None:
    known = _create_key(clouds["aws"], f"known-{mode}")
    for cloud in clouds.clouds.values():
        _until(cloud, known["key"], 200, BOUND_S)
    clouds.isolate("gcp", mode=mode)
    # Changes made while gcp is cut off: a new key, and the known key revoked.
    fresh = _create_key(clouds["azure"], f"during-{mode}")
    assert clouds["aws"].admin("POST", f"/admin/keys/{known['id']}/revoke").status_code == 200
    # A backlog longer than one feed line (100 changes): catch-up takes several lines.
    with httpx.Client(timeout=10) as http:
        for index in range(120):
            put = http.put(
                clouds["aws"].url + f"/admin/limits/key/{fresh['id']}",
                headers={"authorization": "Bearer process-admin-key"},
                json={"rpm": 1000 + index},
            )
            assert put.status_code == 200, put.text
    _until(clouds["azure"], known["key"], 401, BOUND_S)
    # gcp keeps serving what it knows (its clients are not cut off, only its links).
    assert _chat(clouds["gcp"], known["key"]) == 200
    assert _chat(clouds["gcp"], fresh["key"]) == 401
    # Admin calls need the home: 503 with Retry-After; local reads say what they are.
    # Dropped bytes: the forward waits out its whole timeout (10 s by default), so the
    # client waits longer than that, and the answer must come within it.
    started = time.monotonic()
    refused = clouds["gcp"].admin(
        "POST", "/admin/keys", json={"team_id": "t", "project_id": "x"}, timeout=FORWARD_S + 10
    )
    assert time.monotonic() - started < FORWARD_S + 2
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "governance_home_unreachable"
    assert refused.headers["retry-after"] == "5"
    local = clouds["gcp"].admin("GET", "/admin/keys", params={"consistency": "local"})
    assert local.status_code == 200
    assert local.headers["x-aigw-consistency"] == "local"
    assert int(local.headers["x-aigw-applied-seq"]) < _head(clouds["aws"])
    assert fresh["id"] not in {k["id"] for k in local.json()["data"]}
    time.sleep(3.5)  # past the feed's dead-after (3 s): gcp has noticed and is retrying
    assert _chat(clouds["gcp"], known["key"]) == 200
    # What the operator paged at night sees on gcp: the home unreachable, the feed silent.
    seen = _metrics(clouds["gcp"])
    assert seen["aigw_gov_home_reachable"] == 0, seen
    assert seen["aigw_gov_feed_silence_seconds"] >= 3.0, seen
    assert seen["aigw_gov_feed_applied_seq"] < _head(clouds["aws"]), seen
    clouds.heal()
    started = time.monotonic()
    _until(clouds["gcp"], fresh["key"], 200, HEAL_BOUND_S)
    _until(clouds["gcp"], known["key"], 401, HEAL_BOUND_S)
    took = time.monotonic() - started
    assert took < HEAL_BOUND_S
    print(f"\n{mode} partition healed: gcp caught up after {took * 1000:.0f} ms")
    # Exactly the home's sequence, and the same records (nothing lost, nothing twice).
    deadline = time.monotonic() + HEAL_BOUND_S
    while _cursor(clouds["gcp"]) != _head(clouds["aws"]):
        assert time.monotonic() < deadline, "gcp did not reach the home's head"
        time.sleep(0.1)
    rows = {}
    for name in ("aws", "gcp"):
        db = clouds[name].database()
        try:
            rows[name] = db.fetch(
                "SELECT id, key_hash, team_id, project_id, revoked_at FROM virtual_keys "
                "WHERE id IN (?, ?) ORDER BY id",
                (known["id"], fresh["id"]),
            )
        finally:
            db.close()
    assert rows["gcp"] == rows["aws"] and len(rows["aws"]) == 2
    limit = clouds["gcp"].admin(
        "GET", f"/admin/limits/key/{fresh['id']}", params={"consistency": "local"}
    )
    assert limit.json()["rpm"] == 1119  # the last of the backlog, applied in order
    seen = _metrics(clouds["gcp"])
    assert (
        seen["aigw_gov_feed_applied_seq"] == seen["aigw_gov_feed_head_seq"] == _head(clouds["aws"])
    )
    assert seen["aigw_gov_feed_silence_seconds"] < 2.0


def test_the_internal_endpoint_admits_only_a_peer_token(clouds: Multicloud) -> None:
    """Item 12 of the record's ready list: no token, a virtual key, the admin key, a token
    for another audience, from an unknown issuer, for another subject, or expired: 401.
    A peer's own token is admitted (the feed answers with a stream of lines)."""
    url = clouds["aws"].internal_url + "/internal/v1/changes"
    azure = clouds.identities["azure"]
    key = _create_key(clouds["aws"], "not-a-peer")["key"]
    from tests.multicloud.identity import CloudIdentity

    stranger = CloudIdentity("stranger")
    try:
        refused = {
            "no token": None,
            "a virtual key": key,
            "the admin key": "process-admin-key",
            "another audience": azure.mint(aud="someone-else"),
            "an unknown issuer": stranger.mint(),
            "another subject": azure.mint(sub="system:serviceaccount:default:default"),
            "expired": azure.mint(lifetime_s=-120),
            "a token azure signed claiming gcp's issuer": azure.mint(
                iss=clouds.identities["gcp"].issuer
            ),
        }
    finally:
        stranger.remove()
    for what, token in refused.items():
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = httpx.get(url, headers=headers, timeout=5)
        assert response.status_code == 401, (what, response.text)
        assert response.json()["error"]["code"] == "peer_unauthenticated", what
    counted = _metrics(clouds["aws"])
    for sample in (
        'aigw_gov_peer_auth_failures{peer="unknown",reason="missing_token"}',
        'aigw_gov_peer_auth_failures{peer="unknown",reason="unknown_issuer"}',
        'aigw_gov_peer_auth_failures{peer="azure",reason="wrong_audience"}',
        'aigw_gov_peer_auth_failures{peer="azure",reason="wrong_subject"}',
        'aigw_gov_peer_auth_failures{peer="azure",reason="expired"}',
    ):
        assert counted.get(sample, 0) >= 1, (sample, counted)
    with httpx.stream(
        "GET", url, headers={"authorization": f"Bearer {azure.mint()}"}, timeout=5
    ) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"] == "application/x-ndjson"
        first = next(stream.iter_lines())
    assert '"head"' in first


def test_the_internal_endpoint_is_served_only_on_its_own_listener(clouds: Multicloud) -> None:
    """Issue 29 item 4: ``/internal/v1/*`` answers on ``governance.global.port`` only (a
    peer's token is admitted there); the public port refuses it with 404 even with that
    token, and the internal listener serves nothing of the public API (404), so the
    channel's load balancer and NetworkPolicy can admit the internal port alone."""
    _assert_internal_only(clouds)


def test_the_internal_endpoint_is_served_only_on_its_own_listener_under_uvicorn() -> None:
    """The same separation with the other server (``aigw serve --server uvicorn``, here
    through ``$AIGW_SERVER``): both listeners are bound by the CLI and handed to uvicorn,
    and the app tells them apart by the port in the ASGI scope."""
    with Multicloud.start(("aws", "azure"), env={"AIGW_SERVER": "uvicorn"}) as pair:
        # uvicorn it is: its own answer to a malformed request (ours answers JSON).
        host, port = pair["aws"].url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            raw.sendall(b"GARBAGE\r\n\r\n")
            assert raw.recv(4096).endswith(b"Invalid HTTP request received.")
        _assert_internal_only(pair)
        # The feed is served to the peer on that listener: a key created at the home
        # works in the follower.
        key = _create_key(pair["aws"], "p-uvicorn")["key"]
        _until(pair["azure"], key, 200, BOUND_S)


def _assert_internal_only(clouds: Multicloud) -> None:
    aws = clouds["aws"]
    peer = {"authorization": f"Bearer {clouds.identities['azure'].mint()}"}
    public = httpx.get(aws.url + "/internal/v1/changes", headers=peer, timeout=5)
    assert public.status_code == 404, public.text
    assert public.json()["error"]["code"] == "unknown_url"
    with httpx.stream(
        "GET", aws.internal_url + "/internal/v1/changes", headers=peer, timeout=5
    ) as stream:
        assert stream.status_code == 200
    for path in ("/v1/models", "/health/ready", "/admin/keys", "/metrics"):
        response = httpx.get(aws.internal_url + path, headers=peer, timeout=5)
        assert response.status_code == 404, (path, response.text)
    assert aws.admin("GET", "/admin/keys").status_code == 200  # the public port still serves
