"""``bench/RESULTS.md`` from the steps' JSON results: machine, commands, tables, goals."""

from __future__ import annotations

import json
from typing import Any

STORE_GOAL = 0.5
MLFLOW_GOAL = 10.0
#: Server CPU per ingested run, runledger over MLflow (issue #26): at most this.
CPU_GOAL = 0.1


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def store_append(result: dict[str, Any]) -> str:
    rows = [
        [
            r["backend"],
            r["threads"],
            r["events_per_save"],
            r["ledger_events_per_s"],
            r["raw_events_per_s"],
            r["ratio"],
            f"{r['ledger_transactions']} / {r['saves']}",
            _per_save(r, "ledger"),
            _per_save(r, "raw"),
            _met(r["ratio"] >= STORE_GOAL),
        ]
        for r in result["results"]
    ]
    durability = "; ".join(f"{k}: {v}" for k, v in result.get("durability", {}).items())
    return (
        "Ledger = `Ledger.trigger` (1 event/save) or `Ledger.report` of 5 tasks (10 events/save)"
        "; raw = the same stored rows inserted with plain sqlite3/psycopg, one transaction per "
        f"save, each thread on its own connection, same durability ({durability}). Ledger and "
        "raw alternate in 3 rounds per row. Goal: ratio >= 0.5. Per save: wall time, and the "
        "CPU this process used (all threads; the rest of the wall time is waiting on the "
        "database and its disk).\n\n"
        + _table(
            [
                "backend",
                "threads",
                "events/save",
                "ledger ev/s",
                "raw ev/s",
                "ratio",
                "ledger transactions / saves",
                "ledger µs/save wall, CPU",
                "raw µs/save wall, CPU",
                "goal",
            ],
            rows,
        )
    )


def _per_save(r: dict[str, Any], side: str) -> str:
    wall, cpu = r.get(f"{side}_wall_us_per_save"), r.get(f"{side}_cpu_us_per_save")
    return "-" if wall is None else f"{wall}, {cpu}"


def mlflow_compare(result: dict[str, Any]) -> str:
    rows = []
    rss = []
    for backend in result["backends"]:
        for r in backend["rows"]:
            ratio = r["runs_ratio"]
            p99_ok = r["runledger_p99_ms"] <= r["mlflow_p99_ms"]
            rows.append(
                [
                    r["backend"],
                    r["clients"],
                    r["mlflow_runs_per_s"],
                    r["runledger_runs_per_s"],
                    ratio,
                    _met(ratio is not None and ratio >= MLFLOW_GOAL),
                    r["mlflow_requests_per_s"],
                    r["runledger_requests_per_s"],
                    r["mlflow_p50_ms"],
                    r["runledger_p50_ms"],
                    r["mlflow_p99_ms"],
                    r["runledger_p99_ms"],
                    _met(p99_ok),
                    _errors(r["mlflow_errors"]) + " / " + _errors(r["runledger_errors"]),
                ]
            )
        ours = backend["runledger"]
        rss.append([backend["backend"], ours.get("peak_rss_write_mb"), ours.get("peak_rss_mb")])
    text = (
        f"MLflow {result.get('mlflow_version', '?')} (`mlflow server`, 2 gunicorn workers, "
        f"its own venv `bench/.mlflow-venv`) and `runledger serve --no-executor{_workers(result)}`"
        ", each on a fresh "
        "store of the same backend, driven by the shared `runbench` harness (13 requests per "
        "run for both) one after the other in the same session. Goals: runledger runs/s >= 10x "
        "MLflow's, p99 no worse.\n\n"
        + _table(
            [
                "backend",
                "clients",
                "MLflow runs/s",
                "runledger runs/s",
                "ratio",
                "10x goal",
                "MLflow req/s",
                "runledger req/s",
                "MLflow p50 ms",
                "runledger p50 ms",
                "MLflow p99 ms",
                "runledger p99 ms",
                "p99 goal",
                "errors (MLflow / runledger)",
            ],
            rows,
        )
    )
    text += _cpu_table(result)
    ingest = []
    for backend in result["backends"]:
        for w in backend["runledger"]["write"]:
            ingest.append(
                [
                    backend["backend"],
                    w["clients"],
                    w["runs_per_s"],
                    w["requests_per_s"],
                    w["p50_ms"],
                    w["p95_ms"],
                    w["p99_ms"],
                    _cores(w.get("server_cores")),
                    _cores(w.get("client_cores")),
                    _cores(w.get("foreign_cores")),
                ]
            )
    text += (
        "\nHTTP ingest through the worker API (runledger side of the table above, with "
        "p95 and the CPU the server, the harness's client process and everything else "
        "on the machine used):\n\n"
        + _table(
            [
                "backend",
                "clients",
                "runs/s",
                "requests/s",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "server cores",
                "client cores",
                "foreign cores",
            ],
            ingest,
        )
    )
    ceiling = [
        [
            r["backend"],
            r["clients"],
            r["mlflow_runs_per_s"],
            r["null_runs_per_s"],
            r["null_ratio"],
            _cores(r.get("null_client_cores")),
            r["runledger_runs_per_s"],
            round(r["runledger_runs_per_s"] / r["null_runs_per_s"], 2) if r["null_runs_per_s"] else "-",
        ]
        for backend in result["backends"]
        for r in backend["rows"]
        if r.get("null_runs_per_s") is not None
    ]
    if ceiling:
        text += (
            "\nThe harness's ceiling: the same harness, adapter and clients against "
            "`bench/null_server.py`, runledger's HTTP stack (FastAPI on uvicorn, same "
            "settings) answering every request without storing anything, right after "
            "runledger in the same session. Its runs/s is the most any server on this stack "
            "can show here; `null / MLflow` is the largest ratio this machine and harness "
            "allow, and `runledger / null` how much of that ceiling runledger reaches.\n\n"
            + _table(
                [
                    "backend",
                    "clients",
                    "MLflow runs/s",
                    "null server runs/s",
                    "null / MLflow",
                    "harness client cores (null)",
                    "runledger runs/s",
                    "runledger / null",
                ],
                ceiling,
            )
        )
    text += "\nPeak RSS of `runledger serve` (process tree) during the ingest benchmark:\n\n" + _table(
        ["backend", "after write phase MB", "peak MB"], rss
    )
    return text


