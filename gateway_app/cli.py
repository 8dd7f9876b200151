"""``serve`` and ``migrate``: shared by ``python -m gateway_app`` and ``aigw``.

Imports nothing heavy at module level, so ``aigw --help`` stays instant.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

EXIT_OK = 0
EXIT_CONFIG = 2


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``serve`` and ``migrate`` on an argparse subparser set."""
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
    migrate = sub.add_parser("migrate", help="apply database schema migrations")
    migrate.set_defaults(handler=migrate_command)


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
    if args.workers > 1:
        # Before any worker (forked by either server) imports prometheus_client:
        # /metrics then sums all workers.
        from gateway_app.observability.multiproc import prepare_multiprocess_dir

        prepare_multiprocess_dir()
    if args.server == "httptools":
        from gateway_app.app import create_app
        from gateway_app.server import run

        run(
            create_app,
            args.host,
            args.port,
            config.server.graceful_shutdown_s,
            workers=max(1, args.workers),
            log_level=args.log_level,
        )
        return EXIT_OK
    import uvicorn

    uvicorn.run(
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
        timeout_graceful_shutdown=int(config.server.graceful_shutdown_s) or None,
        server_header=False,
        date_header=False,
    )
    return EXIT_OK


def migrate_command(args: argparse.Namespace) -> int:
    """Apply schema migrations to ``AIGW_DATABASE_URL`` (SQLite also migrates at start-up)."""
    from gateway_app.governance.storage import Database, DatabaseError

    if not os.environ.get("AIGW_DATABASE_URL"):
        print(
            "migrate: AIGW_DATABASE_URL is not set; the embedded SQLite database is migrated "
            "when the gateway starts"
        )
        return EXIT_OK
    db = Database.from_env("unused.sqlite3")
    try:
        applied = db.migrate()
    except DatabaseError as exc:
        print(f"migrate: failed: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
    if applied:
        print(f"migrate: applied {', '.join(str(v) for v in applied)}")
    else:
        print("migrate: the database is up to date")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gateway_app serve|migrate``."""
    parser = argparse.ArgumentParser(prog="python -m gateway_app", description="The AI gateway")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_commands(sub)
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_CONFIG
    return int(args.handler(args))
