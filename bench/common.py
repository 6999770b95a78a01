"""Shared helpers of the benchmarks: scratch databases, percentiles, machine facts, RSS."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

PG_URL = os.environ.get("RUNLEDGER_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ScratchDatabase:
    backend: str  # "sqlite" | "postgres"
    url: str  # a runledger database URL
    directory: Path  # scratch folder (SQLite file, data dir, logs)
    schema: str = ""  # PostgreSQL schema ("" for SQLite)


@contextmanager
def scratch_database(backend: str, *, prefix: str = "rl_bench") -> Iterator[ScratchDatabase]:
    """A fresh SQLite file or PostgreSQL schema of our own, removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix=f"{prefix}_"))
    schema = ""
    try:
        if backend == "sqlite":
            url = f"sqlite:///{directory / 'ledger.db'}"
        else:
            schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
            url = f"{PG_URL}?schema={schema}"
        yield ScratchDatabase(backend, url, directory, schema)
    finally:
        if schema:
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        shutil.rmtree(directory, ignore_errors=True)


def percentile(values: list[float], p: float) -> float:
    """Linear-interpolated percentile (the runbench harness's definition)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100.0
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def latency_ms(values: list[float]) -> dict[str, float]:
    """p50/p95/p99/mean in milliseconds of latencies given in seconds."""
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50) * 1000, 3),
        "p95_ms": round(percentile(values, 95) * 1000, 3),
        "p99_ms": round(percentile(values, 99) * 1000, 3),
        "mean_ms": round(statistics.fmean(values) * 1000, 3) if values else float("nan"),
    }


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    pg_version = ""
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            pg_version = str(row[0]) if row else ""
    except psycopg.Error:
        pg_version = "unreachable"
    import sqlite3

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg_version,
        "loadavg": os.getloadavg(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def rss_kb(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of one process in KiB, from /proc/<pid>/status."""
    current = peak = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                current = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1])
    except OSError:
        pass
    return current, peak


def tree_pids(pid: int) -> list[int]:
    """``pid`` and its descendants (uvicorn workers are children of ``runledger serve``)."""
    try:
        out = subprocess.run(
            ["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return [pid]
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2:
            children.setdefault(int(parts[1]), []).append(int(parts[0]))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def tree_peak_rss_kb(pid: int) -> int:
    """Sum over the process tree of each process's peak RSS (an upper bound of the peak)."""
    return sum(rss_kb(p)[1] for p in tree_pids(pid))


def write_json(path: str | None, summary: dict[str, Any]) -> None:
    """Write a benchmark's summary where ``--out`` asked for it (nothing without ``--out``)."""
    if path:
        with open(path, "w") as handle:
            json.dump(summary, handle, indent=2)