def _cpu_table(result: dict[str, Any]) -> str:
    """Server CPU per run beside throughput, p99 and the null server's ceiling (issue #26)."""
    rows = []
    for backend in result["backends"]:
        for r in backend["rows"]:
            if r.get("cpu_ratio") is None and r.get("runledger_cpu_ms_per_run") is None:
                continue
            ratio = r.get("cpu_ratio")
            rows.append(
                [
                    r["backend"],
                    r["clients"],
                    r.get("mlflow_cpu_ms_per_run"),
                    r.get("runledger_cpu_ms_per_run"),
                    _spread(r.get("runledger_cpu_ms_per_run_trials")),
                    ratio,
                    _met(ratio is not None and ratio <= CPU_GOAL),
                    f"{r.get('mlflow_cpu_ms_per_request')} / {r.get('runledger_cpu_ms_per_request')}",
                    r.get("null_cpu_ms_per_run", "-"),
                    " / ".join(
                        str(r.get(k, "-"))
                        for k in ("mlflow_runs_per_s", "runledger_runs_per_s", "null_runs_per_s")
                    ),
                    r["runs_ratio"],
                    r.get("null_ratio", "-"),
                    f"{r['mlflow_p99_ms']} / {r['runledger_p99_ms']} / {r.get('null_p99_ms', '-')}",
                ]
            )
    if not rows:
        return ""
    nodelay_text = "; ".join(
        f"{b['backend']}: " + ", ".join(f"{k} {v}" for k, v in b.get("nodelay", {}).items())
        for b in result["backends"]
        if b.get("nodelay")
    )
    return (
        "\nServer CPU per ingested run (issue #26): the server process tree's CPU time (user + "
        "system, every process of the server's session, from `/proc`) over each trial, divided by "
        "the runs (13 requests each) that trial completed; median over the trials, and runledger's "
        "trials as min-max. Goal: runledger / MLflow <= 0.1. Beside it: runs/s of MLflow / "
        "runledger / the null server (the harness's ceiling: runledger's HTTP stack storing "
        "nothing), the runs/s ratio, the most the harness allows (null / MLflow), and p99.\n\n"
        + _table(
            [
                "backend",
                "clients",
                "MLflow CPU ms/run",
                "runledger CPU ms/run",
                "runledger trials",
                "CPU ratio",
                "0.1 goal",
                "CPU ms/request MLflow / runledger",
                "null server CPU ms/run",
                "runs/s MLflow / runledger / null",
                "runs/s ratio",
                "null / MLflow",
                "p99 ms MLflow / runledger / null",
            ],
            rows,
        )
        + (
            f"\n`TCP_NODELAY` on each server's accepted connections (read from its sockets): "
            f"{nodelay_text}.\n"
            if nodelay_text
            else ""
        )
    )


