"""The ``runledger`` console script (SPEC section 3).

Each command group lives in its own module exposing ``register(subparsers)``; every command is
a function ``(args) -> int`` returning the exit code (0 ok, 1 a check found problems, 2 bad
usage or input, or an answer of the server refusing it; 3 ``--wait --timeout`` gave up).
Messages go to stderr; data goes to stdout. Closing stdout early (``| head``) is not an error.

The commands that read or change runs, workflows and files talk to a server through the
``runledger`` client (``--url``/``RUNLEDGER_URL``, ``--token``/``RUNLEDGER_TOKEN``); the
server-side ones (serve, worker, project, projections, verify, digest, tokens, workspaces,
retention) open the
database (``--database-url``/``RUNLEDGER_DATABASE_URL``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from ledger.errors import LedgerError

#: Command-group modules under ``cli``, in help order, with the commands each registers.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "serve": ("serve",),
    "workflows": ("workflows", "trigger", "batch", "replay"),  # over HTTP
    "runs": (
        "runs",
    ),  # list|show|tasks|logs|files|lineage|audit|events|cancel|expunge|hold|release|replay|...
    "files": ("files", "stats", "audit"),  # over HTTP
    "worker": ("worker",),
    "projections": ("project", "projections"),
    "integrity": ("verify", "digest", "export", "verify-bundle"),
    "tokens": ("tokens",),
    "workspaces": ("workspaces",),
    "retention": ("retention",),
    "keys": ("keys",),  # over HTTP, but for ``create``
}


def _modules_for(argv: Sequence[str]) -> list[str]:
    """Only the module of the command asked for (a command starts in a fraction of the time
    it takes to import every one); all of them for ``--help`` or no command."""
    words = [word for word in argv if not word.startswith("-")]
    if words:
        for module, commands in COMMAND_MODULES.items():
            if words[0] in commands:
                return [module]
    return list(COMMAND_MODULES)


class UsageError(Exception):
    """Bad usage or input: printed to stderr, exit 2."""


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runledger", description="An event-sourced run ledger.")
    parser.add_argument(
        "--database-url",
        help="sqlite:///path/ledger.db or postgresql://user@host:port/db "
        "(default: $RUNLEDGER_DATABASE_URL or sqlite:///./.runledger/ledger.db)",
    )
    from cli.remote import client_options

    for action in client_options()._actions:
        parser._add_action(action)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules = _modules_for(argv) if argv is not None else list(COMMAND_MODULES)
    for name in modules:
        importlib.import_module(f"cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(words)
    args = parser.parse_args(words)
    # Logs go to stderr for every command (stdout carries data such as a new token).
    from api.logging import configure_logging

    configure_logging(
        os.environ.get("RUNLEDGER_LOG_FORMAT", "auto"), os.environ.get("RUNLEDGER_LOG_LEVEL", "info")
    )
    from runledger import RunledgerError, VerificationError

    try:
        code: int = args.handler(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (``runledger runs list --json | head -1``): not an error. Point
        # stdout at /dev/null so the interpreter's last flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except VerificationError as exc:
        print(f"runledger: verification failed: {exc}", file=sys.stderr)
        return 1
    except (UsageError, LedgerError, RunledgerError, ValueError) as exc:
        print(f"runledger: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
