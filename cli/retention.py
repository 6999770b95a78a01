"""``runledger retention apply [--dry-run]`` (SPEC section 11), on the database like ``verify``:
expunge every finished run its definition's ``retention`` (or ``RUNLEDGER_RETENTION_DAYS``)
lets go, then finish any expunge a crash interrupted. ``--dry-run`` lists what would go and
changes nothing. Progress on stderr; the runs (and with ``--json`` the whole answer) on stdout."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from cli.common import settings_from
from ledger.service import Ledger


def register(subparsers: Any) -> None:
    retention = subparsers.add_parser("retention", help="apply the retention rules (SPEC section 11)")
    actions = retention.add_subparsers(dest="retention_command", metavar="ACTION", required=True)
    apply = actions.add_parser("apply", help="expunge the finished runs retention lets go")
    apply.add_argument("--dry-run", action="store_true", help="list what would go; change nothing")
    apply.add_argument("--json", action="store_true", help="print the answer as JSON on stdout")
    apply.set_defaults(handler=apply_command)


def _progress(done: int, total: int) -> None:
    print(f"retention: {done}/{total} runs expunged", file=sys.stderr, flush=True)


def apply_command(args: argparse.Namespace) -> int:
    ledger = Ledger(settings_from(args))
    try:
        outcome = ledger.apply_retention(now=datetime.now(UTC), dry_run=args.dry_run, progress=_progress)
    finally:
        ledger.close()
    if args.json:
        answer = {
            "dry_run": outcome.dry_run,
            "runs": [{"run_id": p.run_id, "files": p.files_deleted} for p in outcome.picked],
            "files_deleted": outcome.removed.files,
            "keys_destroyed": outcome.removed.keys,
            "dirs_removed": outcome.removed.dirs,
        }
        print(json.dumps(answer, indent=2))
        return 0
    for picked in outcome.picked:
        print(f"{picked.run_id}\t{len(picked.files_deleted)} files")
    verb = "would expunge" if outcome.dry_run else "expunged"
    removed = outcome.removed
    tail = "" if outcome.dry_run else f"; {removed.files} files deleted, {removed.keys} keys destroyed"
    print(f"retention: {verb} {len(outcome.picked)} runs{tail}", file=sys.stderr)
    return 0
