"""``runledger tokens create|list|revoke``: bearer tokens; only their hash is stored."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from api.auth import ALL_WORKSPACES, ROLES, TokenStore, record_issued
from cli.common import settings_from
from ledger.service import Ledger


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("tokens", help="create, list and revoke API tokens")
    commands = parser.add_subparsers(dest="tokens_command", metavar="ACTION", required=True)
    create = commands.add_parser("create", help="create a token and print it (once) on stdout")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--name", required=True)
    create.add_argument(
        "--workspace",
        action="append",
        dest="workspaces",
        metavar="W",
        help="a workspace the token covers (repeat for several; '*' or none: every workspace)",
    )
    create.set_defaults(handler=create_token)
    listing = commands.add_parser("list", help="list tokens (never their secrets)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=list_tokens)
    revoke = commands.add_parser("revoke", help="revoke a token by id, or every token of a name")
    revoke.add_argument("token", metavar="ID_OR_NAME")
    revoke.set_defaults(handler=revoke_token)


def _with_store(args: argparse.Namespace) -> tuple[Ledger, TokenStore]:
    settings = settings_from(args)
    ledger = Ledger(settings)
    return ledger, TokenStore(ledger.recorder.datastore, settings.database)  # type: ignore[attr-defined]


def create_token(args: argparse.Namespace) -> int:
    ledger, store = _with_store(args)
    workspaces = args.workspaces or [ALL_WORKSPACES]
    try:
        missing = [w for w in workspaces if w != ALL_WORKSPACES and not ledger.workspace_exists(w)]
        if missing:
            print(f"runledger: error: no workspace {missing[0]!r} (create it first)", file=sys.stderr)
            return 2
        info, token = store.create(name=args.name, role=args.role, workspaces=workspaces)
        record_issued(ledger, info, token, by=_actor())
    except ValueError as exc:
        print(f"runledger: error: {exc}", file=sys.stderr)
        return 2
    finally:
        ledger.close()
    print(token)
    scope = ", ".join(info.workspaces)
    print(f"created {info.role} token {info.name!r} (id {info.id}) for workspaces {scope}", file=sys.stderr)
    return 0


def list_tokens(args: argparse.Namespace) -> int:
    ledger, store = _with_store(args)
    try:
        tokens = store.list()
    finally:
        ledger.close()
    for info in tokens:
        if args.json:
            print(json.dumps(info.__dict__))
        else:
            state = f"revoked {info.revoked_at}" if info.revoked_at else "active"
            scope = ",".join(info.workspaces)
            print(f"{info.id}\t{info.name}\t{info.role}\t{info.created_at}\t{state}\t{scope}")
    return 0


def revoke_token(args: argparse.Namespace) -> int:
    ledger, store = _with_store(args)
    try:
        revoking = store.live_ids(args.token)
        count = store.revoke(args.token)
        for token_id in revoking:
            ledger.record_token_revoked(token_id, by=_actor())
    finally:
        ledger.close()
    if count == 0:
        print(f"runledger: error: no active token {args.token!r}", file=sys.stderr)
        return 2
    print(f"revoked {count} token(s)", file=sys.stderr)
    return 0


def _actor() -> str:
    """Who issued or revoked a token on the database directly: the operating-system user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
