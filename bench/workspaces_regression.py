"""Workspaces (issue 18): a single-workspace deployment's reads, today against the last commit
before workspaces, side by side in one run.

    .venv/bin/python -m bench.workspaces_regression [--backend sqlite,postgres] [--runs 20000]
        [--rounds 400] [--ref COMMIT] [--out FILE]

``--ref`` (default :data:`PRE_WORKSPACES`) is checked out into a temporary git worktree
(removed at the end) and its own ``runledger serve --no-executor`` runs from there: that tree
first on ``PYTHONPATH``, this venv's dependencies (checked first: the old packages must import
from the old tree). One ledger is filled by today's ``bench.bulk`` (every run in ``default``,
the only workspace) and copied; each server gets its copy, its read side built by its own code
(``runledger projections rebuild`` and ``runledger digest``; the old views skip the
``Run.Labelled`` events and ``workspace`` fields they do not know). Then both answer the same
reads over one keep-alive connection each, every read sent to one server and then the other,
which goes first alternating per round: ``GET /healthz`` (the HTTP floor: today's server runs
on uvloop and httptools, the old one on asyncio and h11), ``GET /api/runs/{id}``, lists with no
filter and by status, workflow and parameter, ``GET /api/stats`` and lineage at depth 3 (the
JSON reads of ``bench.queries`` both versions have; ``q`` and labels are newer). Per read: p50
and p99 of each, new/old (goal: at most 1.10) and new/old of the p50 above each server's
floor. Both answers of every pair must name the same runs (``mismatches`` counts those that
do not).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.bulk import bulk_populate
from bench.common import PG_URL, ROOT, ScratchDatabase, latency_ms, machine, scratch_database, write_json
from bench.populate import CHAIN, N_DATASETS, N_WORKFLOWS
from bench.queries import wait_caught_up
from bench.server import RunledgerServer, cli, runledger_env, tree_env
from ledger.service import Ledger
from ledger.settings import Settings
from ledger.store.setup import events_table

#: The last commit of main before workspaces (74f1e44, "Workspaces (SPEC 9), write and read
#: side"): ``git log --oneline --first-parent`` shows it just below.
PRE_WORKSPACES = "0cb7640"
GOAL_RATIO = 1.10
#: One request of the mix: (name, path, query) from the round's random choices.
Read = tuple[str, str, dict[str, Any]]


@contextmanager
def old_tree(ref: str) -> Iterator[Path]:
    """``ref`` checked out into a temporary git worktree, removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="rl_bench_old_"))
    tree = directory / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), ref], cwd=ROOT, check=True)
    try:
        yield tree
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
        shutil.rmtree(directory, ignore_errors=True)


def check_imports(tree: Path) -> None:
    """The old tree's packages import with this venv and come from the old tree."""
    code = "import api.app, cli, ledger, projections; print(cli.__file__, api.app.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=tree_env(dict(os.environ), tree),
        cwd=tree,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    if not all(Path(path).is_relative_to(tree) for path in out):
        raise RuntimeError(f"the old tree's code is not what imports: {out}")


def copy_ledger(source: ScratchDatabase, target: ScratchDatabase) -> None:
    """The events of ``source`` into ``target`` (the library's tables, made by today's code)."""
    if source.backend == "sqlite":
        src = sqlite3.connect(source.url.removeprefix("sqlite:///"))
        dst = sqlite3.connect(target.url.removeprefix("sqlite:///"))
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
        return
    ledger = Ledger(Settings(database_url=target.url, data_dir=target.directory / "state"))
    try:
        table = events_table(ledger.recorder)
    finally:
        ledger.close()
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        into, rows = f'"{target.schema}".{table}', f'"{source.schema}".{table}'
        conn.execute(f"INSERT INTO {into} SELECT * FROM {rows}")
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{into}', 'notification_id'), "
            f"(SELECT max(notification_id) FROM {into}))"
        )


def build_read_side(env: dict[str, str], tree: Path) -> float:
    """Every view from event 0 and the Merkle tree, side by side, by ``tree``'s code: seconds."""
    started = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        jobs = [
            pool.submit(cli, env, *args, timeout=3600, cwd=tree)
            for args in (("projections", "rebuild"), ("digest",))
        ]
        for job in jobs:
            job.result()
    return round(time.perf_counter() - started, 1)


