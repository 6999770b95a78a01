"""``runledger workflows register``, ``trigger [--wait]``, ``runs list|show`` and ``replay``,
straight against the configured database (no server needed).

Data goes to stdout (JSON, or one run id), progress and messages to stderr. The principal
recorded for these commands is ``cli:<os user>``. ``trigger --wait`` exits 0 when the run
succeeds and 1 when it ends failed or killed.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from pathlib import Path
from typing import Any

from cli import UsageError
from cli.common import settings_from
from ledger.domain.definition import coerce_parameter_text, load_definition_text, parse_definition
from ledger.domain.status import TERMINAL, RunStatus
from ledger.service import Ledger
from projections.views.rundetail import run_events


def register(subparsers: Any) -> None:
    workflows = subparsers.add_parser("workflows", help="register workflow definitions")
    actions = workflows.add_subparsers(dest="workflows_command", metavar="ACTION", required=True)
    reg = actions.add_parser("register", help="register a YAML or JSON definition file")
    reg.add_argument("file", type=Path)
    reg.set_defaults(handler=register_workflow)

    trigger = subparsers.add_parser("trigger", help="trigger a run of a workflow")
    trigger.add_argument("name")
    trigger.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    trigger.add_argument("--idempotency-key")
    trigger.add_argument("--wait", action="store_true", help="show progress until the run ends")
    trigger.add_argument("--timeout", type=float, default=None, help="give up waiting after S s")
    trigger.set_defaults(handler=trigger_run)

    runs = subparsers.add_parser("runs", help="list and show runs")
    run_actions = runs.add_subparsers(dest="runs_command", metavar="ACTION", required=True)
    listing = run_actions.add_parser("list", help="newest runs first (from the read models)")
    listing.add_argument("--status")
    listing.add_argument("--workflow")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--json", action="store_true", help="one JSON summary per line")
    listing.set_defaults(handler=list_runs)
    show = run_actions.add_parser("show", help="one run's summary and tasks as JSON")
    show.add_argument("run_id")
    show.set_defaults(handler=show_run)

    replay = subparsers.add_parser("replay", help="run again from a run's trigger event")
    replay.add_argument("run_id")
    replay.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    replay.set_defaults(handler=replay_run)


def _principal() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # pragma: no cover - no user name on this system
        return "cli"


def _params(pairs: list[str], definition: dict[str, Any]) -> dict[str, Any]:
    parsed = parse_definition(definition)
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"-p expects KEY=VALUE, got {pair!r}")
        values[key] = coerce_parameter_text(parsed, key, text)
    return values


def _summary(ledger: Ledger, run_id: str) -> dict[str, Any]:
    from projections.views.summaries_fold import summary_from_events

    found = summary_from_events(run_events(ledger, run_id))
    assert found is not None
    return found


def register_workflow(args: argparse.Namespace) -> int:
    try:
        text = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {args.file}: {exc}") from None
    raw = load_definition_text(text)
    ledger = Ledger(settings_from(args))
    try:
        registration = ledger.register_workflow(raw, principal=_principal())
    finally:
        ledger.close()
    print(
        json.dumps(
            {
                "name": registration.name,
                "version": registration.version,
                "definition_hash": registration.definition_hash,
                "created": registration.created,
            }
        )
    )
    verb = "registered" if registration.created else "already registered as"
    print(f"{verb} {registration.name} version {registration.version}", file=sys.stderr)
    return 0


def trigger_run(args: argparse.Namespace) -> int:
    ledger = Ledger(settings_from(args))
    try:
        definition = ledger.get_workflow(args.name).active.definition
        triggered = ledger.trigger(
            workflow=args.name,
            parameters=_params(args.param, definition),
            principal=_principal(),
            idempotency_key=args.idempotency_key,
        )
        print(triggered.run_id, flush=True)
        if not args.wait:
            return 0
        return _wait(ledger, triggered.run_id, args.timeout)
    finally:
        ledger.close()


def _wait(ledger: Ledger, run_id: str, timeout: float | None) -> int:
    """Poll the run's own events, printing a progress line whenever something changed."""
    deadline = None if timeout is None else time.monotonic() + timeout
    last = ""
    while True:
        summary = _summary(ledger, run_id)
        done = (summary.get("tasks_succeeded") or 0) + (summary.get("tasks_failed") or 0)
        line = f"run {run_id}: {summary['status']}, tasks {done}/{summary.get('tasks_total') or 0} done"
        if line != last:
            print(line, file=sys.stderr, flush=True)
            last = line
        if summary["status"] in TERMINAL:
            if summary.get("error"):
                print(f"run {run_id}: error: {summary['error']}", file=sys.stderr)
            return 0 if summary["status"] == RunStatus.SUCCESS else 1
        if deadline is not None and time.monotonic() > deadline:
            print(f"run {run_id}: still {summary['status']} after {timeout} s", file=sys.stderr)
            return 1
        time.sleep(0.3)


def list_runs(args: argparse.Namespace) -> int:
    from projections import ReadModels  # type: ignore[attr-defined,unused-ignore]

    views = ReadModels(settings_from(args))
    try:
        runs, _ = views.list_runs(
            status=args.status,
            workflow=args.workflow,
            triggered_by=None,
            created_after=None,
            created_before=None,
            params={},
            limit=max(1, min(args.limit, 1000)),
            cursor=None,
        )
    finally:
        views.close()
    for run in runs:
        if args.json:
            print(json.dumps(run))
        else:
            print(f"{run['run_id']}\t{run['workflow']}\t{run['status']}\t{run['created_at']}")
    return 0


def show_run(args: argparse.Namespace) -> int:
    from projections.views.rundetail import tasks_of

    ledger = Ledger(settings_from(args))
    try:
        summary = _summary(ledger, args.run_id)
        summary["tasks"] = tasks_of(run_events(ledger, args.run_id))
    finally:
        ledger.close()
    print(json.dumps(summary, indent=2))
    return 0


def replay_run(args: argparse.Namespace) -> int:
    ledger = Ledger(settings_from(args))
    try:
        original = run_events(ledger, args.run_id)[0].data
        overrides = _params(args.param, original["definition"])
        triggered = ledger.replay(args.run_id, overrides=overrides, principal=_principal())
    finally:
        ledger.close()
    print(triggered.run_id)
    return 0
