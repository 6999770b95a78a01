"""What the commands that talk to a server share: ``--url``/``--token``/``--workspace``/``--json``
on every one of them, the client built from those (or ``RUNLEDGER_URL``,
``RUNLEDGER_TOKEN``, ``RUNLEDGER_WORKSPACE``), the refusal when no URL is set, and ``-p k=v``
turned into the types a definition declares."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from cli import UsageError
from runledger import Client

#: ``trigger --wait --timeout`` / ``replay --wait --timeout`` gave up before the run ended.
EXIT_WAIT_TIMEOUT = 3

NO_URL = (
    "this command talks to a runledger server: set RUNLEDGER_URL (or --url) and RUNLEDGER_TOKEN "
    "(or --token); nothing was written"
)


def client_options() -> argparse.ArgumentParser:
    """A parent parser: the options every client command takes (after the command too)."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("server")
    group.add_argument("--url", default=argparse.SUPPRESS, help="the server (default: $RUNLEDGER_URL)")
    group.add_argument("--token", default=argparse.SUPPRESS, help="bearer token (default: $RUNLEDGER_TOKEN)")
    group.add_argument("--workspace", default=argparse.SUPPRESS, help="default: $RUNLEDGER_WORKSPACE")
    group.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    return parent


def wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def server_url(args: argparse.Namespace) -> str | None:
    return getattr(args, "url", None) or os.environ.get("RUNLEDGER_URL") or None


def connect(args: argparse.Namespace) -> Client:
    url = server_url(args)
    if not url:
        raise UsageError(NO_URL)
    return Client(url, getattr(args, "token", None), workspace=getattr(args, "workspace", None))


def pairs(values: list[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in values:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} expects KEY=VALUE, got {pair!r}")
        out[key] = text
    return out


def typed_params(texts: dict[str, str], definition: dict[str, Any] | None) -> dict[str, Any]:
    """``-p`` values in the types the definition declares (JSON when it is not known)."""
    declared = (definition or {}).get("params") or {}
    out: dict[str, Any] = {}
    for key, text in texts.items():
        kind = (declared.get(key) or {}).get("type") if isinstance(declared.get(key), dict) else None
        out[key] = _coerce(key, text, kind)
    return out


def _coerce(key: str, text: str, kind: str | None) -> Any:
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
    except ValueError:
        raise UsageError(f"parameter {key!r} must be a {kind}, got {text!r}") from None
    if kind == "boolean":
        if text.lower() in {"true", "1", "yes"}:
            return True
        if text.lower() in {"false", "0", "no"}:
            return False
        raise UsageError(f"parameter {key!r} must be a boolean, got {text!r}")
    if kind is None:
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text
