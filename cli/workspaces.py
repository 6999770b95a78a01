"""``runledger workspaces create|list`` (SPEC 9), on the database like ``runledger tokens``:
the workspace a token is then issued for (``tokens create --workspace W``)."""

from __future__ import annotations

import argparse
import getpass
import json
from typing import Any

from cli.common import settings_from
from ledger.service import Ledger


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("workspaces", help="create and list workspaces")
    commands = parser.add_subparsers(dest="workspaces_command", metavar="ACTION", required=True)
    create = commands.add_parser("create", help="create a workspace (a Workspace.Created event)")
    create.add_argument("name", metavar="NAME", help="[a-z0-9_.-]{1,63}")
    create.set_defaults(handler=create_workspace)
    listing = commands.add_parser("list", help="every workspace, default first")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=list_workspaces)


def _operator() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name for this uid (a container)
        return "cli"


def create_workspace(args: argparse.Namespace) -> int:
    ledger = Ledger(settings_from(args))
    try:
        workspace = ledger.create_workspace(args.name, principal=_operator())
    finally:
        ledger.close()
    print(workspace.name)
    return 0


def list_workspaces(args: argparse.Namespace) -> int:
    ledger = Ledger(settings_from(args))
    try:
        names = ledger.workspace_names()
    finally:
        ledger.close()
    for name in names:
        print(json.dumps({"name": name}) if args.json else name)
    return 0
