"""``runledger project`` (the projection runner as its own process) and
``runledger projections status|rebuild [NAME]``."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

import structlog

from api.logging import configure_logging
from cli.common import settings_from
from projections.runner import ProjectionRunner
from projections.views import default_views, view_named

log = structlog.get_logger()


def register(subparsers: Any) -> None:
    project_parser = subparsers.add_parser(
        "project", help="run the projection runner (catch up, then follow new events)"
    )
    project_parser.add_argument(
        "--batch-size", type=int, default=1000, help="events per transaction (default 1000)"
    )
    project_parser.set_defaults(handler=project)

    parser = subparsers.add_parser("projections", help="projection status and rebuilds")
    commands = parser.add_subparsers(dest="projections_command", metavar="COMMAND", required=True)
    status_parser = commands.add_parser("status", help="each view's schema version, position, lag and state")
    status_parser.add_argument("--json", action="store_true", help="print JSON")
    status_parser.set_defaults(handler=status)
    rebuild_parser = commands.add_parser(
        "rebuild", help="build new tables from event 0 while the old ones serve, then swap"
    )
    rebuild_parser.add_argument(
        "name", nargs="?", default=None, help="one view (summaries, stats, lineage, audit); default all"
    )
    rebuild_parser.set_defaults(handler=rebuild)


def project(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise ValueError("--batch-size must be at least 1")
    settings = settings_from(args)
    configure_logging(settings.log_format, settings.log_level)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal_received", signal=signal.Signals(signum).name)
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    runner = ProjectionRunner(settings, batch_size=args.batch_size)
    runner.start()
    retention = None
    if settings.retention_interval_seconds > 0:  # the periodic retention pass (SPEC 11) beside it
        from ledger.retention.job import RetentionJob
        from ledger.service import Ledger

        retention = RetentionJob(Ledger(settings), interval=settings.retention_interval_seconds)
        retention.start()
    try:
        stopping.wait()
    finally:
        if retention is not None:
            retention.stop()
            retention.ledger.close()
        runner.stop()
    return 0


def status(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    configure_logging(settings.log_format, settings.log_level)
    rows = ProjectionRunner(settings).status()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'NAME':<10} {'SCHEMA':>6} {'POSITION':>10} {'LAG':>8}  STATE")
    for row in rows:
        print(
            f"{row['name']:<10} {row['schema_version']:>6} {row['position']:>10} "
            f"{row['lag']:>8}  {row['state']}"
        )
    return 0


def rebuild(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    configure_logging(settings.log_format, settings.log_level)
    if args.name is not None:
        view_named(default_views(), args.name)  # ValueError -> exit 2
    runner = ProjectionRunner(settings)
    try:
        rebuilt = runner.rebuild(args.name)
    except RuntimeError as exc:
        print(f"runledger: error: {exc}", file=sys.stderr)
        return 1
    for name in rebuilt:
        print(f"rebuilt {name}", file=sys.stderr)
    return 0
