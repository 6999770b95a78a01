"""``runledger workflows register|list|show``, ``trigger``, ``batch`` and ``replay``, through
the API (``--url``/``RUNLEDGER_URL``, ``--token``/``RUNLEDGER_TOKEN``): the principal recorded
is the token's name. Without a URL they refuse and write nothing.

``trigger --wait`` / ``replay --wait`` exit 0 when the run succeeds, 1 when it ends failed or
killed, and 3 when ``--timeout`` passes first (the run goes on).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cli import UsageError
from cli.output import note, print_json, table, when
from cli.progress import watch
from cli.remote import EXIT_WAIT_TIMEOUT, client_options, connect, pairs, typed_params, wants_json
from runledger import Client, Run, WaitTimeout

WAIT_HELP = (
    "follow the run, showing which tasks are running, until it ends "
    "(exit 0 success, 1 failed or killed, 3 --timeout passed)"
)


def register(subparsers: Any) -> None:
    common = client_options()
    workflows = subparsers.add_parser("workflows", help="register, list and show workflows", parents=[common])
    actions = workflows.add_subparsers(dest="workflows_command", metavar="ACTION", required=True)
    reg = actions.add_parser("register", help="register a YAML or JSON definition file", parents=[common])
    reg.add_argument("file", type=Path)
    reg.set_defaults(handler=register_workflow)
    listing = actions.add_parser("list", help="every workflow and its active version", parents=[common])
    listing.set_defaults(handler=list_workflows)
    show = actions.add_parser("show", help="a workflow's definition and versions", parents=[common])
    show.add_argument("name")
    show.add_argument("--version", type=int, help="a version other than the active one")
    show.set_defaults(handler=show_workflow)

    trigger = subparsers.add_parser("trigger", help="trigger a run of a workflow", parents=[common])
    trigger.add_argument("name", nargs="?", help="the workflow (or use --by-hash)")
    trigger.add_argument("--by-hash", metavar="HASH", help="pin the run to this definition hash")
    trigger.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    trigger.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    trigger.add_argument("--idempotency-key")
    trigger.add_argument("--wait", action="store_true", help=WAIT_HELP)
    trigger.add_argument(
        "--timeout", type=float, default=None, help="with --wait: give up after S s (exit 3)"
    )
    trigger.set_defaults(handler=trigger_run)

    batch = subparsers.add_parser("batch", help="one run per item of a JSON list", parents=[common])
    batch.add_argument("name")
    batch.add_argument("--items", type=Path, required=True, help="a JSON file holding a list")
    batch.add_argument("--input-param", required=True)
    batch.add_argument("--parallelism", type=int, default=5)
    batch.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    batch.set_defaults(handler=batch_runs)

    replay = subparsers.add_parser("replay", help="run again from a run's trigger event", parents=[common])
    add_replay_arguments(replay)


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--reason")
    parser.add_argument("--wait", action="store_true", help=WAIT_HELP)
    parser.add_argument("--timeout", type=float, default=None, help="with --wait: give up after S s (exit 3)")
    parser.set_defaults(handler=replay_run)


def register_workflow(args: argparse.Namespace) -> int:
    try:
        text = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {args.file}: {exc}") from None
    with connect(args) as client:
        registered = client.workflows.register(text)
    print(json.dumps(registered.model_dump(mode="json")))
    note(f"{registered.name} version {registered.version} ({registered.definition_hash[:12]})")
    return 0


def list_workflows(args: argparse.Namespace) -> int:
    with connect(args) as client:
        workflows = client.workflows.list()
    if wants_json(args):
        print_json(workflows)
        return 0
    rows = [
        (w.name, w.active_version, w.versions, w.definition_hash[:12], when(w.registered_at))
        for w in workflows
    ]
    table(["NAME", "ACTIVE", "VERSIONS", "HASH", "REGISTERED"], rows)
    return 0


def show_workflow(args: argparse.Namespace) -> int:
    with connect(args) as client:
        workflow = client.workflows.get(args.name, args.version)
    if wants_json(args):
        print_json(workflow)
        return 0
    note(f"{workflow.name} version {workflow.version} (active: {workflow.active_version})")
    rows = [(v.version, v.definition_hash, when(v.registered_at), v.registered_by) for v in workflow.versions]
    table(["VERSION", "HASH", "REGISTERED", "BY"], rows)
    print(json.dumps(workflow.definition, indent=2))
    return 0


def finish(run: Run, args: argparse.Namespace) -> int:
    """Print the new run's id (or JSON); with ``--wait`` follow it and exit by its end."""
    if not wants_json(args):
        print(run.run_id, flush=True)  # first, so a script has it while the run goes on
    if not args.wait:
        if wants_json(args):
            print_json(run.summary)
        return 0
    note(f"run {run.run_id}: {run.status}")
    try:
        watch(run, args.timeout)
    except WaitTimeout as exc:
        note(f"runledger: {exc.detail}")
        return EXIT_WAIT_TIMEOUT
    if wants_json(args):
        print_json(run.summary)
    return 0 if run.status == "success" else 1


def trigger_run(args: argparse.Namespace) -> int:
    if (args.name is None) == (args.by_hash is None):
        raise UsageError("trigger takes a workflow NAME or --by-hash HASH (one of them)")
    if args.timeout is not None and not args.wait:
        raise UsageError("--timeout only applies with --wait")
    labels = pairs(args.label, "--label")
    with connect(args) as client:
        if args.by_hash:
            params = typed_params(pairs(args.param, "-p"), None)
            run = client.trigger_by_hash(
                args.by_hash, params, idempotency_key=args.idempotency_key, labels=labels or None
            )
        else:
            params = typed_params(pairs(args.param, "-p"), _definition(client, args.name))
            run = client.trigger(
                args.name, params, idempotency_key=args.idempotency_key, labels=labels or None
            )
        return finish(run, args)


def _definition(client: Client, name: str) -> dict[str, Any] | None:
    return client.workflows.get(name).definition if name else None


def batch_runs(args: argparse.Namespace) -> int:
    try:
        items = json.loads(args.items.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read a JSON list from {args.items}: {exc}") from None
    if not isinstance(items, list):
        raise UsageError(f"{args.items} must hold a JSON list")
    with connect(args) as client:
        params = typed_params(pairs(args.param, "-p"), _definition(client, args.name))
        batch = client.trigger_batch(args.name, items, args.input_param, args.parallelism, params)
    if wants_json(args):
        print_json(batch)
    else:
        note(f"batch {batch.batch_id}: {len(batch.run_ids)} runs")
        print(batch.batch_id)
    return 0


def replay_run(args: argparse.Namespace) -> int:
    if args.timeout is not None and not args.wait:
        raise UsageError("--timeout only applies with --wait")
    with connect(args) as client:
        original = client.runs.get(args.run_id)
        definition = client.workflows.get(original.workflow, original.version).definition
        overrides = typed_params(pairs(args.param, "-p"), definition)
        return finish(original.replay(overrides, reason=args.reason), args)
