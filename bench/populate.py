"""Fill a ledger quickly with complete runs: real events from the real aggregates, many runs per
``save()`` (one transaction), then the projections caught up.

Each run: ``Run.Triggered`` (five string parameters and a numeric one, ``max_urls``),
``Run.Labelled`` (labels ``team`` and ``tier`` at trigger), ``Run.Started``, 5 x
(``TaskStarted``, ``TaskFinished`` with exit code, duration, 2 input and 2 output hashes,
host), ``Run.Succeeded`` (1 in 20 fails its last task and ends ``Run.Failed``): 14 events.
Runs form chains of ``CHAIN`` per workflow: a run's first task consumes a file the previous run
of its chain produced, so lineage links runs.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ledger import __version__
from ledger.domain.reports import Report, RunStateReport, TaskFinishedReport, TaskStartedReport
from ledger.domain.run import Run
from ledger.service import Ledger
from ledger.service.workers import apply_report

N_WORKFLOWS = 10
N_DATASETS = 50
CHAIN = 20
PARAM_NAMES = ("workflow", "dataset", "git_sha", "seed", "owner")
N_TEAMS = 8
EVENTS_PER_RUN = 14
WORKER = "bench-worker"


def workflow_definition(name: str) -> dict[str, Any]:
    tasks: list[dict[str, Any]] = []
    for i in range(5):
        task: dict[str, Any] = {"name": f"t{i}", "command": ["true"]}
        if i:
            task["depends_on"] = [f"t{i - 1}"]
        tasks.append(task)
    params: dict[str, Any] = {p: {"type": "string", "required": True} for p in PARAM_NAMES}
    params["max_urls"] = {"type": "integer", "required": True}
    return {"name": name, "params": params, "tasks": tasks}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TaskFacts:
    """What one task of a bench run did (the same facts feed both writing paths)."""

    task: str
    host: str
    exit_code: int
    duration_seconds: float
    inputs: tuple[str, ...]  # sha256 of in0.dat, in1.dat
    outputs: tuple[str, ...]  # sha256 of out0.dat, out1.dat


@dataclass(frozen=True, slots=True)
class RunFacts:
    seq: int
    run_id: str
    workflow: str
    parameters: dict[str, Any]
    tasks: tuple[TaskFacts, ...]
    failed: bool
    labels: dict[str, str]


def run_id_of(seq: int) -> str:
    return f"00000000-0000-4000-8000-{seq:012d}"


def run_facts(seq: int, seed: int = 7) -> RunFacts:
    """The facts of run number ``seq``: a pure function of (seq, seed), so any process can
    produce any run, and the aggregate and bulk paths write the very same events."""
    rng = random.Random(seed * 1_000_000_007 + seq)
    name = f"wf-{seq % N_WORKFLOWS}"
    params: dict[str, Any] = {
        "workflow": name,
        "dataset": f"ds-{rng.randrange(N_DATASETS)}",
        "git_sha": sha(f"git/{seq}")[:12],
        "seed": str(rng.randrange(10**6)),
        "owner": f"user-{rng.randrange(7)}",
    }
    failed = seq % 20 == 19
    chain_prev = seq - N_WORKFLOWS  # the previous run of the same workflow
    tasks = []
    for i in range(5):
        task = f"t{i}"
        host = f"node-{rng.randrange(8)}.local"
        inputs = [sha(f"{seq}/{task}/in{j}") for j in range(2)]
        if i == 0 and chain_prev >= 0 and (seq // N_WORKFLOWS) % CHAIN:
            inputs[0] = sha(f"{chain_prev}/t4/out0")
        tasks.append(
            TaskFacts(
                task=task,
                host=host,
                exit_code=1 if failed and i == 4 else 0,
                duration_seconds=round(rng.uniform(0.5, 120.0), 3),
                inputs=tuple(inputs),
                outputs=tuple(sha(f"{seq}/{task}/out{j}") for j in range(2)),
            )
        )
    params["max_urls"] = rng.randrange(1, 101)
    labels = {"team": f"team-{rng.randrange(N_TEAMS)}", "tier": "gold" if seq % 10 == 0 else "standard"}
    return RunFacts(
        seq=seq,
        run_id=run_id_of(seq),
        workflow=name,
        parameters=params,
        tasks=tuple(tasks),
        failed=failed,
        labels=labels,
    )


def file_refs(kind: str, hashes: tuple[str, ...], size: int) -> list[dict[str, Any]]:
    return [{"path": f"{kind}{j}.dat", "sha256": h, "size": size} for j, h in enumerate(hashes)]


def run_reports(facts: RunFacts) -> list[Report]:
    reports: list[Report] = []
    for t in facts.tasks:
        reports.append(TaskStartedReport(type="task_started", task=t.task, host=t.host))
        reports.append(
            TaskFinishedReport.model_validate(
                {
                    "type": "task_finished",
                    "task": t.task,
                    "exit_code": t.exit_code,
                    "duration_seconds": t.duration_seconds,
                    "host": t.host,
                    "inputs": file_refs("in", t.inputs, 1024),
                    "outputs": file_refs("out", t.outputs, 2048),
                }
            )
        )
    reports.append(
        RunStateReport(type="run_failed", error="t4 failed")
        if facts.failed
        else RunStateReport(type="run_succeeded")
    )
    return reports


def register_workflows(ledger: Ledger) -> dict[str, Any]:
    """Register (or re-register, a no-op) the bench workflows; each one's active version."""
    definitions = {}
    for i in range(N_WORKFLOWS):
        name = f"wf-{i}"
        ledger.register_workflow(workflow_definition(name), principal="bench")
        definitions[name] = ledger.get_workflow(name).active
    return definitions