def reads(rng: random.Random, run_ids: list[str], chained: list[str]) -> list[Read]:
    """One round of the mix; both servers get exactly these."""
    page = {"limit": 50}
    return [
        ("http_floor", "/healthz", {}),
        ("get_run", f"/api/runs/{rng.choice(run_ids)}", {}),
        ("list_all", "/api/runs", page),
        ("list_by_status", "/api/runs", {"status": "success", **page}),
        ("list_by_workflow", "/api/runs", {"workflow": f"wf-{rng.randrange(N_WORKFLOWS)}", **page}),
        ("list_by_param", "/api/runs", {"param.dataset": f"ds-{rng.randrange(N_DATASETS)}", **page}),
        ("stats", "/api/stats", {}),
        ("lineage_depth3", f"/api/runs/{rng.choice(chained)}/lineage", {"depth": 3}),
    ]


def answer_key(body: Any) -> Any:
    """What both servers' answers must agree on: the runs a page names, a run's status, the
    counts of the stats, the lineage's node ids."""
    if not isinstance(body, dict):
        return body
    if "runs" in body:
        return [run["run_id"] for run in body["runs"]]
    if "nodes" in body:
        return sorted(str(node.get("id")) for node in body["nodes"])
    if "total_runs" in body:
        return body["total_runs"], {k: n for k, n in body["by_status"].items() if n}  # "waiting" is newer
    return body.get("run_id"), body.get("status")


