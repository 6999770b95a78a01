"""Fill a ledger quickly with complete runs: real events from the real aggregates, many runs per
``save()`` (one transaction), then the projections caught up.

Each run: ``Run.Triggered``, ``Run.Started``, 5 x (``TaskStarted``, ``TaskFinished`` with exit
code, duration, 2 input and 2 output hashes, host), ``Run.Succeeded`` (1 in 20 fails its last
task and ends ``Run.Failed``): 13 events. Runs form chains of ``CHAIN`` per workflow: a run's
first task consumes a file the previous run of its chain produced, so lineage links runs.
"""

from __future__ import annotations

import hashlib
import random
import time
from datetime import UTC, datetime
from typing import Any

from ledger import __version__
from ledger.reports import Report, RunStateReport, TaskFinishedReport, TaskStartedReport
from ledger.run import Run
from ledger.service import Ledger, apply_report

N_WORKFLOWS = 10
N_DATASETS = 50
CHAIN = 20
PARAM_NAMES = ("workflow", "dataset", "git_sha", "seed", "owner")


def workflow_definition(name: str) -> dict[str, Any]:
    tasks: list[dict[str, Any]] = []
    for i in range(5):
        task: dict[str, Any] = {"name": f"t{i}", "command": ["true"]}
        if i:
            task["depends_on"] = [f"t{i - 1}"]
        tasks.append(task)
    return {"name": name, "params": {p: {"type": "string", "required": True}
                                     for p in PARAM_NAMES}, "tasks": tasks}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def run_reports(seq: int, failed: bool, rng: random.Random) -> list[Report]:
    reports: list[Report] = []
    chain_prev = seq - N_WORKFLOWS  # the previous run of the same workflow
    for i in range(5):
        task = f"t{i}"
        host = f"node-{rng.randrange(8)}.local"
        inputs = [sha(f"{seq}/{task}/in{j}") for j in range(2)]
        if i == 0 and chain_prev >= 0 and (seq // N_WORKFLOWS) % CHAIN:
            inputs[0] = sha(f"{chain_prev}/t4/out0")
        outputs = [sha(f"{seq}/{task}/out{j}") for j in range(2)]
        exit_code = 1 if failed and i == 4 else 0
        reports.append(TaskStartedReport(type="task_started", task=task, host=host))
        reports.append(TaskFinishedReport.model_validate({
            "type": "task_finished", "task": task, "exit_code": exit_code,
            "duration_seconds": round(rng.uniform(0.5, 120.0), 3), "host": host,
            "inputs": [{"path": f"in{j}.dat", "sha256": h, "size": 1024}
                       for j, h in enumerate(inputs)],
            "outputs": [{"path": f"out{j}.dat", "sha256": h, "size": 2048}
                        for j, h in enumerate(outputs)],
        }))
    reports.append(RunStateReport(type="run_failed", error="t4 failed") if failed
                   else RunStateReport(type="run_succeeded"))
    return reports


def populate(ledger: Ledger, runs: int, *, per_save: int = 200, seed: int = 7,
             start: int = 0, progress: bool = True) -> dict[str, Any]:
    """Write ``runs`` complete runs, ``per_save`` runs (x13 events) per save."""
    definitions = {}
    for i in range(N_WORKFLOWS):
        name = f"wf-{i}"
        ledger.register_workflow(workflow_definition(name), principal="bench")
        active = ledger.get_workflow(name).active
        definitions[name] = active
    rng = random.Random(seed)
    started = time.perf_counter()
    events = 0
    run_ids: list[str] = []
    for first in range(start, start + runs, per_save):
        batch = []
        for seq in range(first, min(first + per_save, start + runs)):
            name = f"wf-{seq % N_WORKFLOWS}"
            active = definitions[name]
            at = datetime.now(UTC)
            params = {"workflow": name, "dataset": f"ds-{rng.randrange(N_DATASETS)}",
                      "git_sha": sha(f"git/{seq}")[:12], "seed": str(rng.randrange(10**6)),
                      "owner": f"user-{rng.randrange(7)}"}
            run = Run.trigger(
                run_id=f"00000000-0000-4000-8000-{seq:012d}", at=at, workflow=name,
                version=active.version, definition_hash=active.definition_hash,
                definition=active.definition, engine_version=__version__,
                triggered_by="bench", trigger_kind="name", parameters=params,
                replay_of=None, resume_of=None, resume_from_task=None, batch_id=None,
                idempotency_key=None,
            )
            run.claim(worker_id="bench-worker", lease_expires_at=ledger.lease_expiry(at), at=at)
            for report in run_reports(seq, failed=seq % 20 == 19, rng=rng):
                apply_report(run, report, worker_id="bench-worker", at=at,
                             lease_expires_at=ledger.lease_expiry(at))
            batch.append(run)
            run_ids.append(run.id)
        ledger.save(*batch)
        events += 13 * len(batch)
        if progress and (first - start) // per_save % 50 == 0:
            rate = events / (time.perf_counter() - started)
            print(f"# populated {first - start + len(batch)} runs ({rate:.0f} events/s)",
                  flush=True)
    elapsed = time.perf_counter() - started
    return {"runs": runs, "events": events, "seconds": round(elapsed, 1),
            "events_per_s": round(events / elapsed, 1), "run_ids": run_ids}
