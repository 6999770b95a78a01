"""``runledger serve``: the API on uvicorn, with the projection runner and the executor in the
same process unless disabled.

With ``--workers N`` (N > 1) uvicorn runs N API processes from the app factory
``api.app:create_app_from_env``; the projection runner and the executor then run once, in the
parent (supervisor) process, so there is one runner and one executor per ``serve``. The lease
monitor runs in every ``serve`` (in the executor, or on its own with ``--no-executor``: outside
engines claim runs through the API), one active per database.
SIGTERM or SIGINT stops uvicorn gracefully; then the executor, the runner and the ledger stop.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

import psycopg
import structlog
from eventsourcing.persistence import PersistenceError

from cli import UsageError
from cli.common import settings_from
from ledger.settings import Settings

if TYPE_CHECKING:
    from api.runtime import Runtime

log = structlog.get_logger()


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("serve", help="run the HTTP API (and runner and executor)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help="TCP port (default: $RUNLEDGER_PORT or 8000)")
    parser.add_argument("--workers", type=int, default=1, help="API processes (default 1)")
    parser.add_argument("--concurrency", type=int, default=2, help="runs executed at once")
    parser.add_argument("--no-executor", action="store_true", help="do not execute runs here")
    parser.add_argument("--no-projections", action="store_true", help="do not run the projection runner here")
    parser.set_defaults(handler=serve)


def start_background(
    settings: Settings, runtime: Runtime, *, projections: bool, executor: bool, concurrency: int
) -> list[Callable[[], None]]:
    """Start the projection runner and the executor; the functions that stop them."""
    stops: list[Callable[[], None]] = []
    if projections:
        try:
            from projections.runner import ProjectionRunner  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            log.warning("projection_runner_unavailable", error=str(exc))
        else:
            wait = settings.projection_batch_ms / 1000
            runner = ProjectionRunner(settings, health=runtime.health, poll_interval=wait, linger=wait)
            runner.start()
            stops.append(runner.stop)  # the runner logs projection_runner_started itself
            from ledger.retention.job import RetentionJob  # the periodic retention pass (SPEC 11)

            retention = RetentionJob(runtime.ledger, interval=settings.retention_interval_seconds)
            retention.start()
            stops.append(retention.stop)
    from ledger.integrity.merkle_follow import TreeFollower  # keeps the Merkle tree caught up

    follower = TreeFollower(settings, health=runtime.health)
    follower.start()
    stops.append(follower.stop)
    if executor:
        try:
            from executor import Executor
        except ImportError as exc:  # pragma: no cover - part of the package
            log.warning("executor_unavailable", error=str(exc))
        else:
            worker = Executor(
                runtime.ledger,
                runtime.files,
                settings,
                candidates=runtime.views.pending_run_ids,
                lapsed=runtime.views.lapsed_run_ids,
                concurrency=concurrency,
                health=runtime.health,
            )
            worker.start()
            stops.append(worker.stop)
            return stops
    # No executor here, but outside engines claim runs through this API: their leases must
    # lapse all the same (the monitor is one per database, see executor.leases).
    from executor.leases import LeaseMonitor

    monitor = LeaseMonitor(
        runtime.ledger, settings, lapsed=runtime.views.lapsed_run_ids, health=runtime.health
    )
    monitor.start()
    stops.append(monitor.stop)
    return stops


def _note_signal(sig: int, frame: FrameType | None) -> None:
    log.info("shutdown_signal_received", signal=signal.Signals(sig).name)


def banner(base_url: str, app: Any) -> str:
    """What ``serve`` prints once it listens: its URL, the docs URL, and the UI URL when the
    app serves one at ``/`` (``api.ui`` does; an app without it gets no line pointing at a 404)."""
    lines = [f"runledger is serving at {base_url}", f"  API docs: {base_url}/docs"]
    from starlette.routing import Match

    root = {"type": "http", "path": "/", "method": "GET", "root_path": "", "headers": [], "query_string": b""}
    # Routes of an included router sit in ``app.routes`` as one router entry: ask each route
    # whether it answers ``GET /``, rather than compare paths.
    if any(route.matches(root)[0] == Match.FULL for route in app.routes):
        lines.append(f"  web UI:   {base_url}/")
    return "\n".join(lines)


def _record_first_admin(runtime: Any, token: str) -> None:
    """The first admin token, made at the first start, is a ledger event too (SPEC 10)."""
    from api.auth import TokenInfo, record_issued

    principal = runtime.tokens.authenticate(token)
    if principal is not None:
        info = TokenInfo(principal.token_id, principal.name, principal.role, "", None)
        record_issued(runtime.ledger, info, token, by="system:first-start")


def serve(args: argparse.Namespace) -> int:
    import uvicorn  # imported here so that other commands start fast

    from api.app import create_app
    from api.auth import ensure_admin_token
    from api.logging import configure_logging
    from api.runtime import Runtime
    from api.transport import HTTP, LOOP
    from cli.supervisor import run_workers

    settings = settings_from(args)
    configure_logging(settings.log_format, settings.log_level)
    port = settings.port if args.port is None else args.port
    if args.workers < 1 or not 0 <= port <= 65535:
        raise ValueError("--workers must be at least 1 and --port a TCP port")
    try:
        runtime = Runtime.open(settings)
    except (PersistenceError, psycopg.Error, sqlite3.Error, OSError) as exc:
        raise UsageError(f"cannot open the database: {exc}") from None
    token = ensure_admin_token(runtime.tokens, settings.state_dir)
    if token is not None:
        _record_first_admin(runtime, token)
        print(f"admin token (shown once; also in {settings.state_dir / 'admin-token'}): {token}", flush=True)
    stops = start_background(
        settings,
        runtime,
        projections=not args.no_projections,
        executor=not args.no_executor,
        concurrency=args.concurrency,
    )
    log.info("server_starting", host=args.host, port=port, workers=args.workers)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal against the
    # handlers that were installed before it; ours only note it, so the cleanup below runs
    # and the process exits 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _note_signal)
    app = create_app(settings, runtime=runtime)
    try:
        if args.workers > 1:
            os.environ["RUNLEDGER_DATABASE_URL"] = settings.database_url
            print(banner(f"http://{_url_host(args.host)}:{port}", app), flush=True)
            run_workers(
                "api.app:create_app_from_env",
                host=args.host,
                port=port,
                workers=args.workers,
                log_config=None,
                access_log=False,
                http=HTTP,
                loop=LOOP,
            )
        else:
            config = uvicorn.Config(
                app,
                host=args.host,
                port=port,
                log_config=None,
                access_log=False,
                lifespan="on",
                http=HTTP,
                loop=LOOP,
            )
            _announcing_server(config, app).run()
    finally:
        for stop in reversed(stops):
            stop()
        runtime.close()
        log.info("server_stopped")
    return 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _announcing_server(config: Any, app: Any) -> Any:
    """A uvicorn server that prints the banner once it listens (with the real port, should
    ``--port 0`` have let the system choose one). Built here: uvicorn is imported lazily."""
    import uvicorn

    class AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.should_exit or not self.servers:
                return
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            print(banner(f"http://{_url_host(str(host))}:{port}", app), flush=True)

    return AnnouncingServer(config)
