"""MLflow's ``search_runs`` over the same runs as ``bench.queries``: the peer of issue 20.

Run by ``bench.queries --mlflow`` with the MLflow venv's python (``bench/.mlflow-venv``, made
by ``bench.mlflow_compare.ensure_mlflow_venv``); it imports nothing of runledger. It reads
the runs ``bench.queries`` wrote (one TSV line per run: the same run ids, workflows, end
states, parameters and labels as the ledger's), and populates MLflow in bulk *through its
store*: MLflow's own ``SqlAlchemyStore`` creates the schema (its migrations) and one
experiment, then the store's own ORM classes (``SqlRun``, ``SqlParam``, ``SqlTag``,
``SqlLatestMetric``) are inserted with SQLAlchemy's ``bulk_insert_mappings`` in its session,
10,000 runs per transaction (REST or ``log_batch`` would take hours at 1,000,000 runs).
Each runledger label is an MLflow tag, each parameter an MLflow param, and ``max_urls`` is
also a metric (MLflow compares params only as strings; numeric ranges need a metric).

Then, in-process (no HTTP: MLflow is spared the HTTP floor runledger pays), p50/p99 of
``store.get_run`` and ``store.search_runs(max_results=50, order_by start_time DESC)`` with
the filters of ``bench.queries``. MLflow has no OR: the OR query is two searches merged by
start time, as its users do it.

    bench/.mlflow-venv/bin/python bench/mlflow_search.py --uri URI --runs-file F --out F
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from typing import Any

BATCH = 10_000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_ms(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50) * 1000, 3),
        "p95_ms": round(percentile(values, 95) * 1000, 3),
        "p99_ms": round(percentile(values, 99) * 1000, 3),
        "mean_ms": round(statistics.fmean(values) * 1000, 3) if values else float("nan"),
    }


def populate(store: Any, experiment_id: str, runs_file: str) -> dict[str, Any]:
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlParam, SqlRun, SqlTag

    started = time.perf_counter()
    count = 0
    run_rows: list[dict[str, Any]] = []
    params: list[dict[str, Any]] = []
    tags: list[dict[str, Any]] = []
    metrics: list[dict[str, Any]] = []

    def flush() -> None:
        with store.ManagedSessionMaker() as session:
            session.bulk_insert_mappings(SqlRun, run_rows)
            session.bulk_insert_mappings(SqlParam, params)
            session.bulk_insert_mappings(SqlTag, tags)
            session.bulk_insert_mappings(SqlLatestMetric, metrics)
        for rows in (run_rows, params, tags, metrics):
            rows.clear()

    with open(runs_file, encoding="utf-8") as lines:
        for line in lines:
            run_id, workflow, failed, start_ms, params_json, labels_json = line.rstrip("\n").split("\t")
            uuid = run_id.replace("-", "")
            start = int(start_ms)
            run_rows.append(
                {
                    "run_uuid": uuid,
                    "name": run_id,
                    "source_type": "LOCAL",
                    "source_name": "",
                    "entry_point_name": "",
                    "user_id": "bench",
                    "status": "FAILED" if failed == "1" else "FINISHED",
                    "start_time": start,
                    "end_time": start + 1,
                    "source_version": "",
                    "lifecycle_stage": "active",
                    "artifact_uri": f"/tmp/mlflow-artifacts/{uuid}",
                    "experiment_id": int(experiment_id),
                }
            )
            parameters = json.loads(params_json)
            for key, value in parameters.items():
                params.append({"run_uuid": uuid, "key": key, "value": str(value)})
            tags.append({"run_uuid": uuid, "key": "workflow", "value": workflow})
            for key, value in json.loads(labels_json).items():
                tags.append({"run_uuid": uuid, "key": key, "value": value})
            metrics.append(
                {
                    "run_uuid": uuid,
                    "key": "max_urls",
                    "value": float(parameters["max_urls"]),
                    "timestamp": start,
                    "step": 0,
                    "is_nan": False,
                }
            )
            count += 1
            if count % BATCH == 0:
                flush()
                if count % (10 * BATCH) == 0:
                    rate = count / (time.perf_counter() - started)
                    print(f"# mlflow: {count} runs ({rate:.0f} runs/s)", file=sys.stderr, flush=True)
    if run_rows:
        flush()
    elapsed = time.perf_counter() - started
    return {"runs": count, "seconds": round(elapsed, 1), "runs_per_s": round(count / elapsed, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", required=True)
    parser.add_argument("--runs-file", required=True)
    parser.add_argument("--queries", required=True, help="JSON: op -> MLflow filter string")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    import mlflow
    from mlflow.entities import ViewType
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(args.uri, tempfile.mkdtemp(prefix="mlflow-search-artifacts-"))
    experiment_id = store.create_experiment(f"bench-{time.time_ns()}")
    result: dict[str, Any] = {"mlflow_version": mlflow.__version__, "uri_kind": args.uri.split(":")[0]}
    result["populate"] = populate(store, experiment_id, args.runs_file)
    print(f"# mlflow: populated {result['populate']}", file=sys.stderr, flush=True)
    with open(args.runs_file, encoding="utf-8") as lines:
        run_ids = [line.split("\t", 1)[0].replace("-", "") for line in lines]
    queries: dict[str, Any] = json.loads(args.queries)
    order = ["attributes.start_time DESC"]
    rng = random.Random(11)
    lat: dict[str, list[float]] = {}
    sizes: dict[str, list[int]] = {}

    def search(filter_string: str) -> list[Any]:
        return list(
            store.search_runs(
                [experiment_id], filter_string, ViewType.ACTIVE_ONLY, max_results=50, order_by=order
            )
        )

    for warm in range(3):
        store.get_run(run_ids[warm])
        for spec in queries.values():
            for f in spec if isinstance(spec, list) else [spec]:
                search(f)
    for _ in range(args.iterations):
        started = time.perf_counter()
        store.get_run(rng.choice(run_ids))
        lat.setdefault("get_run", []).append(time.perf_counter() - started)
        for op, spec in queries.items():
            started = time.perf_counter()
            if isinstance(spec, list):  # no OR in MLflow: one search per side, merged
                found = sorted((r for f in spec for r in search(f)), key=lambda r: -r.info.start_time)
                unique = list({r.info.run_id: r for r in found}.values())[:50]
            else:
                unique = search(spec)
            lat.setdefault(op, []).append(time.perf_counter() - started)
            sizes.setdefault(op, []).append(len(unique))
    result["latency"] = {op: latency_ms(values) for op, values in lat.items()}
    for op, values in sizes.items():
        result["latency"][op]["avg_items"] = round(sum(values) / len(values), 1)
    with open(args.out, "w", encoding="utf-8") as out:
        json.dump(result, out, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