@dataclass(frozen=True)
class Target:
    """A server to measure: its URL, an auditor token, its process (one: no ``--workers``)."""

    url: str
    token: str
    pid: int


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of process ``pid`` so far (Linux's per-process CPU clock,
    ``MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)``: nanoseconds, unlike ``/proc`` ticks)."""
    return time.clock_gettime_ns(((~pid) << 3) | 2)


def wait_idle(pid: int, *, quiet: int = 3, window: float = 2.0, timeout: float = 1800) -> float:
    """Seconds until process ``pid`` has used under 5% of a core in each of ``quiet``
    consecutive ``window``-second windows: its start-up work done (the Merkle follower, the
    runner's catch-up, the first retention pass, which starts 5 s after the server and scans
    the whole ledger), so that the reads are measured alone."""
    started, calm = time.monotonic(), 0
    while calm < quiet:
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"process {pid} stayed busy for {timeout} s")
        before = cpu_ns(pid)
        time.sleep(window)
        calm = calm + 1 if cpu_ns(pid) - before < 0.05 * window * 1e9 else 0
    return round(time.monotonic() - started, 1)


def interleaved(
    targets: dict[str, Target], run_ids: list[str], rounds: int, seed: int = 11
) -> dict[str, Any]:
    """``rounds`` rounds of :func:`reads`, each read sent to every target in turn, which goes
    first rotating per round: each answer's wall time and the server's CPU time meanwhile."""
    rng = random.Random(seed)
    chained = [r for i, r in enumerate(run_ids) if (i // N_WORKFLOWS) % CHAIN >= 3]
    names = list(targets)
    wall: dict[str, dict[str, list[float]]] = {name: {} for name in names}
    cpu: dict[str, dict[str, list[float]]] = {name: {} for name in names}
    failures: dict[str, int] = {}
    mismatches: dict[str, int] = {}
    with ExitStack() as stack:
        clients = {
            name: stack.enter_context(
                httpx.Client(base_url=t.url, headers={"Authorization": f"Bearer {t.token}"}, timeout=60)
            )
            for name, t in targets.items()
        }
        for round_no in range(-20, rounds):  # 20 rounds of warm-up first
            order = names[round_no % len(names) :] + names[: round_no % len(names)]
            for op, path, query in reads(rng, run_ids, chained):
                keys = []
                for name in order:
                    cpu_before, started = cpu_ns(targets[name].pid), time.perf_counter()
                    response = clients[name].get(path, params=query)
                    elapsed, cpu_used = time.perf_counter() - started, cpu_ns(targets[name].pid) - cpu_before
                    if response.status_code != 200:
                        failures[f"{name}:{op}"] = failures.get(f"{name}:{op}", 0) + 1
                        continue
                    keys.append(answer_key(response.json()))
                    if round_no >= 0:
                        wall[name].setdefault(op, []).append(elapsed)
                        cpu[name].setdefault(op, []).append(cpu_used / 1e9)
                if len(keys) == len(names) and any(key != keys[0] for key in keys):
                    mismatches[op] = mismatches.get(op, 0) + 1
    return {
        "latency": {name: {op: latency_ms(v) for op, v in ops.items()} for name, ops in wall.items()},
        "server_cpu": {name: {op: latency_ms(v) for op, v in ops.items()} for name, ops in cpu.items()},
        "failures": failures,
        "mismatches": mismatches,
    }


def ratios(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """new/old of each read's p50 and p99, and of the server's median CPU time per answer."""
    (new, old), (new_cpu, old_cpu) = ((r["new"], r["old"]) for r in (result["latency"], result["server_cpu"]))
    out: dict[str, dict[str, Any]] = {}
    for op in new:
        row: dict[str, Any] = {
            f"{p}_ratio": round(new[op][f"{p}_ms"] / old[op][f"{p}_ms"], 3) for p in ("p50", "p99")
        }
        row["cpu_p50_ratio"] = round(new_cpu[op]["p50_ms"] / old_cpu[op]["p50_ms"], 3)
        row["met"] = row["p50_ratio"] <= GOAL_RATIO and row["p99_ratio"] <= GOAL_RATIO
        out[op] = row
    return out


def bench_backend(backend: str, args: argparse.Namespace, tree: Path, results: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"backend": backend, "runs": args.runs, "ref": args.ref, "rounds": args.rounds}
    with ExitStack() as stack:
        dbs = {
            name: stack.enter_context(scratch_database(backend, prefix=f"rl_bench_ws_{name}"))
            for name in ("new", "old")
        }
        trees = {"new": ROOT, "old": tree}
        settings = Settings(database_url=dbs["new"].url, data_dir=dbs["new"].directory / "state")
        base = datetime.now(UTC) - timedelta(milliseconds=args.runs)
        filled = bulk_populate(settings, args.runs, base=base, progress=False)
        run_ids: list[str] = filled.pop("run_ids")
        copy_ledger(dbs["new"], dbs["old"])
        result["populate"] = filled
        result["read_side_seconds"] = {}
        for name, db in dbs.items():
            env = tree_env(runledger_env(db.url, db.directory / "state"), trees[name])
            result["read_side_seconds"][name] = build_read_side(env, trees[name])
        print(
            f"# {backend}: {filled['events']} events; read sides built {result['read_side_seconds']} s",
            flush=True,
        )
        targets: dict[str, Target] = {}
        for name, db in dbs.items():
            server = stack.enter_context(
                RunledgerServer(
                    db.url,
                    db.directory / "state",
                    tree=trees[name],
                    log_path=results / f"ws-{backend}-{name}.log",
                )
            )
            token = server.token("auditor")
            wait_caught_up(server.url, token)
            targets[name] = Target(server.url, token, server.pid)
        result["idle_after_seconds"] = {name: wait_idle(t.pid) for name, t in targets.items()}
        print(f"# {backend}: servers idle after {result['idle_after_seconds']} s", flush=True)
        result["loadavg_before"] = os.getloadavg()
        result |= interleaved(targets, run_ids, args.rounds)
        result["loadavg_after"] = os.getloadavg()
    result["ratios"] = ratios(result)
    return result


def report(result: dict[str, Any], out: Callable[[str], None] = print) -> None:
    load = [" ".join(f"{x:.2f}" for x in result[k]) for k in ("loadavg_before", "loadavg_after")]
    out(
        f"{result['backend']}: {result['runs']} runs, {result['ref']} (old) against today (new); "
        f"load average {load[0]} -> {load[1]}; ms"
    )
    header = ("old p50", "new p50", "ratio", "old p99", "new p99", "ratio", "old cpu", "new cpu", "ratio")
    out(f"{'read':16} " + " ".join(f"{h:>8}" for h in header) + f"  goal: ratios <= {GOAL_RATIO}")
    for op, row in result["ratios"].items():
        (old, new), (old_cpu, new_cpu) = (
            (r["old"][op], r["new"][op]) for r in (result["latency"], result["server_cpu"])
        )
        figures = (
            old["p50_ms"], new["p50_ms"], row["p50_ratio"],
            old["p99_ms"], new["p99_ms"], row["p99_ratio"],
            old_cpu["p50_ms"], new_cpu["p50_ms"], row["cpu_p50_ratio"],
        )  # fmt: skip
        verdict = "baseline" if op == "http_floor" else "met" if row["met"] else "MISSED"
        out(f"{op:16} " + " ".join(f"{x:8.3f}" for x in figures) + f"  {verdict}")
    out(f"failures={result['failures']} mismatches={result['mismatches']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="sqlite,postgres")
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument(
        "--rounds", type=int, default=400, help="measured rounds of the read mix (after 20 warm-up rounds)"
    )
    parser.add_argument("--ref", default=PRE_WORKSPACES, help="the commit to compare today's code with")
    parser.add_argument("--results-dir", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    results = Path(args.results_dir)
    results.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"machine": machine(), "results": []}
    with old_tree(args.ref) as tree:
        check_imports(tree)
        for backend in args.backend.split(","):
            result = bench_backend(backend, args, tree, results)
            summary["results"].append(result)
            report(result)
            write_json(args.out, summary)  # what is done so far, should a later backend fail
    summary["loadavg_end"] = os.getloadavg()
    write_json(args.out, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