def _spread(values: Any) -> str:
    values = [v for v in values or [] if v is not None]
    if not values:
        return "-"
    return f"{min(values)}-{max(values)}" if len(values) > 1 else str(values[0])


def _workers(result: dict[str, Any]) -> str:
    """`` --workers N`` as the runledger side ran (older results have no count: one)."""
    counts = {b["runledger"].get("server_workers", 1) for b in result["backends"]}
    return "".join(f" --workers {n}" for n in sorted(counts) if n > 1)


def _cores(values: Any) -> str:
    if not values:
        return "-"
    return ", ".join("-" if v is None else str(v) for v in values)


def _errors(errors: dict[str, int]) -> str:
    return str(sum(errors.values())) if errors else "0"


def queries(result: dict[str, Any]) -> str:
    parts = []
    for r in result["results"]:
        goals = r.get("goals", {})
        floor = r.get("p50_vs_http_floor", {})
        rows = []
        for op, values in r["latency"].items():
            if op == "failures":
                continue
            goal = goals.get(op)
            rows.append(
                [
                    op,
                    values["n"],
                    values["p50_ms"],
                    values["p95_ms"],
                    values["p99_ms"],
                    floor.get(op, "-"),
                    values.get("avg_items", "-"),
                    f"< {goal['goal_p99_ms']} ms: {_met(goal['met'])}" if goal else "-",
                ]
            )
        parts.append(
            _queries_intro(r)
            + _table(
                ["query", "n", "p50 ms", "p95 ms", "p99 ms", "p50 / HTTP floor", "items", "goal (p99)"], rows
            )
        )
        if "mlflow" in r:
            parts.append(_mlflow_peer(r))
    return "\n".join(parts)


def _mlflow_peer(r: dict[str, Any]) -> str:
    """MLflow's ``search_runs`` over the same runs (``bench.queries --mlflow``)."""
    peer = r["mlflow"]
    ratios = r.get("mlflow_p50_vs_runledger_p50", {})
    rows = [
        [
            op,
            r["latency"][op]["p50_ms"],
            r["latency"][op]["p99_ms"],
            values["p50_ms"],
            values["p99_ms"],
            values.get("avg_items", "-"),
            ratios.get(op, "-"),
        ]
        for op, values in peer["latency"].items()
        if op in r["latency"]
    ]
    pop = peer["populate"]
    return (
        f"\nThe peer: MLflow {peer['mlflow_version']} `search_runs` (max_results 50, newest "
        f"first) over the same {pop['runs']} runs in its store on the same backend "
        f"({peer['uri_kind']}), populated in {pop['seconds']} s through its store's ORM classes "
        "in bulk (`bench/mlflow_search.py`); called in-process, so MLflow pays no HTTP round "
        "trip where runledger does. MLflow has no OR: the OR rows are two searches merged.\n\n"
        + _table(
            [
                "query",
                "runledger p50 ms",
                "runledger p99 ms",
                "MLflow p50 ms",
                "MLflow p99 ms",
                "MLflow items",
                "MLflow p50 / runledger p50",
            ],
            rows,
        )
    )


