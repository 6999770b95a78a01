"""What a new runledger user does first, from Python: register a workflow, trigger runs and
wait for them, list the failed runs of the last week, compare two runs, replay one with an
override, and export the evidence.

    RUNLEDGER_URL=http://127.0.0.1:8000 RUNLEDGER_TOKEN=... python examples/seed_user.py [OUT_DIR]
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from runledger import Client

HERE = Path(__file__).parent


def main(out_dir: Path) -> int:
    with Client() as client:  # RUNLEDGER_URL, RUNLEDGER_TOKEN
        workflow = client.workflows.register(HERE / "pipeline.yaml")
        print(f"registered {workflow.name} version {workflow.version}")

        first = client.trigger("pipeline", {"query": "alpha"}, wait=True, timeout=120)
        second = client.trigger("pipeline", {"query": "beta", "limit": 5}, wait=True, timeout=120)
        broken = client.trigger("pipeline", {"query": "gamma", "fail": True}, wait=True, timeout=120)
        for run in (first, second, broken):
            lines = run.outputs.get("count", {}).get("lines")
            print(f"run {run.run_id} {run.status} by {run.triggered_by} lines={lines}")

        week_ago = datetime.now(UTC) - timedelta(days=7)
        # Listings come from the views, which may lag a run's own events by a moment.
        deadline = time.monotonic() + 30
        while True:
            failed = list(client.runs.list(status="failed", workflow="pipeline", created_after=week_ago))
            if broken.run_id in {r.run_id for r in failed} or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        print(f"failed in the last week: {[r.run_id for r in failed]}")

        diff = client.runs.compare(first.run_id, second.run_id)
        print(f"compare: same definition {diff.definition_hash_equal}, parameters {sorted(diff.parameters)}")

        replayed = first.replay(param_overrides={"limit": 7}).wait(timeout=120)
        limit = replayed.parameters["limit"]
        print(f"replayed {first.run_id} as {replayed.run_id}: {replayed.status}, limit={limit}")

        bundle = client.export(out_dir / "evidence.tar", workflow="pipeline")
        print(f"exported {bundle.stat().st_size} bytes to {bundle}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()))
