"""``runledger retention apply [--dry-run]`` (SPEC section 11), on the database like ``verify``:
expunge every finished run its definition's ``retention`` (or ``RUNLEDGER_RETENTION_DAYS``)
lets go, then finish any expunge a crash interrupted. ``--dry-run`` lists what would go and
changes nothing. Progress on stderr; the runs (and with ``--json`` the whole answer) on stdout,
each run as it goes."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from cli.common import settings_from
from ledger.service import Ledger
from ledger.service.retention import Expunged, RetentionOutcome


def register(subparsers: Any) -> None:
    retention = subparsers.add_parser("retention", help="apply the retention rules (SPEC section 11)")
    actions = retention.add_subparsers(dest="retention_command", metavar="ACTION", required=True)
    apply = actions.add_parser("apply", help="expunge the finished runs retention lets go")
    apply.add_argument("--dry-run", action="store_true", help="list what would go; change nothing")
    apply.add_argument("--json", action="store_true", help="print the answer as JSON on stdout")
    apply.set_defaults(handler=apply_command)


def _progress(done: int, total: int) -> None:
    print(f"retention: {done}/{total} runs expunged", file=sys.stderr, flush=True)


class _Printer:
    """Each run's line (or JSON entry) on stdout as it is expunged: nothing is held for the
    end, so memory stays flat however many runs go."""

    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json
        self.count = 0
        if as_json:
            sys.stdout.write('{"runs": [')

    def __call__(self, picked: Expunged) -> None:
        if self.as_json:
            entry = json.dumps({"run_id": picked.run_id, "files": picked.files_deleted})
            sys.stdout.write(("," if self.count else "") + "\n  " + entry)
        else:
            sys.stdout.write(f"{picked.run_id}\t{len(picked.files_deleted)} files\n")
        self.count += 1

    def close(self, outcome: RetentionOutcome) -> None:
        if not self.as_json:
            return
        tail = {
            "dry_run": outcome.dry_run,
            "files_deleted": outcome.removed.files,
            "keys_destroyed": outcome.removed.keys,
            "dirs_removed": outcome.removed.dirs,
        }
        sys.stdout.write(("\n" if self.count else "") + "], " + json.dumps(tail)[1:] + "\n")


def apply_command(args: argparse.Namespace) -> int:
    ledger = Ledger(settings_from(args))
    printer = _Printer(as_json=args.json)
    try:
        outcome = ledger.apply_retention(
            now=datetime.now(UTC), dry_run=args.dry_run, progress=_progress, each=printer
        )
    finally:
        ledger.close()
    printer.close(outcome)
    verb = "would expunge" if outcome.dry_run else "expunged"
    removed = outcome.removed
    tail = "" if outcome.dry_run else f"; {removed.files} files deleted, {removed.keys} keys destroyed"
    print(f"retention: {verb} {outcome.runs} runs{tail}", file=sys.stderr)
    return 0
