"""Each PostgreSQL connection the gateway opens shows what holds it in ``pg_stat_activity``.

An operator paged for "remaining connection slots are reserved" reads
``application_name`` there (docs/operations/sizing.md, "PostgreSQL connections"): a
gateway process's own connection, its admin reports', the follower's audit shipper's,
the migration Job's and the ``audit-maintain`` CronJob's each carry their name, read
back from the server; a name the operator put in the URL (or ``PGAPPNAME``) wins. (The
audit drain's own, ``aigw-audit-drain``, is read back in
``test_audit_rows.py::test_the_drain_writes_postgres_on_the_loop_over_its_own_connection``.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gateway_app import cli
from gateway_app.config import parse
from gateway_app.environment import Environment
from gateway_app.governance.service import Governance
from gateway_app.governance.shipping import AuditShipper
from gateway_app.governance.storage import ConnectionName, Database, postgres_dsn
from tests.gateway.conftest import run_async
from tests.gateway.governance.processes import gateway_config
from tests.gateway.governance.services import PostgresServer


def _name(db: Database) -> str:
    """The ``application_name`` the server has for ``db``'s connection (opened now)."""
    return str(db.fetch("SELECT current_setting('application_name') AS name")[0]["name"])


@pytest.fixture
def governance(postgres_server: PostgresServer) -> Iterator[Governance]:
    url = postgres_server.new_database("names")
    setup = Database(url)
    setup.migrate()
    setup.close()
    config = parse(gateway_config("http://127.0.0.1:9"))
    governance = Governance.from_environment(
        config, Environment(database_url=url, key_hash_secret="s")
    )
    yield governance
    run_async(governance.stop())


def test_a_gateway_process_names_its_connection_and_its_admin_reports(
    governance: Governance,
) -> None:
    assert _name(governance.db) == "aigw-gateway"
    assert _name(governance.reports_db) == "aigw-admin-reports"


def test_the_audit_shipper_names_its_own_connection(governance: Governance) -> None:
    async def post(*_: Any) -> Any:
        raise AssertionError("not called")

    shipper = AuditShipper(governance.db, post, None, batch=10, interval_s=1, max_body=1000)
    marks = shipper._mark_db
    try:
        assert marks is not governance.db  # its own connection, beside the batches' selects
        assert _name(marks) == "aigw-audit-shipper"
    finally:
        marks.close()


@pytest.mark.parametrize(
    ("command", "name"), [("migrate", "aigw-migrate"), ("audit-maintain", "aigw-audit-maintain")]
)
def test_the_jobs_name_their_connection(
    command: str, name: str, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIGW_DATABASE_URL", postgres_server.url)
    for unset in ("AIGW_MIGRATION_DATABASE_URL", "AIGW_MIGRATION_SECRET"):
        monkeypatch.delenv(unset, raising=False)
    target = cli._owner_database(command)
    assert not isinstance(target, int), target
    db = target[0]
    try:
        assert _name(db) == name
    finally:
        db.close()


def test_an_application_name_in_the_url_or_pgappname_wins(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    named = Database(
        postgres_server.url + "?application_name=ops-console", name=ConnectionName.GATEWAY
    )
    try:
        assert _name(named) == "ops-console"
    finally:
        named.close()
    monkeypatch.setenv("PGAPPNAME", "ops-env")
    from_env = Database(postgres_server.url, name=ConnectionName.GATEWAY)
    try:
        assert _name(from_env) == "ops-env"
    finally:
        from_env.close()


def test_the_name_goes_to_libpq_as_the_fallback_beside_the_url_s_own_settings() -> None:
    dsn = postgres_dsn(
        "postgresql://u:p@db.internal:5432/aigw?application_name=ops&connect_timeout=3",
        "/etc/ca.pem",
        ConnectionName.ADMIN_REPORTS,
    )
    assert dsn == (
        "postgresql://u:p@db.internal:5432/aigw?application_name=ops&connect_timeout=3"
        "&fallback_application_name=aigw-admin-reports&sslrootcert=%2Fetc%2Fca.pem"
        "&sslmode=verify-full"
    )
    # Without a name (a caller's own Database), libpq's default: none.
    assert "application_name" not in postgres_dsn("postgresql://127.0.0.1/aigw", None)
