"""One attempt of one task: hash its inputs, run it, hash and store what it left behind."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from executor.container import ContainerRunner, container_name
from executor.evidence import (
    HOST,
    EvidenceError,
    ExecutableHasher,
    hash_inputs,
    store_log,
    store_outputs,
)
from executor.runner import Identity, Launch, LocalRunner, RunnerError, TaskRunner
from executor.templating import parse_output_vars
from ledger.domain.definition import TaskSpec
from ledger.domain.reports import TaskFinishedReport
from ledger.hashing import format_timestamp
from ledger.settings import get_settings
from ledger.store.filestore import FileStore


@dataclass(frozen=True)
class AttemptPlan:
    """Everything an attempt needs, decided by the run's scheduler before it starts."""

    run_id: str
    task: TaskSpec
    attempt: int
    command: list[str]
    env: dict[str, str]
    run_dir: Path
    logs_dir: Path
    started_at: str
    timeout: float | None
    extra_inputs: list[dict[str, Any]]
    #: A container task's image ID as recorded by the run this one replays (or resumes).
    pinned_image_id: str | None = None


def execute_attempt(
    plan: AttemptPlan,
    *,
    files: FileStore,
    hasher: ExecutableHasher,
    stop: threading.Event,
    containers: ContainerRunner | None = None,
) -> TaskFinishedReport:
    """Run one attempt to its end and return its evidence (never raises for task problems)."""
    began = time.monotonic()
    stem = f"{plan.task.name}.{plan.attempt}"
    stdout_path = plan.logs_dir / f"{stem}.stdout"
    stderr_path = plan.logs_dir / f"{stem}.stderr"
    outputs_path = plan.logs_dir / f"{stem}.outputs"
    outputs_path.write_bytes(b"")
    env = dict(plan.env)
    env["RUNLEDGER_OUTPUTS"] = str(outputs_path)
    env["RUNLEDGER_ATTEMPT"] = str(plan.attempt)
    launch = Launch(
        task=plan.task,
        command=plan.command,
        name=container_name(plan.run_id, plan.task.name, plan.attempt),
        env=env,
        run_dir=plan.run_dir,
        outputs_file=outputs_path,
        stdout=stdout_path,
        stderr=stderr_path,
        timeout=plan.timeout,
        pinned_image_id=plan.pinned_image_id,
    )
    runner: TaskRunner = LocalRunner(hasher)
    if plan.task.image is not None:
        runner = containers if containers is not None else ContainerRunner.from_settings(get_settings())
    error: str | None = None
    try:
        identity = runner.identify(launch)
    except RunnerError as exc:
        identity, error = Identity(image=plan.task.image), str(exc)
    evidence: dict[str, Any] = {
        "type": "task_finished",
        "task": plan.task.name,
        "attempt": plan.attempt,
        "command": plan.command,
        **asdict(identity),
        "host": HOST,
        "started_at": plan.started_at,
    }
    exit_code: int | None = None
    outputs: list[dict[str, Any]] = []
    try:
        inputs = plan.extra_inputs + hash_inputs(plan.run_dir, plan.task.inputs)
    except EvidenceError as exc:
        inputs, error = list(plan.extra_inputs), str(exc)
    if error is None:
        result = runner.run(launch, identity, stop)
        exit_code, error = result.exit_code, result.error
        if error is None and exit_code != 0:
            error = f"exited with code {exit_code}"
        if error is None:
            try:
                outputs = store_outputs(plan.run_dir, plan.task.outputs, files)
            except EvidenceError as exc:
                error = str(exc)
    output_vars = _read_output_vars(outputs_path)
    ended = datetime.now(UTC)
    return TaskFinishedReport.model_validate(
        evidence
        | {
            "status": "success" if error is None else "failed",
            "exit_code": exit_code,
            "inputs": inputs,
            "outputs": outputs,
            "output_vars": output_vars,
            "stdout": store_log(stdout_path, files),
            "stderr": store_log(stderr_path, files),
            "ended_at": format_timestamp(ended),
            "duration_seconds": round(time.monotonic() - began, 6),
            "error": error,
        }
    )


def _read_output_vars(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    finally:
        if path.exists():
            os.unlink(path)
    return parse_output_vars(text)
