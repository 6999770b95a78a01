"""One attempt of one task: hash its inputs, run it, hash and store what it left behind."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from executor.evidence import (
    HOST,
    EvidenceError,
    ExecutableHasher,
    hash_inputs,
    store_log,
    store_outputs,
)
from executor.process import run_process
from executor.sandbox import TaskUser, create_private
from executor.templating import parse_output_vars
from ledger.domain.definition import TaskSpec
from ledger.domain.reports import TaskFinishedReport
from ledger.hashing import format_timestamp
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
    user: TaskUser | None = None


def execute_attempt(
    plan: AttemptPlan, *, files: FileStore, hasher: ExecutableHasher, stop: threading.Event
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
    executable = hasher.resolve(plan.command[0], cwd=plan.run_dir, env=env)
    evidence: dict[str, Any] = {
        "type": "task_finished",
        "task": plan.task.name,
        "attempt": plan.attempt,
        "command": plan.command,
        "image": None,
        "image_hash": None,
        "executable": executable,
        "executable_sha256": hasher.sha256(executable) if executable else None,
        "host": HOST,
        "started_at": plan.started_at,
    }
    exit_code: int | None = None
    error: str | None = None
    outputs: list[dict[str, Any]] = []
    logs: dict[str, dict[str, Any] | None] = {"stdout": None, "stderr": None}
    try:
        inputs = plan.extra_inputs + hash_inputs(plan.run_dir, plan.task.inputs)
    except EvidenceError as exc:
        inputs, error = list(plan.extra_inputs), str(exc)
    if plan.task.image is not None:
        # No container runtime is wired in: running the command as a local process instead
        # would record evidence of something other than what the definition asked for.
        evidence["image"] = plan.task.image
        error = f"task asks for container image {plan.task.image!r}; this executor runs local processes only"
    if error is None:
        with (
            os.fdopen(_fresh(stdout_path, None), "w+b") as out,
            os.fdopen(_fresh(stderr_path, None), "w+b") as err,
        ):
            result = run_process(
                plan.command,
                cwd=plan.run_dir,
                env=env,
                stdout=out,
                stderr=err,
                timeout=plan.timeout,
                stop=stop,
                user=plan.user,
            )
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
