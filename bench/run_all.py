"""Every benchmark, one after the other, then ``bench/RESULTS.md`` from what they measured.

    make bench                      # = .venv/bin/python bench/run_all.py (under 15 minutes)
    .venv/bin/python bench/run_all.py --only store_append,queries --queries-runs 20000
    .venv/bin/python bench/run_all.py --only queries_postgres     # one of the long steps
    .venv/bin/python bench/run_all.py --with queries_postgres,verify_export_1m

Each step runs as its own process and writes ``bench/results/<step>.json``; a step that fails
is reported as failed in RESULTS.md (with its error) and the others still run. The default
steps and sizes fit the whole run in under 15 minutes on the 2-core machine; the long steps
(queries at 100,000 runs on PostgreSQL, rebuild and verify/export at 1,000,000 events) run with
``--only`` or ``--with``, and every run keeps the last results of the steps it did not run,
each shown with the date it was measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import machine  # noqa: E402
from bench.report import render  # noqa: E402

RESULTS = ROOT / "bench" / "results"
#: Sizes of the default run, chosen so that ``make bench`` takes under 15 minutes.
REBUILD_EVENTS = 1_000_000
VERIFY_EVENTS = 200_000
WRITE_SECONDS = 12.0


def steps(args: argparse.Namespace) -> list[tuple[str, list[str], bool]]:
    """(name, argv after ``python -m``, runs by default) for every step, in order.

    The steps that do not run by default are the long ones, each a one-command run of its own
    (``--only NAME``); a full run keeps their last results in RESULTS.md."""
    return [
        ("store_append", ["bench.store_append", "--saves", "1500", "--saves10", "600"], True),
        (
            "mlflow_compare",
            [
                "bench.mlflow_compare",
                "--clients",
                "1,8",
                "--runs",
                "400",
                "--max-seconds",
                str(args.write_seconds),
                "--repeat",
                "2",  # CPU per run: two trials per row, and their spread in RESULTS.md
            ],
            True,
        ),
        (
            "queries",
            ["bench.queries", "--backend", "sqlite", "--runs", str(args.queries_runs), "--iterations", "300"],
            True,
        ),
        (
            "queries_postgres",
            [
                "bench.queries",
                "--backend",
                "postgres",
                "--runs",
                str(args.queries_runs),
                "--iterations",
                "300",
            ],
            args.queries_postgres,
        ),
        # Marquez lineage by node at depth 5 over 100,000 runs on PostgreSQL (issue 24): long.
        ("marquez_lineage", ["bench.marquez_lineage"], False),
        ("memory", ["bench.memory", "--backend", "sqlite", "--runs", args.memory_runs], True),
        ("projections_rebuild", ["bench.projections_rebuild", "--events", str(args.rebuild_events)], True),
        ("executor", ["bench.executor"], True),
        ("verify_export", ["bench.verify_export", "--events", str(args.verify_events)], True),
        (
            "verify_export_1m",
            ["bench.verify_export", "--events", "1000000", "--backend", "sqlite,postgres"],
            False,
        ),
        ("retention", ["bench.retention", "--sizes", "5000,20000,100000"], False),
        ("workspaces_regression", ["bench.workspaces_regression", "--backend", "sqlite,postgres"], False),
    ]


#: Steps whose script has no ``--out``: their result is the last JSON line they print.
NO_OUT_FLAG = {"verify_export", "verify_export_1m"}


def run_step(name: str, argv: list[str], timeout: float) -> dict[str, Any]:
    out = RESULTS / f"{name}.json"
    if out.exists():
        out.unlink()
    module_file = ROOT / (argv[0].replace(".", "/") + ".py")
    tail = [] if name in NO_OUT_FLAG else ["--out", str(out)]
    command = [sys.executable, "-m", *argv, *tail]
    shown = ".venv/bin/python -m " + " ".join(
        [*argv, *([] if name in NO_OUT_FLAG else ["--out", f"bench/results/{name}.json"])]
    )
    record: dict[str, Any] = {
        "name": name,
        "command": shown,
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if not module_file.exists():
        record.update(status="missing", error=f"{module_file.relative_to(ROOT)} does not exist")
        return record
    print(f"== {name}: {shown}", flush=True)
    started = time.time()
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    # Its own session, so a step that runs out of time is stopped with every server it started.
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            time.sleep(3)
        stdout, stderr = proc.communicate()
        record.update(
            status="timeout",
            seconds=round(time.time() - started, 1),
            error=f"timed out after {timeout:.0f} s\n{stderr[-1500:]}",
            stdout=stdout[-3000:],
        )
        return record
    record["seconds"] = round(time.time() - started, 1)
    record["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    record["stdout"] = stdout[-6000:]
    print(stdout[-3000:], flush=True)
    if name in NO_OUT_FLAG and proc.returncode == 0:
        lines = [line for line in stdout.splitlines() if line.startswith("{")]
        if lines:
            out.write_text(lines[-1])
    if proc.returncode != 0 or not out.exists():
        record.update(status="failed", error=stderr[-3000:])
        print(stderr[-3000:], file=sys.stderr, flush=True)
        return record
    record["status"] = "ok"
    with out.open() as handle:
        record["result"] = json.load(handle)
    return record


def previous_records(path: Path) -> dict[str, dict[str, Any]]:
    """The records of the last run (to keep the steps this run does not run again)."""
    try:
        with path.open() as handle:
            return {r["name"]: r for r in json.load(handle)["steps"]}
    except (OSError, ValueError, KeyError):
        return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated step names to run (any step, default or not); "
        "the other steps' results are kept from the last run",
    )
    parser.add_argument(
        "--with", dest="extra", default="", help="comma-separated steps that do not run by default to run too"
    )
    parser.add_argument(
        "--queries-postgres", action="store_true", help="make queries_postgres a default step"
    )
    parser.add_argument("--queries-runs", type=int, default=100_000)
    parser.add_argument("--memory-runs", default="2000,10000")
    parser.add_argument("--rebuild-events", type=int, default=REBUILD_EVENTS)
    parser.add_argument("--verify-events", type=int, default=VERIFY_EVENTS)
    parser.add_argument("--write-seconds", type=float, default=WRITE_SECONDS)
    parser.add_argument("--step-timeout", type=float, default=900)
    parser.add_argument("--results", default=str(ROOT / "bench" / "RESULTS.md"))
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="rewrite RESULTS.md from RESULTS.json next to it, run nothing",
    )
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    # Every record behind RESULTS.md, committed with it, so that the steps a run leaves out
    # (the long ones) keep their last results from one session to the next.
    records_path = Path(args.results).with_suffix(".json")
    if args.render_only:
        with records_path.open() as handle:
            last = json.load(handle)
        Path(args.results).write_text(render(last["machine"], last["steps"], None, "--render-only"))
        return 0
    plan = steps(args)
    known = {name for name, _, _ in plan}
    wanted = (
        set(args.only.split(","))
        if args.only
        else {name for name, _, default in plan if default} | set(filter(None, args.extra.split(",")))
    )
    if wanted - known:
        parser.error(f"unknown steps: {', '.join(sorted(wanted - known))}")
    started = time.time()
    info = machine()
    kept = previous_records(records_path)
    records = []
    for name, step_argv, _ in plan:
        if name not in wanted:
            if name in kept:  # measured by an earlier run: shown with its own date
                records.append(dict(kept[name], kept=True))
            continue
        long = name.startswith("queries") or name == "workspaces_regression"
        timeout = args.step_timeout * (4 if name.endswith("_1m") else 2 if long else 1)
        records.append(run_step(name, step_argv, timeout))
        with (RESULTS / "run_all.json").open("w") as handle:  # progress, should this run die
            json.dump({"machine": info, "steps": records}, handle, indent=2)
    with records_path.open("w") as handle:
        json.dump({"machine": info, "steps": records}, handle, indent=2)
        handle.write("\n")
    total = round(time.time() - started, 1)
    text = render(info, records, total, " ".join(["make bench", *(argv or sys.argv[1:])]))
    Path(args.results).write_text(text)
    print(f"wrote {args.results} after {total} s", flush=True)
    return 0 if all(r["status"] == "ok" for r in records) else 1


if __name__ == "__main__":
    raise SystemExit(main())
