"""Peak memory of ``runledger`` commands: a child's peak RSS from the kernel's own accounting.

    .venv/bin/python -m bench.memory --database-url URL [--data-dir DIR] -- export --out B

``runledger serve``'s peak during the HTTP and query benchmarks is sampled by
:class:`bench.server.PeakRss`; one-shot commands (``export``, ``verify``) report ``ru_maxrss``
from ``wait4``, which covers the whole life of the process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT
from bench.server import RUNLEDGER, runledger_env


def measure_command(env: dict[str, str], *args: str, timeout: float = 900) -> dict[str, Any]:
    """Run ``runledger ARGS``; its exit code, wall time and peak RSS (MB)."""
    started = time.perf_counter()
    proc = subprocess.Popen([RUNLEDGER, *args], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--data-dir", default=str(ROOT / ".runledger"))
    parser.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = [a for a in args.args if a != "--"]
    result = measure_command(runledger_env(args.database_url, Path(args.data_dir)), *command)
    print(json.dumps(result, indent=2))
    return 0 if result["exit_code"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
