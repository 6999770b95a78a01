"""Resume: restore the outputs of tasks upstream of ``from_task`` from the original run.

Each upstream task's recorded output files are read back from the file store (which re-checks
every hash) into the new run's directory, and the task is reported as reused, citing the run
its outputs came from, instead of being executed again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from executor.evidence import inside
from ledger.domain.definition import WorkflowDefinition, topological_order, upstream_of
from ledger.domain.reports import TaskReusedReport
from ledger.domain.status import TaskStatus, task_status_after
from ledger.service import Ledger
from ledger.store.filestore import FileStore


class ReuseError(Exception):
    """The original run has no successful record of a task that resume needs."""


def recorded_outcomes(ledger: Ledger, run_id: str) -> dict[str, dict[str, Any]]:
    """Each task's last successful outcome in ``run_id``: its outputs and output variables."""
    outcomes: dict[str, dict[str, Any]] = {}
    for event in ledger.stream_events(run_id):
        match event.type:
            case "Run.TaskFinished" | "Run.TaskReused":
                if task_status_after(event.type, event.data) in {TaskStatus.SUCCESS, TaskStatus.REUSED}:
                    outcomes[event.data["task"]] = event.data
            case _:
                pass
    return outcomes


def restore_reused_tasks(
    ledger: Ledger,
    files: FileStore,
    definition: WorkflowDefinition,
    *,
    source_run_id: str,
    from_task: str,
    run_dir: Path,
) -> list[TaskReusedReport]:
    upstream = upstream_of(definition, from_task)
    outcomes = recorded_outcomes(ledger, source_run_id)
    reports = []
    for task in topological_order(definition):
        if task not in upstream:
            continue
        outcome = outcomes.get(task)
        if outcome is None:
            raise ReuseError(f"run {source_run_id} has no successful record of task {task!r}")
        for ref in outcome.get("outputs", []):
            files.copy_to(ref["sha256"], inside(run_dir, ref["path"]))
        reports.append(
            TaskReusedReport(
                type="task_reused",
                task=task,
                source_run_id=source_run_id,
                outputs=outcome.get("outputs", []),
                output_vars=outcome.get("output_vars", {}),
            )
        )
    return reports