def _queries_intro(r: dict[str, Any]) -> str:
    pop = r["populate"]
    failures = r["latency"]["failures"] or "none"
    if "bulk" not in pop:  # a result of the earlier script (the server following the writes)
        caught = r.get("projections_caught_up", {})
        return (
            f"Backend {r['backend']}: {r['runs']} runs, {pop['events']} events written in "
            f"{pop['seconds']} s ({pop['events_per_s']} events/s through the Ledger "
            f"service); projections following at lag 0 "
            f"{caught.get('seconds_from_first_write')} s after the first write. "
            f"Failures: {failures}. Peak RSS of `runledger serve`: "
            f"{r.get('serve_peak_rss_mb')} MB.\n\n"
        )
    service, bulk, rebuild, tree = pop["service"], pop["bulk"], r["rebuild"], r["tree"]
    return (
        f"Backend {r['backend']}: {r['runs']} runs, {pop['events']} events in "
        f"{pop['seconds']} s: the first {service['runs']} runs through the Ledger service "
        f"({service['events_per_s']} events/s, 200 runs per save), the other {bulk['runs']} "
        f"by `bench/bulk.py` ({bulk['events_per_s']} events/s with {bulk['workers']} "
        f"processes, {pop.get('bulk_vs_service', '-')}x the service path; the same events, "
        f"hash-chained by the product's hashing). Then, side by side, `runledger projections "
        f"rebuild`: {rebuild['seconds']} s ({rebuild['events_per_s']} events/s, peak RSS "
        f"{rebuild['peak_rss_mb']} MB) and `runledger digest` (the Merkle tree): "
        f"{tree['seconds']} s ({r.get('read_side_seconds', '-')} s for both); "
        f"`runledger serve` at lag 0 after {r.get('server_caught_up_seconds')} s. Sequential "
        f"requests over one keep-alive connection; `http_floor` is `GET /healthz` in the same "
        f"loop, the baseline of the ratio column. Failures: {failures}. Peak RSS of "
        f"`runledger serve`: {r.get('serve_peak_rss_mb')} MB."
        + (
            f" `ANALYZE` (as autovacuum would) before the queries: {r['analyze_seconds']} s."
            if "analyze_seconds" in r
            else " Autovacuum is off on this PostgreSQL; the rebuild runs `ANALYZE` on each new "
            "table before the swap (and `VACUUM` first where index-only scans need a "
            "visibility map), so the views go live with planner statistics."
            if r.get("autovacuum") == "off"
            else ""
        )
        + (
            f" `runledger verify` over the whole ledger: exit {r['verify']['exit_code']} in "
            f"{r['verify']['seconds']} s."
            if "verify" in r
            else ""
        )
        + "\n\n"
    )


def marquez_lineage(result: dict[str, Any]) -> str:
    intro = (
        f"`GET /api/v1/lineage`'s query (`projections.views.marquez_graph.lineage`, the whole graph "
        f"answer) on {result['backend']}: {result['runs']} runs, {result['datasets']} datasets, "
        f"{result['edges']} edges in one workspace; random dataset nodes, sequentially, in one "
        f"process. CPU per query is this process's and its PostgreSQL backend's (what a busy "
        f"machine does not inflate as it does latency). Load average "
        f"{' -> '.join(f'{x:.1f}' for x in result['load_average_1m'])} on {result['cpus']} CPUs. "
        f"Goal: p99 < {result['target_p99_ms']} ms at depth 5.\n"
    )
    rows = [
        [
            depth,
            f["n"],
            f["p50_ms"],
            f["p99_ms"],
            f["nodes_avg"],
            f["nodes_max"],
            f["client_cpu_ms"],
            f["server_cpu_ms"],
            _met(f["p99_ms"] < result["target_p99_ms"]) if depth == "5" else "-",
        ]
        for depth, f in result["depths"].items()
    ]
    header = ["depth", "n", "p50 ms", "p99 ms", "nodes avg", "nodes max", "client CPU ms", "server CPU ms"]
    return intro + "\n" + _table([*header, "goal (p99)"], rows)


def memory(result: dict[str, Any]) -> str:
    rows = [
        [
            r["backend"],
            r["runs"],
            r["events"],
            r["export"]["seconds"],
            r["export"]["peak_rss_mb"],
            r["verify"]["seconds"],
            r["verify"]["peak_rss_mb"],
            f"{r['export']['exit_code']}/{r['verify']['exit_code']}",
        ]
        for r in result["rows"]
    ]
    return "One ledger grown through the sizes; peak RSS from `wait4` (`ru_maxrss`).\n\n" + _table(
        [
            "backend",
            "runs",
            "events",
            "export s",
            "export peak MB",
            "verify s",
            "verify peak MB",
            "exit codes",
        ],
        rows,
    )


def projections_rebuild(result: dict[str, Any]) -> str:
    rows = []
    for r in result["results"]:
        one = r["rebuild_all_views_one_pass"]
        single = r.get("rebuild_all_views_one_process", one)
        lag = r["live_lag"]
        goals = r.get("goals", {})
        rows.append(
            [
                r["backend"],
                r["events"],
                one["events_per_s"],
                one["parts"],
                one["fill_seconds"],
                one["index_seconds"],
                single["events_per_s"],
                r["baseline_decoded_scan_events_per_s"],
                r["ratio_one_pass_to_raw_scan"],
                lag["p50_ms"],
                lag["p99_ms"],
                goals.get("rebuild_events_per_s", "-"),
                goals.get("live_lag_p99_ms", "-"),
            ]
        )
    pops = "; ".join(
        f"{r['backend']}: {r['populate']['events']} events in {r['populate']['seconds']} s"
        for r in result["results"]
    )
    return (
        "`runledger projections rebuild` of all four views in one pass over the events "
        "(on PostgreSQL split between two processes by run), then live lag: a run "
        "triggered through the Ledger service until its summary is visible, with the "
        "runner following. Baselines in the same run: a scan of the events table decoded "
        f"(`decoded scan`) and not (`raw`). Populated ({pops}) by `bench.bulk` after the "
        "first runs through the service. Goals on PostgreSQL: rebuild >= 50,000 "
        "events/s, lag p99 < 100 ms.\n\n"
        + _table(
            [
                "backend",
                "events",
                "rebuild ev/s",
                "processes",
                "fill s",
                "index s",
                "one process ev/s",
                "decoded scan ev/s",
                "ratio to raw scan",
                "lag p50 ms",
                "lag p99 ms",
                "rebuild goal",
                "lag goal",
            ],
            rows,
        )
    )


