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
from executor.sandbox import TaskUser, create_private
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
    user: TaskUser | None = None
    #: The command as the evidence records it (sensitive values masked); None: ``command``.
    recorded_command: list[str] | None = None


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
    # Read back through these descriptors, never the paths: a task may replace the files.
    outputs_fd = _fresh(outputs_path, plan.user)
    env = dict(plan.env)
    env["RUNLEDGER_OUTPUTS"] = str(outputs_path)
    env["RUNLEDGER_TASK"] = plan.task.name
    env["RUNLEDGER_ATTEMPT"] = str(plan.attempt)
    runner: TaskRunner = LocalRunner(hasher)
    if plan.task.image is not None:
        runner = containers if containers is not None else ContainerRunner.from_settings(get_settings())
    exit_code: int | None = None
    error: str | None = None
    outputs: list[dict[str, Any]] = []
    logs: dict[str, dict[str, Any] | None] = {"stdout": None, "stderr": None}
    # The capture files are the executor's own: the task writes to the descriptors it was
    # given, and what is stored is read back through them, whatever the task did to the paths.
    with (
        os.fdopen(_fresh(stdout_path, None), "w+b") as out,
        os.fdopen(_fresh(stderr_path, None), "w+b") as err,
    ):
        launch = Launch(
            task=plan.task,
            command=plan.command,
            name=container_name(plan.run_id, plan.task.name, plan.attempt),
            env=env,
            run_dir=plan.run_dir,
            outputs_file=outputs_path,
            stdout=out,
            stderr=err,
            timeout=plan.timeout,
            pinned_image_id=plan.pinned_image_id,
            user=plan.user,
        )
        try:
            identity = runner.identify(launch)
        except RunnerError as exc:
            identity, error = Identity(image=plan.task.image), str(exc)
        evidence: dict[str, Any] = {
            "type": "task_finished",
            "task": plan.task.name,
            "attempt": plan.attempt,
            "command": plan.command if plan.recorded_command is None else plan.recorded_command,
            **asdict(identity),
            "host": HOST,
            "started_at": plan.started_at,
        }
        try:
            inputs = plan.extra_inputs + hash_inputs(plan.run_dir, plan.task.inputs)
        except EvidenceError as exc:
            inputs, error = list(plan.extra_inputs), error or str(exc)
        if error is None:
            result = runner.run(launch, identity, stop)
            logs = {"stdout": store_log(out, files), "stderr": store_log(err, files)}
            exit_code, error = result.exit_code, result.error
            if error is None and exit_code != 0:
                error = f"exited with code {exit_code}"
            if error is None:
                try:
                    outputs = store_outputs(plan.run_dir, plan.task.outputs, files)
                except EvidenceError as exc:
                    error = str(exc)
    output_vars = _read_output_vars(outputs_fd, outputs_path)
    ended = datetime.now(UTC)
    return TaskFinishedReport.model_validate(
        evidence
        | {
            "status": "success" if error is None else "failed",
            "exit_code": exit_code,
            "inputs": inputs,
            "outputs": outputs,
            "output_vars": output_vars,
            **logs,
            "ended_at": format_timestamp(ended),
            "duration_seconds": round(time.monotonic() - began, 6),
            "error": error,
        }
    )


def _fresh(path: Path, user: TaskUser | None) -> int:
    path.unlink(missing_ok=True)
    return create_private(path, user)


def _read_output_vars(fd: int, path: Path) -> dict[str, str]:
    with os.fdopen(fd, "rb") as handle:
        text = handle.read().decode("utf-8", errors="replace")
    path.unlink(missing_ok=True)
    return parse_output_vars(text)
