"""``runledger verify [--digest FILE]``, ``runledger digest``, ``runledger export --out BUNDLE``
and ``runledger verify-bundle BUNDLE [--public-key FILE]`` (SPEC section 3).

Exit 0 when the checks pass, 1 when they do not, 2 on bad usage. Results (each problem, then
one summary line) go to stdout, logs and warnings to stderr; with ``verify --json`` stdout holds
the JSON report alone and the summary line goes to stderr. On a terminal, stderr shows a
progress bar while the events are read (:mod:`cli.meter`); piped, nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from api.logging import configure_logging
from cli import UsageError
from cli.common import settings_from
from cli.files import export_over_http
from cli.meter import meter
from cli.remote import client_options, server_url
from ledger.integrity.bundle import ExportFilters, parse_time_filter, write_bundle
from ledger.integrity.bundle_verify import verify_bundle
from ledger.integrity.merkle_store import MerkleStore
from ledger.integrity.signing import load_public_key
from ledger.integrity.verify import verify_ledger
from ledger.service import Ledger
from projections.views.summaries_fold import summary_from_events


def register(subparsers: Any) -> None:
    verify = subparsers.add_parser("verify", help="check every event, chain and the Merkle root")
    verify.add_argument(
        "--digest",
        type=Path,
        metavar="FILE",
        help="a saved `runledger digest`: check history since was only appended",
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    verify.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="processes that check ranges of events side by side (default: one "
        "more than the CPUs, up to 4, for ledgers past 131,072 events; else 1)",
    )
    verify.set_defaults(handler=verify_command)
    digest = subparsers.add_parser("digest", help="print today's digest as JSON")
    digest.set_defaults(handler=digest_command)
    export = subparsers.add_parser(
        "export",
        help="write a signed compliance bundle (through the API when --url/RUNLEDGER_URL is set)",
        parents=[client_options()],
    )
    export.add_argument("--out", required=True, type=Path, metavar="BUNDLE")
    export.add_argument("--created-after", metavar="ISO8601")
    export.add_argument("--created-before", metavar="ISO8601")
    export.add_argument("--workflow")
    export.set_defaults(handler=export_command)
    check = subparsers.add_parser("verify-bundle", help="check a bundle offline")
    check.add_argument("bundle", type=Path, metavar="BUNDLE")
    check.add_argument(
        "--public-key",
        type=Path,
        metavar="FILE",
        help="the ledger's public key (PEM or hex) to check the signature with",
    )
    check.set_defaults(handler=verify_bundle_command)


def _open_ledger(args: argparse.Namespace) -> Any:
    """Opening the ledger once creates the event tables (and their guard) if they are new."""
    settings = settings_from(args)
    configure_logging(settings.log_format, settings.log_level)  # logs on stderr, data on stdout
    Ledger(settings).close()
    return settings


def verify_command(args: argparse.Namespace) -> int:
    digest = None
    if args.digest is not None:
        try:
            digest = json.loads(args.digest.read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read digest {args.digest}: {exc}") from exc
        if not isinstance(digest, dict):
            raise UsageError(f"{args.digest} does not hold a digest object")
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    settings = _open_ledger(args)
    with meter("verifying") as progress:
        report = verify_ledger(settings, digest=digest, workers=args.workers, progress=progress)
    out = sys.stderr if args.json else sys.stdout  # --json: stdout holds the report alone
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    for problem in report.problems:
        print(str(problem), file=out)
    if report.problem_count > len(report.problems):
        print(f"... and {plural(report.problem_count - len(report.problems), 'more problem')}", file=out)
    summary = (
        f"{report.events_checked} events checked, tree size {report.tree_size}, root {report.root_hash}: "
    )
    print(summary + ("ok" if report.ok else plural(report.problem_count, "problem")), file=out)
    return 0 if report.ok else 1


def plural(count: int, noun: str) -> str:
    """``1 problem``, ``2 problems``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def digest_command(args: argparse.Namespace) -> int:
    print(json.dumps(MerkleStore(_open_ledger(args)).digest()))
    return 0


def export_command(args: argparse.Namespace) -> int:
    if server_url(args):
        return export_over_http(args)
    filters = ExportFilters(
        created_after=parse_time_filter(args.created_after, "--created-after"),
        created_before=parse_time_filter(args.created_before, "--created-before"),
        workflow=args.workflow,
        # (SPEC 9) on the database: that workspace's runs only, every workspace's without one
        workspace=getattr(args, "workspace", None) or os.environ.get("RUNLEDGER_WORKSPACE") or None,
    )
    settings = _open_ledger(args)
    with meter("exporting") as progress:
        result = write_bundle(
            settings, args.out, filters=filters, summarise=summary_from_events, progress=progress
        )
    ledger = Ledger(settings)
    try:
        ledger.record_export(result.manifest, by=_actor())
    finally:
        ledger.close()
    print(f"exported {plural(result.events, 'event')} of {plural(result.runs, 'run')} to {result.path}")
    return 0


def _actor() -> str:
    """Who exported straight from the database: the operating-system user."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def verify_bundle_command(args: argparse.Namespace) -> int:
    key = None
    if args.public_key is not None:
        try:
            key = load_public_key(args.public_key.read_bytes())
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read public key {args.public_key}: {exc}") from exc
    if not args.bundle.is_file():
        raise UsageError(f"no bundle at {args.bundle}")
    with meter("checking") as progress:
        problems = verify_bundle(args.bundle, public_key=key, progress=progress)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{args.bundle}: {plural(len(problems), 'problem')}")
        return 1
    if key is None:
        print(f"{args.bundle}: ok, but only against the public key inside the bundle itself")
        print(
            "warning: whoever can rewrite a bundle can re-sign it with a key of their own; to show "
            "it came from your ledger, get the ledger's public key separately (GET "
            "/api/ledger/public-key with 'Accept: application/x-pem-file') and pass --public-key FILE",
            file=sys.stderr,
        )
    else:
        print(f"{args.bundle}: ok, signed by the key in {args.public_key}")
    return 0
