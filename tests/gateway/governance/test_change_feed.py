"""The change feed of control data (issue 29): written with each change, applied once, in order."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway_app.config import ConfigError, load
from gateway_app.environment import Environment
from gateway_app.governance import changes
from gateway_app.governance.changes import Change, ChangeError, StaleEpoch
from gateway_app.governance.keys import KeyRecord, KeyStore, Limit
from gateway_app.governance.storage import Database


def _store(path: Path, name: str) -> KeyStore:
    db = Database(f"sqlite:///{path / name}")
    db.migrate()
    return KeyStore(db)


def test_every_write_appends_its_row_image_and_a_follower_applies_it_once(tmp_path: Path) -> None:
    home, follower = _store(tmp_path, "home.db"), _store(tmp_path, "follower.db")
    home.insert(KeyRecord("key_1", "h1", "t", "p"))
    home.claim_project("p", "t", 1.0)
    home.put_limit(Limit("team", "t", monthly_usd=5.0, team_id="t"))
    home.revoke("key_1", 2.0)
    assert home.revoke("key_1", 3.0) is False  # changed nothing: no change recorded
    home.delete_limit("team", "t")
    feed = changes.read(home.db, 0)
    assert [(c.seq, c.kind, c.op) for c in feed] == [
        (1, "key", "upsert"),
        (2, "project", "upsert"),
        (3, "limit", "upsert"),
        (4, "key", "upsert"),
        (5, "limit", "delete"),
    ]
    assert feed[3].body is not None and feed[3].body["revoked_at"] == 2.0  # the whole row
    # Over the wire and back, then applied; a replay of the same batch changes nothing.
    wire = [Change.parse(c.public()) for c in feed]
    assert changes.apply(follower.db, wire[:3], epoch=1)[0] == 3
    applied, fresh = changes.apply(follower.db, wire, epoch=1)
    assert applied == 5 and [c.seq for c in fresh] == [4, 5]
    assert changes.apply(follower.db, wire, epoch=1) == (5, [])
    assert follower.get("key_1") == home.get("key_1")
    assert follower.projects() == {"p": "t"} and follower.limits() == []
    assert changes.cursor(follower.db) == (1, 5)
    # A batch from an older home (a lower epoch than applied) is refused.
    with pytest.raises(StaleEpoch, match="epoch 0"):
        changes.apply(follower.db, wire, epoch=0)


def test_rows_from_before_the_feed_are_on_it(tmp_path: Path) -> None:
    """Migration 4 puts every existing key, project and limit on the feed, so a follower
    starting from 0 gets them all."""
    from gateway_app.governance import storage

    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    original = storage.MIGRATIONS
    storage.MIGRATIONS = original[:3]
    try:
        db.migrate()
    finally:
        storage.MIGRATIONS = original
    db.execute(
        "INSERT INTO virtual_keys (id, key_hash, team_id, project_id, created_at) "
        "VALUES ('key_old', 'h', 't', 'p', 1.0)"
    )
    db.execute("INSERT INTO projects (id, team_id, created_at) VALUES ('p', 't', 1.0)")
    db.execute("INSERT INTO limits (scope, scope_id, rpm) VALUES ('org', '*', 60)")
    assert db.migrate() == [v for v, _, _ in original[3:]]
    feed = changes.read(db, 0)
    assert [(c.kind, c.entity_id) for c in feed] == [
        ("key", "key_old"),
        ("project", "p"),
        ("limit", "org/*"),
    ]
    assert feed[0].body is not None and feed[0].body["key_hash"] == "h"
    assert KeyStore(db).put_limit(Limit("org", "*", rpm=120)) is None
    assert changes.head(db) == 4  # new changes continue the sequence


def test_shipped_audit_is_stored_once_and_only_as_the_senders(tmp_path: Path) -> None:
    from gateway_app.governance import audit

    home, gcp = _store(tmp_path, "home.db").db, _store(tmp_path, "gcp.db").db
    audit.set_cloud("gcp")
    try:
        events = [audit.event("request", key_id="k", cost_usd=0.5) for _ in range(3)]
    finally:
        audit.set_cloud(None)
    legacy = audit.event("request", key_id="k")  # from before the plane: no prefix
    assert all(e["event_id"].startswith("gcp.") and e["cloud"] == "gcp" for e in events)
    assert "." not in legacy["event_id"] and legacy["cloud"] is None
    audit.insert_events(gcp, [*events, legacy])
    batch = audit.unshipped(gcp, 10)
    assert len(batch) == 4
    assert audit.complete_through(home, ["gcp", "azure"]) == 0.0  # nobody reported yet
    assert audit.store_shipped(home, "gcp", batch[:2], through=100.0) == (2, 0)
    assert audit.store_shipped(home, "azure", [], through=50.0) == (0, 0)
    assert audit.complete_through(home, ["gcp", "azure"]) == 50.0  # the laggard
    # The answer was lost: the whole batch again, each event stored once.
    assert audit.store_shipped(home, "gcp", batch) == (2, 2)
    audit.mark_shipped(gcp, batch, 1.0)
    assert audit.unshipped(gcp, 10) == []
    rows = home.fetch("SELECT event_id, cloud, shipped_at FROM audit_events ORDER BY event_id")
    assert len(rows) == 4 and {row["cloud"] for row in rows} == {"gcp"}
    assert all(row["shipped_at"] is not None for row in rows)
    # A peer cannot ship another cloud's events (nothing of the batch is stored).
    audit.set_cloud("azure")
    try:
        foreign = audit.event("request", key_id="k")
    finally:
        audit.set_cloud(None)
    with pytest.raises(ValueError, match=r"is not gcp's"):
        audit.store_shipped(home, "gcp", [foreign])
    assert len(home.fetch("SELECT event_id FROM audit_events")) == 4


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seq": 0, "kind": "key", "op": "upsert", "body": {"id": "k"}}, "positive integer"),
        ({"seq": 1, "kind": "secret", "op": "upsert", "body": {}}, "unknown `kind` 'secret'"),
        ({"seq": 1, "kind": "key", "op": "merge", "body": {}}, "upsert or delete"),
        (
            {"seq": 7, "kind": "key", "op": "upsert", "body": {"id": "k", "owner": "x"}},
            "change 7: virtual_keys has no column 'owner'",
        ),
        ({"seq": 1, "kind": "limit", "op": "upsert", "body": {"scope": "org"}}, "'scope_id'"),
    ],
)
def test_a_change_that_cannot_be_applied_is_named(change: dict, message: str) -> None:
    with pytest.raises(ChangeError, match=message):
        Change.parse(change)


def _config(tmp_path: Path, plane: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "providers: {openai: {type: openai, api_key: sk-x}}\n"
        "models: {m: {deployments: [{provider: openai, model: gpt-4o-mini, "
        "price: {input_per_mtok: 1, output_per_mtok: 1}}]}}\n"
        f"governance:\n  enabled: true\n  global: {plane}\n"
    )
    return path


def test_the_plane_config_names_what_is_wrong(tmp_path: Path) -> None:
    peers = "{aws: {url: 'https://a:8443', issuer: 'https://oidc.a'}}"
    with pytest.raises(ConfigError, match="home 'gcp' is not among peers"):
        load(_config(tmp_path, f"{{home: gcp, peers: {peers}}}"))
    with pytest.raises(ConfigError, match=r"governance\.global\.homes"):
        load(_config(tmp_path, f"{{homes: aws, home: aws, peers: {peers}}}"))
    config = load(_config(tmp_path, f"{{home: aws, peers: {peers}}}"))
    assert config.governance.global_ is not None and config.governance.global_.home == "aws"
    from gateway_app.app import create_app

    with pytest.raises(ConfigError, match=r"governance\.global needs AIGW_REDIS_URL"):
        create_app(config, env=Environment(admin_key="a", key_hash_secret="s", cloud="aws"))
    redis = "redis://127.0.0.1:9"  # never connected: the checks come first
    with pytest.raises(ConfigError, match="set AIGW_CLOUD"):
        create_app(config, env=Environment(admin_key="a", key_hash_secret="s", redis_url=redis))
    with pytest.raises(ConfigError, match="AIGW_CLOUD 'gcp' is not among"):
        create_app(
            config,
            env=Environment(admin_key="a", key_hash_secret="s", redis_url=redis, cloud="gcp"),
        )
