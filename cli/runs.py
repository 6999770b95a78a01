"""``runledger runs list|show|tasks|logs|files|lineage|audit|events|cancel|expunge|hold|release
|replay|resume|compare|label|sign``, through the API (see :mod:`cli.remote`).

Past 300 lines on purpose: one sub-command per SPEC section 6 run action, each a few lines
over the client; splitting them would only scatter the ``runs`` group.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cli import UsageError
from cli.output import duration, note, print_json, table, when
from cli.progress import watch
from cli.remote import client_options, connect, pairs, typed_params, wants_json
from cli.workflows import add_replay_arguments
from runledger import Client
from runledger.models import EventPublic, RunPublic

RUN_COLUMNS = ["RUN", "WORKFLOW", "VERSION", "STATUS", "BY", "CREATED", "DURATION", "TASKS"]


def register(subparsers: Any) -> None:
    common = client_options()
    runs = subparsers.add_parser("runs", help="list, show and act on runs", parents=[common])
    actions = runs.add_subparsers(dest="runs_command", metavar="ACTION", required=True)

    def action(name: str, help: str, handler: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(name, help=help, parents=[common])
        parser.set_defaults(handler=handler)
        return parser

    listing = action("list", "newest runs first", list_runs)
    listing.add_argument(
        "--status",
        action="append",
        default=[],
        help="pending|running|success|failed|killed (repeat: any of them)",
    )
    listing.add_argument("--workflow")
    listing.add_argument("--triggered-by")
    listing.add_argument("--created-after", metavar="ISO8601")
    listing.add_argument("--created-before", metavar="ISO8601")
    listing.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    listing.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    listing.add_argument("-q", "--query", metavar="EXPR", help="the search language (SPEC section 8)")
    listing.add_argument("--limit", type=int, default=20, help="runs on this page (1-1000, default 20)")
    listing.add_argument("--cursor", help="the page after the one that printed this cursor")
    for name, help, handler in (
        ("show", "one run's summary", show_run),
        ("tasks", "a run's tasks and attempts", run_tasks),
        ("files", "a run's input and output files", run_files),
        ("audit", "a run's audit trail", run_audit),
        ("cancel", "cancel a run (it ends killed)", cancel_run),
    ):
        parser = action(name, help, handler)
        parser.add_argument("run_id")
        if name == "cancel":
            parser.add_argument("--reason")
    for name, help, handler in (
        ("expunge", "erase a run: its key, its unshared files, its directory (admin)", expunge_run),
        ("hold", "put a legal hold on a run (admin)", hold_run),
        ("release", "release a run's legal hold (admin)", release_run),
    ):
        parser = action(name, help, handler)
        parser.add_argument("run_id")
        parser.add_argument("--reason")
    logs = action("logs", "a task's stdout or stderr", run_logs)
    logs.add_argument("run_id")
    logs.add_argument("task")
    logs.add_argument("--stream", choices=["stdout", "stderr"], default="stdout")
    lineage = action("lineage", "a run's lineage graph", run_lineage)
    lineage.add_argument("run_id")
    lineage.add_argument("--depth", type=int, default=1)
    events = action("events", "a run's events (live with --follow)", run_events)
    events.add_argument("run_id")
    events.add_argument(
        "--follow", action="store_true", help="stream until the run ends, showing running tasks"
    )
    add_replay_arguments(actions.add_parser("replay", help="run again with overrides", parents=[common]))
    resume = action("resume", "run again from a task, reusing what ran before it", resume_run)
    resume.add_argument("run_id")
    resume.add_argument("--from-task", required=True)
    resume.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    resume.add_argument("--reason")
    compare = action("compare", "two runs side by side", compare_runs)
    compare.add_argument("a")
    compare.add_argument("b")
    label = action("label", "set or remove labels (SPEC section 8)", label_run)
    label.add_argument("run_id")
    label.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    label.add_argument("--remove", action="append", default=[], metavar="KEY")
    label.add_argument("--reason")
    sign = action("sign", "sign a run with an Ed25519 key (SPEC section 10)", sign_run)
    sign.add_argument("run_id")
    sign.add_argument(
        "--meaning",
        required=True,
        choices=("reviewed", "approved", "rejected", "responsibility", "authorship"),
    )
    sign.add_argument("--key", type=Path, required=True, help="the private key file (PEM)")
    sign.add_argument("--signer", required=True, help="the token's name, as the server records it")
    sign.add_argument("--reason")


def run_row(run: RunPublic) -> list[Any]:
    done = (run.tasks_succeeded or 0) + (run.tasks_failed or 0)
    return [
        run.run_id,
        run.workflow,
        run.version,
        run.status,
        run.triggered_by,
        when(run.created_at),
        duration(run.duration_seconds),
        f"{done}/{run.tasks_total or 0}",
    ]


def list_runs(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 1000:
        raise UsageError("--limit must be between 1 and 1000")
    filters: dict[str, Any] = {
        "status": args.status or None,
        "workflow": args.workflow,
        "triggered_by": args.triggered_by,
        "created_after": args.created_after,
        "created_before": args.created_before,
        "q": args.query,
        "params": pairs(args.param, "--param"),
        "labels": pairs(args.label, "--label"),
    }
    with connect(args) as client:
        runs, cursor = client.runs.page(limit=args.limit, cursor=args.cursor, **filters)
        more = _count_more(client, cursor, filters) if cursor and not wants_json(args) else None
    if wants_json(args):
        for run in runs:
            sys.stdout.write(json.dumps(run.model_dump(mode="json")) + "\n")
        if cursor:
            note(f"more runs; next page: --cursor {cursor}")
        return 0
    table(RUN_COLUMNS, [run_row(r) for r in runs])
    if cursor:
        note(f"{more} more; use --limit or --cursor {cursor}")
    return 0


def _count_more(client: Client, cursor: str, filters: dict[str, Any]) -> str:
    """How many runs are past this page: exact up to 1000, ``1000+`` beyond."""
    rest, after = client.runs.page(limit=1000, cursor=cursor, **filters)
    return f"{len(rest)}+" if after else str(len(rest))


def show_run(args: argparse.Namespace) -> int:
    with connect(args) as client:
        run = client.runs.get(args.run_id)
    if wants_json(args):
        print_json(run.summary)
        return 0
    s = run.summary
    rows = [
        ("run", s.run_id),
        ("workflow", f"{s.workflow} v{s.version}"),
        ("definition", s.definition_hash),
        ("status", s.status + (f" ({s.error})" if s.error else "")),
        ("triggered", f"{when(s.created_at)} by {s.triggered_by} ({s.trigger_kind})"),
        ("started", when(s.started_at)),
        ("completed", when(s.completed_at)),
        ("duration", duration(s.duration_seconds)),
        ("tasks", f"{s.tasks_succeeded or 0} ok, {s.tasks_failed or 0} failed of {s.tasks_total or 0}"),
        ("parameters", s.parameters),
        ("outputs", s.outputs),
    ]
    rows += [(k, getattr(s, k)) for k in ("replay_of", "resume_of", "batch_id") if getattr(s, k)]
    table(["FIELD", "VALUE"], rows)
    return 0


def run_tasks(args: argparse.Namespace) -> int:
    with connect(args) as client:
        tasks = client.runs.get(args.run_id).tasks()
    if wants_json(args):
        print_json(tasks)
        return 0
    rows = []
    for task in tasks:
        last = task.attempts[-1] if task.attempts else None
        extra = last.model_extra or {} if last else {}
        rows.append(
            [
                task.name,
                task.status,
                len(task.attempts),
                last.exit_code if last else None,
                duration(extra.get("duration_seconds")),
                " ".join(last.command or []) if last else None,
            ]
        )
    table(["TASK", "STATUS", "ATTEMPTS", "EXIT", "DURATION", "COMMAND"], rows)
    return 0


def run_logs(args: argparse.Namespace) -> int:
    with connect(args) as client:
        text = client.runs.get(args.run_id).logs(args.task, args.stream)
    if wants_json(args):
        print_json({"run_id": args.run_id, "task": args.task, "stream": args.stream, "text": text})
    else:
        sys.stdout.write(text)
    return 0


def run_files(args: argparse.Namespace) -> int:
    with connect(args) as client:
        files = client.runs.get(args.run_id).files().files
    if wants_json(args):
        print_json(files)
        return 0
    table(
        ["ROLE", "TASK", "PATH", "SIZE", "SHA256"],
        [[f.role, f.task, f.path, f.size, f.sha256] for f in files],
    )
    return 0


def run_lineage(args: argparse.Namespace) -> int:
    with connect(args) as client:
        graph = client.runs.get(args.run_id).lineage(args.depth)
    if wants_json(args):
        print_json(graph)
        return 0
    table(["FROM", "EDGE", "TO"], [[e.get("source"), e.get("kind"), e.get("target")] for e in graph.edges])
    return 0


def run_audit(args: argparse.Namespace) -> int:
    with connect(args) as client:
        entries = client.runs.get(args.run_id).audit().entries
    if wants_json(args):
        print_json(entries)
        return 0
    rows = [[when(e.at), e.actor, e.action, e.from_status, e.to_status] for e in entries]
    table(["AT", "ACTOR", "ACTION", "FROM", "TO"], rows)
    return 0


def run_events(args: argparse.Namespace) -> int:
    as_json = wants_json(args)

    def show(event: EventPublic) -> None:
        if as_json:
            sys.stdout.write(json.dumps(event.model_dump(mode="json")) + "\n")
        else:
            task = event.data.get("task")
            sys.stdout.write(
                f"{event.sequence}\t{when(event.timestamp)}\t{event.type}\t{task or '-'}\t{event.hash}\n"
            )
        sys.stdout.flush()

    with connect(args) as client:
        run = client.runs.get(args.run_id)
        if args.follow:
            watch(run, None, show)
            return 0
        events = list(run.events())
    if as_json:
        print_json(events)
        return 0
    rows = [[e.sequence, when(e.timestamp), e.type, e.data.get("task"), e.hash] for e in events]
    table(["SEQ", "AT", "TYPE", "TASK", "HASH"], rows)
    return 0


def cancel_run(args: argparse.Namespace) -> int:
    with connect(args) as client:
        run = client.runs.get(args.run_id).cancel(reason=args.reason)
    print_json(run.summary) if wants_json(args) else note(f"run {run.run_id}: {run.status}")
    return 0


def expunge_run(args: argparse.Namespace) -> int:
    with connect(args) as client:
        done = client.runs.get(args.run_id).expunge(reason=args.reason)
    if wants_json(args):
        print_json(done.model_dump())
    elif done.recorded:
        note(f"run {done.run_id}: expunged ({len(done.files_deleted)} files deleted)")
    else:
        note(f"run {done.run_id}: was expunged already; nothing changed")
    return 0


def hold_run(args: argparse.Namespace) -> int:
    with connect(args) as client:
        held = client.runs.get(args.run_id).hold(reason=args.reason)
    print_json(held.model_dump()) if wants_json(args) else note(f"run {held.run_id}: on hold")
    return 0


def release_run(args: argparse.Namespace) -> int:
    with connect(args) as client:
        held = client.runs.get(args.run_id).release(reason=args.reason)
    print_json(held.model_dump()) if wants_json(args) else note(f"run {held.run_id}: hold released")
    return 0


def resume_run(args: argparse.Namespace) -> int:
    with connect(args) as client:
        original = client.runs.get(args.run_id)
        definition = client.workflows.get(original.workflow, original.version).definition
        overrides = typed_params(pairs(args.param, "-p"), definition)
        run = original.resume(args.from_task, overrides, reason=args.reason)
    print_json(run.summary) if wants_json(args) else print(run.run_id)
    return 0


def compare_runs(args: argparse.Namespace) -> int:
    with connect(args) as client:
        compared = client.runs.compare(args.a, args.b)
    if wants_json(args):
        print_json(compared)
        return 0
    note(f"definition hash {'equal' if compared.definition_hash_equal else 'DIFFERS'}")
    table(["PARAMETER", "A", "B"], [[k, v.get("a"), v.get("b")] for k, v in compared.parameters.items()])
    rows = [[t.get("task"), {k: v for k, v in t.items() if k != "task"}] for t in compared.tasks]
    table(["TASK", "DIFFERENCES"], rows)
    return 0


def label_run(args: argparse.Namespace) -> int:
    with connect(args) as client:
        run = client.runs.get(args.run_id).label(pairs(args.set, "--set"), args.remove, args.reason)
    print_json(run.summary) if wants_json(args) else note(
        f"run {run.run_id}: labels {json.dumps(run.summary.labels, sort_keys=True)}"
    )
    return 0


def sign_run(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(args.key.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read a private key from {args.key}: {exc}") from None
    with connect(args) as client:
        signed = client.runs.get(args.run_id).sign(args.meaning, key, args.reason, signer=args.signer)
    print_json(signed)
    return 0
