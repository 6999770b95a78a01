"""The ``runledger`` console script (SPEC section 3).

Each command group lives in its own module exposing ``register(subparsers)``; every command is
a function ``(args) -> int`` returning the exit code (0 ok, 1 a check found problems, 2 bad
usage or input). Messages go to stderr; data goes to stdout.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from ledger.errors import LedgerError

#: Command-group modules under ``cli``, in help order.
COMMAND_MODULES = (
    "serve",  # serve
    "workflows",  # workflows register, trigger, runs list|show, replay
    "worker",  # worker
    "projections",  # project, projections status|rebuild
    "integrity",  # verify, digest, export, verify-bundle
    "tokens",  # tokens create|list|revoke
)


class UsageError(Exception):
    """Bad usage or input: printed to stderr, exit 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runledger", description="An event-sourced run ledger.")
    parser.add_argument(
        "--database-url",
        help="sqlite:///path/ledger.db or postgresql://user@host:port/db "
        "(default: $RUNLEDGER_DATABASE_URL or sqlite:///./.runledger/ledger.db)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Logs go to stderr for every command (stdout carries data such as a new token).
    from api.logging import configure_logging

    configure_logging(
        os.environ.get("RUNLEDGER_LOG_FORMAT", "auto"), os.environ.get("RUNLEDGER_LOG_LEVEL", "info")
    )
    try:
        code: int = args.handler(args)
    except (UsageError, LedgerError, ValueError) as exc:
        print(f"runledger: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
