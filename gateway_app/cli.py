"""``serve``, ``migrate``, ``audit-maintain``, ``models`` and ``admin``: shared by
``python -m gateway_app`` and ``aigw``.

Imports nothing heavy at module level, so ``aigw --help`` stays instant.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_LISTEN = 3


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``serve``, ``migrate``, ``audit-maintain`` and the others on a subparser set."""
    serve = sub.add_parser("serve", help="run the gateway (OpenAI-compatible API)")
    serve.add_argument(
        "--config", help="config YAML (default: $AIGW_CONFIG or the bundled example)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument("--log-level", default="info", help="log level")
    serve.add_argument(
        "--server",
        choices=("httptools", "uvicorn"),
        default=os.environ.get("AIGW_SERVER", "httptools"),
        help="HTTP server: the gateway's own httptools server (default, fastest; see "
        "bench/RESULTS.md) or uvicorn (default from $AIGW_SERVER)",
    )
    serve.set_defaults(handler=serve_command)
    models = sub.add_parser(
        "models", help="list the configured models, their deployments and where prices come from"
    )
    models.add_argument(
        "--config", help="config YAML (default: $AIGW_CONFIG or the bundled example)"
    )
    models.add_argument(
        "--unpriced", action="store_true", help="only deployments without a price (exit 1 if any)"
    )
    models.set_defaults(handler=models_command)
    migrate = sub.add_parser(
        "migrate", help="apply database schema migrations, then audit-maintain"
    )
    migrate.add_argument(
        "--config", help="config YAML (default: $AIGW_CONFIG or the bundled example)"
    )
    migrate.set_defaults(handler=migrate_command)
    maintain = sub.add_parser(
        "audit-maintain",
        help="create the coming days' audit partitions, roll up the closed days for the "
        "analytics and drop the days past governance.audit_retention_days (run daily; "
        "idempotent)",
    )
    maintain.add_argument(
        "--config", help="config YAML (default: $AIGW_CONFIG or the bundled example)"
    )
    maintain.add_argument(
        "--ahead-days",
        type=int,
        default=None,
        help="partitions made ahead of today (default 14)",
    )
    maintain.set_defaults(handler=audit_maintain_command)
    from gateway_app.admin_cli import add_admin_command  # standard library only: still quick

    add_admin_command(sub)


def serve_command(args: argparse.Namespace) -> int:
    """Validate the config, then run the server (uvloop + httptools, ours or uvicorn)."""
    from gateway_app.cache.hook import check_semantic_runtime
    from gateway_app.config import ConfigError, load

    if args.config:
        os.environ["AIGW_CONFIG"] = os.path.abspath(args.config)
    try:
        config = load()  # fail here, with the key and the reason, before binding
        check_semantic_runtime(config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    from gateway_app.config.prices import startup_refusal, unpriced_error
    from gateway_app.environment import Environment
    from gateway_app.governance.service import enabled

    governance_on = enabled(config, Environment.from_environ())
    refused = startup_refusal(config, governance_on=governance_on)
    if refused:
        print(f"error: {unpriced_error(refused)}", file=sys.stderr)
        return EXIT_CONFIG
    # The global plane's internal endpoint gets its own listener (governance.global.port).
    plane = config.governance.global_ if governance_on else None
    internal_port = plane.port if plane is not None else None
    if internal_port == args.port:
        print(
            f"error: governance.global.port {internal_port} is the public --port too; give "
            "the internal listener its own port (the default is 8443)",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    if args.workers > 1:
        # Before any worker (forked by either server) imports prometheus_client:
        # /metrics then sums all workers.
        from gateway_app.observability.multiproc import prepare_multiprocess_dir

        prepare_multiprocess_dir()
    if args.server == "httptools":
        from gateway_app.app import create_app
        from gateway_app.server import HttpLimits, ListenError, run

        try:
            return run(
                create_app,
                args.host,
                args.port,
                config.server.graceful_shutdown_s,
                workers=max(1, args.workers),
                log_level=args.log_level,
                limits=HttpLimits.from_config(config.server),
                internal_port=internal_port,
            )
        except ListenError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_LISTEN
    from gateway_app.server import ListenError, listen

    try:  # uvicorn would print a traceback: bind here (both listeners) and hand over
        sockets = [listen(args.host, args.port)]
        if internal_port is not None:
            sockets.append(listen(args.host, internal_port))
    except ListenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_LISTEN
    _run_uvicorn(args, config.server.graceful_shutdown_s, sockets)
    return EXIT_OK


def _run_uvicorn(args: argparse.Namespace, grace_s: float, sockets: list[Any]) -> None:
    """uvicorn on the already bound ``sockets`` (the public and the internal listener)."""
    import uvicorn
    from uvicorn.supervisors.multiprocess import Multiprocess

    for sock in sockets:
        sock.setblocking(True)  # as uvicorn's own bind_socket leaves them
    settings = uvicorn.Config(
        "gateway_app.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers if args.workers > 1 else None,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level=args.log_level,
        timeout_graceful_shutdown=int(grace_s) or None,
        server_header=False,
        date_header=False,
    )
    if args.workers > 1:
        Multiprocess(settings, sockets=sockets).run()
    else:
        uvicorn.Server(settings).run(sockets=sockets)


def models_command(args: argparse.Namespace) -> int:
    """Print every deployment with its price (USD per million tokens) and its source."""
    from gateway_app.config import ConfigError, load
    from gateway_app.config.prices import Pricing

    try:
        config = load(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    pricing = Pricing()
    rows = []
    for name, model in config.models.items():
        for deployment in model.deployments:
            provider_type = config.providers[deployment.provider].type
            source = pricing.source(deployment, provider_type)
            prices = pricing.prices(deployment, provider_type)
            if args.unpriced and source is not None:
                continue
            shown = (
                f"{prices.input * 1e6:g} in / {prices.output * 1e6:g} out"
                if source is not None
                else "NO PRICE: set models.<model>.deployments[].price"
            )
            rows.append((name, deployment.id, shown, source or "-"))
    width = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(_MODEL_HEADER)]
    for row in (_MODEL_HEADER, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, width, strict=True)).rstrip())
    return 1 if args.unpriced and rows else EXIT_OK


_MODEL_HEADER = ("model", "deployment", "USD per million tokens", "price from")


def _owner_database(command: str) -> tuple[Any, str | None, bool] | int:
    """The database a schema command runs on, as the owner when one is configured:
    (database, the app role's URL, whether it is the owner's), or an exit code.

    With the schema owner (the managed server's admin) from ``AIGW_MIGRATION_SECRET``
    (a secret in the cloud's secret store, read with the Job's own identity: see
    :mod:`gateway_app.credentials.database`) or ``AIGW_MIGRATION_DATABASE_URL``, the
    owner; without either, ``AIGW_DATABASE_URL`` itself.
    """
    from gateway_app.credentials.database import OwnerCredentialError, owner_database_url
    from gateway_app.environment import Environment
    from gateway_app.governance.storage import ConnectionName, Database

    # The Job's connection as pg_stat_activity shows it (docs/operations/sizing.md).
    name = ConnectionName.MIGRATE if command == "migrate" else ConnectionName.AUDIT_MAINTAIN
    env = Environment.from_environ()
    app_url = env.database_url
    try:
        owner_url = owner_database_url(
            env.migration_database_url, env.database_url, env.migration_secret
        )
    except OwnerCredentialError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if not app_url and not owner_url:
        print(
            f"{command}: AIGW_DATABASE_URL is not set; the embedded SQLite database is "
            "migrated and its retention applied by the gateway itself"
        )
        return EXIT_OK
    if owner_url and not app_url:
        print(
            f"{command}: AIGW_MIGRATION_DATABASE_URL is set but AIGW_DATABASE_URL is not; set "
            f"AIGW_DATABASE_URL to the gateway role's URL so {command} can create that role",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    db = Database(owner_url or app_url or "", ca_file=env.database_ca_file, name=name)
    return db, app_url, bool(owner_url)


def _retention(command: str, config_path: str | None) -> tuple[int | None, bool] | str:
    """``governance.audit_retention_days`` of the config and whether this cloud is a
    follower of the global governance plane (it keeps what it has not shipped), or the
    error to print."""
    from gateway_app.config import ConfigError, load
    from gateway_app.environment import Environment

    try:
        governance = load(config_path).governance
    except ConfigError as exc:
        return f"{command}: {exc}"
    plane = governance.global_
    cloud = plane and (plane.cloud or Environment.from_environ().cloud)
    return governance.audit_retention_days, plane is not None and cloud != plane.home


def _schema_target(
    command: str, config_path: str | None
) -> tuple[tuple[int | None, bool], Any, str | None, bool] | int:
    """What a schema command needs: the retention (:func:`_retention`) and the database
    (:func:`_owner_database`), or the exit code after printing why not."""
    target = _owner_database(command)
    if isinstance(target, int):
        return target  # (no database: nothing to do, whatever the config)
    retention = _retention(command, config_path)
    if isinstance(retention, str):
        target[0].close()
        print(retention, file=sys.stderr)
        return EXIT_CONFIG
    return (retention, *target)


def _maintain(
    command: str,
    db: Any,
    retention: tuple[int | None, bool],
    ahead_days: int | None = None,
    *,
    roll_up: bool = True,
) -> int:
    """Run the audit maintenance and print what it did; the exit code. ``roll_up``: roll
    up the closed days too (``audit-maintain``; ``migrate`` leaves it to the CronJob, so a
    deploy never waits for the first roll-up of years of rows)."""
    from gateway_app.governance import retention as audit_retention
    from gateway_app.governance.storage import DatabaseError

    retention_days, follower = retention
    try:
        done = audit_retention.maintain(
            db,
            retention_days,
            ahead_days=audit_retention.AHEAD_DAYS if ahead_days is None else ahead_days,
            keep_unshipped=follower,
            roll_up=roll_up,
            rollup_budget_s=audit_retention.ROLLUP_BUDGET_S,
        )
    except DatabaseError as exc:
        print(f"{command}: audit maintenance failed: {exc}", file=sys.stderr)
        return 1
    kept = f"{retention_days} days" if retention_days is not None else "every day"
    print(
        f"{command}: audit partitions: {len(done.created)} created, {len(done.dropped)} "
        f"dropped, {done.moved} rows moved from the default partition, {done.deleted} "
        f"expired rows deleted (retention: {kept})"
    )
    rolled = done.rolled_up
    if roll_up:
        print(
            f"{command}: audit roll-ups: {len(rolled.days)} days rolled up "
            f"({rolled.rows} events), {rolled.folded} late events folded in, "
            f"{len(rolled.pending)} closed days left for the next run"
        )
    for name in done.dropped:
        print(f"{command}: dropped {name}")
    for name in done.kept:
        print(f"{command}: kept: {name}")
    for failure in done.failed:
        print(f"{command}: not done (the next run retries): {failure}", file=sys.stderr)
    return 1 if done.failed else EXIT_OK


def migrate_command(args: argparse.Namespace) -> int:
    """Apply schema migrations to PostgreSQL (SQLite migrates itself at start-up), then
    run the audit maintenance (:func:`audit_maintain_command`).

    As the schema owner when one is configured (see :func:`_owner_database`), then
    create or update the gateway's role named in ``AIGW_DATABASE_URL`` with row access
    only (see :meth:`~gateway_app.governance.storage.Database.ensure_app_role`).
    """
    from gateway_app.governance.storage import DatabaseError, app_credentials

    target = _schema_target("migrate", args.config)
    if isinstance(target, int):
        return target
    retention, db, app_url, as_owner = target
    try:
        applied = db.migrate()
        role = db.ensure_app_role(app_url or "") if as_owner else None
        if applied:
            print(f"migrate: applied {', '.join(str(v) for v in applied)}")
        else:
            print("migrate: the database is up to date")
        if role is not None:
            print(f"migrate: app role {app_credentials(app_url or '')[0]}: {role}")
        return _maintain("migrate", db, retention, roll_up=False)
    except DatabaseError as exc:
        print(f"migrate: failed: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()


def audit_maintain_command(args: argparse.Namespace) -> int:
    """Create the audit partitions of today and the next ``--ahead-days`` days, roll up the
    closed days (:mod:`gateway_app.governance.rollup`) and drop the days past
    ``governance.audit_retention_days`` once rolled up (see
    :func:`gateway_app.governance.retention.maintain`), with the same credentials as
    ``migrate``. Exit 1 if a change was not made (the next run retries it)."""
    if args.ahead_days is not None and args.ahead_days < 0:
        print(
            f"audit-maintain: --ahead-days is {args.ahead_days}: give 0 or more days",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    target = _schema_target("audit-maintain", args.config)
    if isinstance(target, int):
        return target
    retention, db, _, _ = target
    try:
        return _maintain("audit-maintain", db, retention, args.ahead_days)
    finally:
        db.close()


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m gateway_app`` (also read by the CLI reference)."""
    commands = argparse.ArgumentParser(prog="python -m gateway_app", description="The AI gateway")
    add_commands(commands.add_subparsers(dest="command", metavar="COMMAND"))
    return commands


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gateway_app serve|migrate|audit-maintain|models|admin``."""
    commands = parser()
    args = commands.parse_args(argv)
    if not getattr(args, "command", None):
        commands.print_help()
        return EXIT_CONFIG
    return int(args.handler(args))