def retention(result: dict[str, Any]) -> str:
    rows = [
        [
            result.get("backend", "sqlite"),
            r["runs"],
            r["runs_expunged"],
            r["files_deleted"],
            f"{r['shared_files_kept_by_live_runs']}/{r['shared_files_read_by_live_runs']}",
            r["apply"]["seconds"],
            r["verify"]["seconds"],
            r["files_per_s"],
            r["unlink_files_per_s"],
            r["ratio_files_per_s_vs_unlink"],
            r["unlink_unsynced_files_per_s"],
            r["apply"]["peak_rss_mb"],
            r["verify"]["peak_rss_mb"],
            r["ratio_peak_rss_vs_verify"],
            f"{r['apply']['exit_code']}",
        ]
        for r in result["results"]
    ]
    return (
        "`runledger retention apply` over `bench.bulk` ledgers (13 events a run) of which half the "
        "runs expire (`RUNLEDGER_RETENTION_DAYS=30`), two real stored files a run; a file an old "
        "run wrote and a new run reads must stay. Files/s counts the whole command (the events "
        "scan included). Baselines in the same run: a bare `os.unlink` loop over files laid out "
        "as the store's, synced to disk first as the store's are (`synced unlink/s`), and "
        "unsynced (written a moment before, no block on disk yet: nearly free); `runledger "
        "verify`'s seconds and peak RSS over the same ledger (apply scans every run event "
        "once, as verify reads every event: when the two take as long, the scan is what bounds "
        "files/s). Flat memory: the same peak at every size.\n\n"
        + _table(
            [
                "backend",
                "runs",
                "expunged",
                "files deleted",
                "shared kept",
                "apply s",
                "verify s",
                "files/s",
                "synced unlink/s",
                "ratio",
                "unsynced unlink/s",
                "apply peak MB",
                "verify peak MB",
                "peak ratio",
                "exit",
            ],
            rows,
        )
    )


def workspaces_regression(result: dict[str, Any]) -> str:
    """Today against the last commit before workspaces: one table per backend."""
    out = [
        "A single-workspace deployment (every run in `default`): today's `runledger serve` and "
        "that of the last commit before workspaces (`--ref`), each over its own copy of one "
        "`bench.bulk` ledger, the same reads sent to both in turn (the first alternating per "
        "round). Per read: latency p50 and p99 of each and new/old, and the server's median "
        "CPU time per answer (load-robust) and new/old. Goal: new/old at most 1.10.\n"
    ]
    for r in result["results"]:
        load = " -> ".join(", ".join(f"{x:.2f}" for x in r[k]) for k in ("loadavg_before", "loadavg_after"))
        out.append(
            f"**{r['backend']}**, {r['runs']} runs, old = `{r['ref']}`, {r.get('rounds', '?')} rounds; "
            f"load average {load}; servers idle after {r.get('idle_after_seconds', '?')} s; "
            f"failures {r['failures'] or 'none'}, answers that differ {r['mismatches'] or 'none'}.\n"
        )
        rows = []
        for op, ratio in r["ratios"].items():
            old, new = r["latency"]["old"][op], r["latency"]["new"][op]
            old_cpu, new_cpu = r["server_cpu"]["old"][op], r["server_cpu"]["new"][op]
            rows.append(
                [
                    op,
                    f"{old['p50_ms']} / {new['p50_ms']}",
                    ratio["p50_ratio"],
                    f"{old['p99_ms']} / {new['p99_ms']}",
                    ratio["p99_ratio"],
                    f"{old_cpu['p50_ms']} / {new_cpu['p50_ms']}",
                    ratio["cpu_p50_ratio"],
                    "baseline" if op == "http_floor" else "met" if ratio["met"] else "**missed**",
                ]
            )
        header = [
            "read",
            "p50 ms old / new",
            "ratio",
            "p99 ms old / new",
            "ratio",
            "CPU ms old / new",
            "ratio",
        ]
        out.append(_table([*header, "latency goal"], rows))
    return "\n".join(out)


