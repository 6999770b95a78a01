"""Peak memory of ``runledger`` commands: a child's peak RSS from the kernel's own accounting.

    .venv/bin/python -m bench.memory [--backend sqlite] [--runs 2000,10000] [--out FILE]

Grows one ledger (``bench.bulk``: the runs of ``bench.populate``, 13 events each) through the
given sizes and, at each, runs ``runledger export`` and ``runledger verify``: flat memory means
the same peak at every size.

``runledger serve``'s peak during the HTTP and query benchmarks is sampled by
:class:`bench.server.PeakRss`; one-shot commands (``export``, ``verify``) report ``ru_maxrss``
from ``wait4``, which covers the whole life of the process.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from typing import Any

from bench.bulk import bulk_populate
from bench.common import ROOT, machine, scratch_database, write_json
from bench.server import RUNLEDGER, runledger_env
from ledger.settings import Settings


def measure_command(env: dict[str, str], *args: str, timeout: float = 900) -> dict[str, Any]:
    """Run ``runledger ARGS``; its exit code, wall time and peak RSS (MB)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [RUNLEDGER, *args], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = started + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    return {
        "command": "runledger " + " ".join(args),
        "exit_code": proc.returncode,
        "seconds": round(time.perf_counter() - started, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
        "stderr_tail": stderr[-500:] if proc.returncode else "",
    }


def export_growth(backend: str, sizes: list[int]) -> list[dict[str, Any]]:
    """``runledger export`` and ``verify`` peak RSS as one ledger grows through ``sizes`` runs."""
    rows = []
    with scratch_database(backend, prefix="rl_bench_mem") as db:
        settings = Settings(database_url=db.url, data_dir=db.directory / "state")
        env = runledger_env(db.url, db.directory / "state")
        have = 0
        events = 0
        for size in sizes:
            filled = bulk_populate(settings, size - have, start=have, progress=False)
            have = size
            events += filled["events"]
            bundle = db.directory / f"bundle-{size}"
            row = {
                "backend": backend,
                "runs": size,
                "events": events,
                "export": measure_command(env, "export", "--out", str(bundle)),
                "verify": measure_command(env, "verify"),
            }
            rows.append(row)
            print(
                f"{backend:8} {events:>9} events: export {row['export']['seconds']} s "
                f"peak RSS {row['export']['peak_rss_mb']} MB; verify "
                f"{row['verify']['seconds']} s peak RSS {row['verify']['peak_rss_mb']} MB",
                flush=True,
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="sqlite")
    parser.add_argument(
        "--runs", default="2000,10000", help="ledger sizes (runs of 13 events) at which to export"
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.runs.split(",")]
    summary: dict[str, Any] = {"machine": machine(), "rows": []}
    for backend in args.backend.split(","):
        summary["rows"] += export_growth(backend, sizes)
    write_json(args.out, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
