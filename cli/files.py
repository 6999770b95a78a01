"""``runledger files upload|download``, ``stats``, ``audit`` and ``export`` over HTTP, through
the API (see :mod:`cli.remote`). ``export`` without a URL writes the bundle straight from the
database (:mod:`cli.integrity`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli import UsageError
from cli.output import duration, note, print_json, table, when
from cli.remote import client_options, connect, wants_json


def register(subparsers: Any) -> None:
    common = client_options()
    files = subparsers.add_parser("files", help="upload and download stored files", parents=[common])
    actions = files.add_subparsers(dest="files_command", metavar="ACTION", required=True)
    upload = actions.add_parser("upload", help="store a file; prints its sha256", parents=[common])
    upload.add_argument("path", type=Path)
    upload.set_defaults(handler=upload_file)
    download = actions.add_parser("download", help="fetch a stored file by its sha256", parents=[common])
    download.add_argument("sha256")
    download.add_argument("--out", type=Path, required=True)
    download.set_defaults(handler=download_file)

    stats = subparsers.add_parser("stats", help="run counts and durations", parents=[common])
    stats.add_argument("--workflow")
    stats.add_argument("--created-after", metavar="ISO8601")
    stats.add_argument("--created-before", metavar="ISO8601")
    stats.set_defaults(handler=show_stats)

    audit = subparsers.add_parser(
        "audit", help="every action on the ledger (SPEC section 10)", parents=[common]
    )
    for name in ("--actor", "--action", "--run-id", "--created-after", "--created-before"):
        audit.add_argument(name)
    audit.set_defaults(handler=show_audit)


def upload_file(args: argparse.Namespace) -> int:
    if not args.path.is_file():
        raise UsageError(f"no file at {args.path}")
    with connect(args) as client:
        stored = client.files.upload(args.path)
    print_json(stored) if wants_json(args) else print(stored.sha256)
    note(f"stored {args.path} ({stored.size} bytes)")
    return 0


def download_file(args: argparse.Namespace) -> int:
    with connect(args) as client:
        path = client.files.download(args.sha256, args.out)
    note(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


def show_stats(args: argparse.Namespace) -> int:
    with connect(args) as client:
        stats = client.stats(
            workflow=args.workflow, created_after=args.created_after, created_before=args.created_before
        )
    if wants_json(args):
        print_json(stats)
        return 0
    note(
        f"{stats.total_runs} runs; duration avg {duration(stats.avg_duration_seconds)}, "
        f"p50 {duration(stats.p50_duration_seconds)}, p95 {duration(stats.p95_duration_seconds)}"
    )
    table(["STATUS", "RUNS"], sorted(stats.by_status.items()))
    return 0


def show_audit(args: argparse.Namespace) -> int:
    filters = {
        "actor": args.actor,
        "action": args.action,
        "run_id": args.run_id,
        "created_after": args.created_after,
        "created_before": args.created_before,
    }
    with connect(args) as client:
        entries = [e.model_dump() for e in client.audit_entries(**filters)]
    if wants_json(args):
        print_json({"entries": entries})
        return 0
    rows = [
        [when(e.get("at")), e.get("actor"), e.get("action"), e.get("run_id"), e.get("reason")]
        for e in entries
    ]
    table(["AT", "ACTOR", "ACTION", "RUN", "REASON"], rows)
    return 0


def export_over_http(args: argparse.Namespace) -> int:
    filters = {
        "created_after": args.created_after,
        "created_before": args.created_before,
        "workflow": args.workflow,
    }
    with connect(args) as client:
        path = client.export(args.out, **filters)
    size = path.stat().st_size
    if wants_json(args):
        print_json({"path": str(path), "bytes": size})
    note(f"exported {size} bytes to {path}")
    return 0