def build_run(facts: RunFacts, active: Any, at: datetime, lease_expires_at: str) -> Run:
    """The run of ``facts`` through the real aggregate: triggered, claimed, reported on."""
    run = Run.trigger(
        run_id=facts.run_id,
        at=at,
        workflow=facts.workflow,
        version=active.version,
        definition_hash=active.definition_hash,
        definition=active.definition,
        engine_version=__version__,
        triggered_by="bench",
        trigger_kind="name",
        parameters=facts.parameters,
        replay_of=None,
        resume_of=None,
        resume_from_task=None,
        batch_id=None,
        idempotency_key=None,
    )
    run.label(set_=facts.labels, remove=[], by="bench", reason=None, at=at)
    run.claim(worker_id=WORKER, lease_expires_at=lease_expires_at, at=at)
    for report in run_reports(facts):
        apply_report(run, report, worker_id=WORKER, at=at, lease_expires_at=lease_expires_at)
    return run


def populate(
    ledger: Ledger,
    runs: int,
    *,
    per_save: int = 200,
    seed: int = 7,
    start: int = 0,
    progress: bool = True,
    clock: Callable[[int], datetime] | None = None,
) -> dict[str, Any]:
    """Write ``runs`` complete runs through the aggregates, ``per_save`` runs (x14 events) per
    save. ``clock(seq)`` gives a run's time (default: now)."""
    definitions = register_workflows(ledger)
    started = time.perf_counter()
    events = 0
    run_ids: list[str] = []
    for first in range(start, start + runs, per_save):
        batch = []
        for seq in range(first, min(first + per_save, start + runs)):
            facts = run_facts(seq, seed)
            at = clock(seq) if clock is not None else datetime.now(UTC)
            run = build_run(facts, definitions[facts.workflow], at, ledger.lease_expiry(at))
            batch.append(run)
            run_ids.append(run.id)
        ledger.save(*batch)
        events += EVENTS_PER_RUN * len(batch)
        if progress and (first - start) // per_save % 50 == 0:
            rate = events / (time.perf_counter() - started)
            print(f"# populated {first - start + len(batch)} runs ({rate:.0f} events/s)", flush=True)
    elapsed = time.perf_counter() - started
    return {
        "runs": runs,
        "events": events,
        "seconds": round(elapsed, 1),
        "events_per_s": round(events / elapsed, 1),
        "run_ids": run_ids,
    }
