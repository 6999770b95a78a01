"""``runledger retention apply`` over a big ledger of which half the runs expire (SPEC 11).

    .venv/bin/python -m bench.retention --runs 100000 [--backend sqlite] [--out FILE]

The ledger is ``bench.bulk``'s (13 events a run, 5 tasks, each reading and writing file
hashes): the first half triggered 60 days ago, the second half now, with
``RUNLEDGER_RETENTION_DAYS=30``. Two stored files a run are made real in the file store: one
only that run names (``t1/out0``) and one the next run of its workflow reads (``t4/out0``,
``bench.populate``'s chain): at the boundary between old and new runs, that file must stay.

Printed: the pass's seconds, runs expunged, files deleted per second, its peak RSS; and the
baselines measured in the same run on the same machine and files: ``runledger verify`` of the
same ledger (a streamed pass over every event: seconds and peak RSS, ``bench.memory`` shows its
memory flat), and a bare ``os.unlink`` loop over as many files (up to 20,000) laid out as the
store's: synced to disk first, as the store's files are by then (``ratio_files_per_s_vs_unlink``),
and unsynced, the loop measured before (``ratio_files_per_s_vs_unsynced_unlink``; a file
written a moment ago has no block on disk yet, so its unlink is nearly free). The files per
second of ``retention apply`` count its whole run, the events scan included.
``--sizes 10000,100000`` repeats it per size: flat memory means the same peak RSS at each.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.bulk import bulk_populate
from bench.common import ROOT, machine, scratch_database, write_json
from bench.populate import CHAIN, N_WORKFLOWS, sha
from bench.server import RUNLEDGER, runledger_env
from ledger.settings import Settings
from ledger.store.filestore import FileStore


def measured(env: dict[str, str], *args: str) -> dict[str, Any]:
    """``runledger ARGS``: exit code, seconds, peak RSS (MB, ``wait4``) and stderr."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [RUNLEDGER, *args], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    _, status, usage = os.wait4(proc.pid, 0)
    return {
        "command": "runledger " + " ".join(args),
        "exit_code": os.waitstatus_to_exitcode(status),
        "seconds": round(time.perf_counter() - started, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "stderr_tail": stderr.strip().splitlines()[-1] if stderr.strip() else "",
    }


def make_files(files: FileStore, runs: int) -> list[str]:
    """Two real stored files per run (see the module docstring); their sha256s."""
    made = []
    for seq in range(runs):
        for digest in (sha(f"{seq}/t1/out0"), sha(f"{seq}/t4/out0")):
            path = files.path_for(digest)
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(b"x")
            made.append(digest)
    return made


def unlink_rate(directory: Any, count: int, *, synced: bool) -> float:
    """Files per second a bare ``os.unlink`` loop deletes (files made the same way). With
    ``synced``, the files are on disk first (``os.sync``), as the store's are when retention
    deletes them: their unlink frees blocks, and waits on the file system's journal. Unsynced,
    a file written a moment ago has no block yet, and its unlink is nearly free."""
    store = FileStore(directory)
    paths = []
    for i in range(count):
        path = store.path_for(sha(f"baseline/{synced}/{i}"))
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x")
        paths.append(path)
    if synced:
        os.sync()
    started = time.perf_counter()
    for path in paths:
        os.unlink(path)
    return count / (time.perf_counter() - started)


def one_size(backend: str, runs: int) -> dict[str, Any]:
    with scratch_database(backend, prefix="rl_bench_retention") as db:
        settings = Settings(database_url=db.url, data_dir=db.directory / "state")
        now = datetime.now(UTC)
        # Half expire; the boundary sits inside a chain, so a few old files are read by new runs.
        half = runs // 2 + N_WORKFLOWS // 2
        fill_started = time.perf_counter()
        bulk_populate(settings, half, start=0, base=now - timedelta(days=60), progress=False)
        bulk_populate(
            settings, runs - half, start=half, base=now - timedelta(milliseconds=runs), progress=False
        )
        files = FileStore(settings.file_store_dir)
        made = make_files(files, runs)
        fill_seconds = round(time.perf_counter() - fill_started, 1)
        env = runledger_env(db.url, settings.state_dir) | {"RUNLEDGER_RETENTION_DAYS": "30"}
        verify = measured(env, "verify")
        apply = measured(env, "retention", "apply")
        left = sum(files.exists(d) for d in made)
        deleted = len(made) - left
        expunged = re.search(r"expunged (\d+) runs", apply["stderr_tail"])
        # The chained file of the last old run of each workflow is read by a new run: it stays.
        kept_by_new = {
            sha(f"{seq}/t4/out0")
            for seq in range(max(0, half - N_WORKFLOWS), half)
            if ((seq + N_WORKFLOWS) // N_WORKFLOWS) % CHAIN  # the next run of its workflow reads it
        }
        baseline = min(deleted, 20_000) or 1
        unlink = unlink_rate(db.directory / "baseline", baseline, synced=True)
        unlink_unsynced = unlink_rate(db.directory / "baseline", baseline, synced=False)
        files_per_s = deleted / apply["seconds"] if apply["seconds"] else 0.0
        return {
            "runs": runs,
            "expiring": half,
            "fill_seconds": fill_seconds,
            "files_made": len(made),
            "files_deleted": deleted,
            "files_kept": left,
            "shared_files_read_by_live_runs": len(kept_by_new),
            "shared_files_kept_by_live_runs": sum(files.exists(d) for d in kept_by_new),
            "runs_expunged": int(expunged[1]) if expunged else None,
            "apply": apply,
            "verify": verify,
            "files_per_s": round(files_per_s, 1),
            "unlink_files_per_s": round(unlink, 1),
            "unlink_unsynced_files_per_s": round(unlink_unsynced, 1),
            "ratio_files_per_s_vs_unlink": round(files_per_s / unlink, 4),
            "ratio_files_per_s_vs_unsynced_unlink": round(files_per_s / unlink_unsynced, 4),
            "ratio_seconds_vs_verify": round(apply["seconds"] / verify["seconds"], 2),
            "ratio_peak_rss_vs_verify": round(apply["peak_rss_mb"] / verify["peak_rss_mb"], 2),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--sizes", help="comma-separated run counts (instead of --runs)")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [args.runs]
    results = []
    for runs in sizes:
        result = one_size(args.backend, runs)
        results.append(result)
        apply, verify = result["apply"], result["verify"]
        print(
            f"{args.backend} {runs} runs: retention apply {apply['seconds']} s (exit {apply['exit_code']}), "
            f"{result['runs_expunged']} runs expunged, {result['files_deleted']} files deleted "
            f"({result['files_per_s']}/s; bare unlink of synced files {result['unlink_files_per_s']}/s, "
            f"ratio {result['ratio_files_per_s_vs_unlink']}; of unsynced files "
            f"{result['unlink_unsynced_files_per_s']}/s, "
            f"ratio {result['ratio_files_per_s_vs_unsynced_unlink']}), "
            f"{result['files_kept']} kept "
            f"({result['shared_files_kept_by_live_runs']}/{result['shared_files_read_by_live_runs']} "
            f"read by live runs); peak RSS {apply['peak_rss_mb']} MB "
            f"vs verify {verify['peak_rss_mb']} MB (ratio {result['ratio_peak_rss_vs_verify']}), "
            f"seconds vs verify {result['ratio_seconds_vs_verify']}",
            flush=True,
        )
    write_json(args.out, {"machine": machine(), "backend": args.backend, "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
