"""``runledger keys create|register|list|revoke``: the Ed25519 keys principals sign runs with
(SPEC section 10). ``create`` works locally (the private key never leaves this machine); the
others talk to the server as the calling token's principal."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli import UsageError
from cli.output import note, print_json, table, when
from cli.remote import client_options, connect, wants_json


def register(subparsers: Any) -> None:
    common = client_options()
    parser = subparsers.add_parser("keys", help="signing keys for run signatures", parents=[common])
    actions = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="make an Ed25519 key pair (private file mode 0600)")
    create.add_argument(
        "--out", type=Path, required=True, help="the private key file; FILE.pub gets the public"
    )
    create.set_defaults(handler=create_key)
    reg = actions.add_parser("register", help="register a public key for this token", parents=[common])
    reg.add_argument("public_key", type=Path, metavar="FILE.pub")
    reg.set_defaults(handler=register_key)
    listing = actions.add_parser("list", help="every registered key", parents=[common])
    listing.set_defaults(handler=list_keys)
    revoke = actions.add_parser("revoke", help="revoke a key: it signs nothing from now on", parents=[common])
    revoke.add_argument("fingerprint")
    revoke.set_defaults(handler=revoke_key)


def create_key(args: argparse.Namespace) -> int:
    from runledger.signing import create_key_files

    try:
        private, public, fingerprint = create_key_files(args.out)
    except FileExistsError:
        raise UsageError(f"{args.out} exists already; a key file is never overwritten") from None
    except OSError as exc:
        raise UsageError(f"cannot write {args.out}: {exc}") from None
    print(fingerprint)
    note(f"private key in {private} (mode 0600), public key in {public}")
    note(f"register it with: runledger keys register {public}")
    return 0


def register_key(args: argparse.Namespace) -> int:
    if not args.public_key.is_file():
        raise UsageError(f"no file at {args.public_key}")
    with connect(args) as client:
        key = client.signing_keys.register(args.public_key)
    print_json(key) if wants_json(args) else print(key.fingerprint)
    note(f"registered signing key {key.fingerprint} for {key.principal}")
    return 0


def list_keys(args: argparse.Namespace) -> int:
    with connect(args) as client:
        keys = client.signing_keys.list()
    if wants_json(args):
        print_json({"keys": [k.model_dump() for k in keys]})
        return 0
    rows = [[k.fingerprint, k.principal, when(k.registered_at), when(k.revoked_at)] for k in keys]
    table(["FINGERPRINT", "PRINCIPAL", "REGISTERED", "REVOKED"], rows)
    return 0


def revoke_key(args: argparse.Namespace) -> int:
    with connect(args) as client:
        client.signing_keys.revoke(args.fingerprint)
    note(f"revoked signing key {args.fingerprint}")
    return 0