RENDERERS = {
    "store_append": store_append,
    "mlflow_compare": mlflow_compare,
    "queries": queries,
    "queries_postgres": queries,
    "memory": memory,
    "projections_rebuild": projections_rebuild,
    "retention": retention,
    "workspaces_regression": workspaces_regression,
    "marquez_lineage": marquez_lineage,
}
TITLES = {
    "store_append": "1. Store append: the Ledger service against raw inserts",
    "mlflow_compare": "2. HTTP ingest, side by side with MLflow",
    "queries": "3. Queries at scale",
    "queries_postgres": "3b. Queries at scale on PostgreSQL",
    "marquez_lineage": "3c. Marquez lineage by node (bench/marquez_lineage.py)",
    "memory": "5. Memory: export and verify as the ledger grows",
    "projections_rebuild": "4a. Projection rebuild and live lag (bench/projections_rebuild.py)",
    "executor": "4b. Executor (bench/executor.py)",
    "verify_export": "4c. Verify and export (bench/verify_export.py)",
    "verify_export_1m": "4c'. Verify and export at 1,000,000 events",
    "retention": "6. Retention apply: files per second and memory as the ledger grows (bench/retention.py)",
    "workspaces_regression": "7. Workspaces: single-workspace reads against the last commit before them",
}


def render(info: dict[str, Any], records: list[dict[str, Any]], total: float | None, invocation: str) -> str:
    ran = [r for r in records if not r.get("kept")]
    kept = [r["name"] for r in records if r.get("kept")]
    out = [
        "# runledger benchmark results\n",
        (
            f"Written by `bench/run_all.py` ({invocation}), whose steps took {total} s wall time "
            f"(the {len(ran)} of {len(records)} steps run this time)."
            if total is not None
            else f"Written by `bench/run_all.py` ({invocation}) from the records in RESULTS.json: each "
            f"step as measured at the time shown in its row."
        )
        + (f" Kept from earlier runs (each with its own date below): {', '.join(kept)}." if kept else "")
        + " Ratios are measured side by side in the same process or session, because absolute "
        "times on a shared 2-core machine are noisy.\n",
        "## Machine\n",
        _table(
            [
                "cpu",
                "cores",
                "memory GB",
                "kernel",
                "python",
                "sqlite",
                "postgresql",
                "load average at start",
                "started (UTC)",
            ],
            [
                [
                    info["cpu"],
                    info["cores"],
                    info["memory_gb"],
                    info["kernel"],
                    info["python"],
                    info["sqlite"],
                    info["postgresql"],
                    ", ".join(f"{x:.2f}" for x in info["loadavg"]),
                    info["time_utc"],
                ]
            ],
        ),
        "## Commands\n",
        _table(
            ["step", "command", "status", "seconds", "started (UTC)", "load average after (1, 5, 15 min)"],
            [
                [
                    r["name"],
                    f"`{r['command']}`",
                    r["status"],
                    r.get("seconds", "-"),
                    r.get("started_utc", "-") + (" (earlier run)" if r.get("kept") else ""),
                    ", ".join(str(x) for x in r.get("loadavg_after", [])),
                ]
                for r in records
            ],
        ),
        "The machine is shared with other engineers' test runs while this runs: a load "
        "average above 2 means the benchmarks got less than the whole machine; the "
        "`foreign cores` columns say how much CPU went to other processes during each trial.\n",
    ]
    for r in records:
        out.append(f"## {TITLES.get(r['name'], r['name'])}\n")
        if r["status"] != "ok":
            out.append(f"Not measured: {r['status']}.\n\n```\n{r.get('error', '')[-1500:]}\n```\n")
            continue
        renderer = RENDERERS.get(r["name"])
        if renderer is not None:
            try:
                out.append(renderer(r["result"]))
                continue
            except (KeyError, TypeError, ZeroDivisionError) as exc:
                out.append(f"(could not tabulate: {exc!r}; the script's output follows)\n")
        result = {k: v for k, v in r.get("result", {}).items() if k != "machine"}
        text = json.dumps(result, indent=1) if result else r.get("stdout", "").strip()
        out.append(
            "The script's own result (its JSON, the machine left out):\n\n```\n" + text[:6000] + "\n```\n"
        )
    return "\n".join(out)
