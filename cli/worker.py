"""``runledger worker [--concurrency N]``: the executor as a process of its own.

It claims pending runs (candidates from the projections' run views, or straight from the
events table with ``--scan-events``), executes them, renews their leases, fails runs of dead
workers with ``worker_lost``, and stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable
from typing import Any

import structlog

from api.logging import configure_logging
from cli.common import settings_from
from executor import Executor
from executor.candidates import EventScan
from ledger.service import Ledger
from ledger.store.filestore import FileStore

log = structlog.get_logger()


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("worker", help="execute pending runs (the executor alone)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=2,
        help="runs executed at once, and tasks at once within a run (default 2)",
    )
    parser.add_argument("--worker-id", default=None, help="default: host:pid:random")
    parser.add_argument(
        "--scan-events",
        action="store_true",
        help="find pending runs in the events table instead of the run views "
        "(no projection runner needed; for small ledgers)",
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=10.0,
        help="on SIGTERM, how long running runs may finish before they are stopped and failed (default 10)",
    )
    parser.set_defaults(handler=worker)


def _sources(
    args: argparse.Namespace, ledger: Ledger, settings: Any
) -> tuple[Callable[[int], list[str]], Callable[[str], list[str]], Any]:
    if not args.scan_events:
        try:
            from projections import ReadModels  # type: ignore[attr-defined,unused-ignore]
        except ImportError as exc:
            log.warning("read_models_unavailable_scanning_events", error=str(exc))
        else:
            views = ReadModels(settings)
            return views.pending_run_ids, views.lapsed_run_ids, views
    scan = EventScan(ledger)
    return scan.pending_run_ids, scan.lapsed_run_ids, None


def worker(args: argparse.Namespace) -> int:
    if args.concurrency < 1:
        raise ValueError("--concurrency must be at least 1")
    settings = settings_from(args)
    configure_logging(settings.log_format, settings.log_level)
    ledger = Ledger(settings)
    views = None
    try:
        candidates, lapsed, views = _sources(args, ledger, settings)
        executor = Executor(
            ledger,
            FileStore(settings.file_store_dir),
            settings,
            candidates=candidates,
            lapsed=lapsed,
            concurrency=args.concurrency,
            worker_id=args.worker_id,
        )
        stop = threading.Event()

        def on_signal(signum: int, _frame: object) -> None:
            log.info("worker_signalled", signal=signal.Signals(signum).name)
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        executor.start()
        log.info("worker_started", worker_id=executor.worker_id, concurrency=args.concurrency)
        while not stop.wait(1.0):
            pass
        executor.stop(drain_seconds=args.drain_seconds)
    finally:
        if views is not None:
            views.close()
        ledger.close()
    log.info("worker_stopped")
    return 0
