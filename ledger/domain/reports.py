"""What a worker may report about the run it holds (``POST /api/runs/{id}/events``)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ledger.hashing import format_timestamp, parse_timestamp

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
TaskName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
OutputValue = str | int | float | bool | None


def _normalise_timestamp(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return format_timestamp(parse_timestamp(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 timestamp") from None


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _safe_output_values(values: dict[str, OutputValue]) -> dict[str, OutputValue]:
    for key, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"output {key!r} is not a finite number")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53 - 1:
            raise ValueError(f"output {key!r} is outside the JSON-safe integer range")
    return values


#: An ISO 8601 timestamp, normalised to UTC ``...ffffffZ``; ``format: date-time`` in schemas.
Timestamp = Annotated[
    Annotated[str, Field(json_schema_extra={"format": "date-time"})] | None,
    AfterValidator(_normalise_timestamp),
]
OutputVars = Annotated[
    dict[Annotated[str, Field(max_length=200)], OutputValue], AfterValidator(_safe_output_values)
]


class _Report(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileRef(_Report):
    path: Annotated[str, Field(max_length=1024)] | None = None
    sha256: Sha256
    size: Annotated[int, Field(ge=0)] | None = None


class BlobRef(_Report):
    sha256: Sha256
    size: Annotated[int, Field(ge=0)]


class TaskStartedReport(_Report):
    type: Literal["task_started"]
    task: TaskName
    attempt: Annotated[int, Field(ge=1, le=1000)] = 1
    command: list[str] | None = None
    host: Annotated[str, Field(max_length=255)] | None = None
    started_at: Timestamp = None


class TaskFinishedReport(_Report):
    type: Literal["task_finished"]
    task: TaskName
    attempt: Annotated[int, Field(ge=1, le=1000)] = 1
    #: ``killed``: stopped by a cancel, a run timeout or the worker stopping (SPEC section 5).
    status: Literal["success", "failed", "killed"] | None = None
    exit_code: Annotated[int, Field(ge=-(2**31), le=2**31)] | None = None
    command: list[str] | None = None
    image: str | None = None
    image_hash: Sha256 | None = None
    executable: str | None = None
    executable_sha256: Sha256 | None = None
    inputs: Annotated[list[FileRef], Field(max_length=10000)] = []
    outputs: Annotated[list[FileRef], Field(max_length=10000)] = []
    output_vars: OutputVars = {}
    stdout: BlobRef | None = None
    stderr: BlobRef | None = None
    started_at: Timestamp = None
    ended_at: Timestamp = None
    duration_seconds: Annotated[float, Field(ge=0), AfterValidator(_finite)] | None = None
    host: Annotated[str, Field(max_length=255)] | None = None
    error: Annotated[str, Field(max_length=10000)] | None = None

    def evidence(self, at: datetime) -> dict[str, Any]:
        """The TaskFinished event's fields, with what the worker left out filled in."""
        ended = self.ended_at or format_timestamp(at)
        started = self.started_at or ended
        duration = self.duration_seconds
        if duration is None:
            duration = max(0.0, (parse_timestamp(ended) - parse_timestamp(started)).total_seconds())
        status = self.status or ("success" if self.exit_code == 0 else "failed")
        return {
            "task": self.task,
            "attempt": self.attempt,
            "status": status,
            "exit_code": self.exit_code,
            "command": self.command,
            "image": self.image,
            "image_hash": self.image_hash,
            "executable": self.executable,
            "executable_sha256": self.executable_sha256,
            "inputs": [f.model_dump() for f in self.inputs],
            "outputs": [f.model_dump() for f in self.outputs],
            "output_vars": dict(self.output_vars),
            "stdout": self.stdout.model_dump() if self.stdout else None,
            "stderr": self.stderr.model_dump() if self.stderr else None,
            "started_at": started,
            "ended_at": ended,
            "duration_seconds": float(duration),
            "host": self.host,
            "error": self.error,
        }


class TaskReusedReport(_Report):
    type: Literal["task_reused"]
    task: TaskName
    source_run_id: Annotated[str, Field(min_length=1, max_length=200)]
    outputs: list[FileRef] = []
    output_vars: OutputVars = {}


class RunStateReport(_Report):
    type: Literal["run_succeeded", "run_failed", "lease_renewed"]
    error: Annotated[str, Field(max_length=10000)] | None = None


class GateReachedReport(_Report):
    """The run reached approval gate ``task`` (SPEC 10): the worker lets it go until signed."""

    type: Literal["gate_reached"]
    task: TaskName


Report = Annotated[
    TaskStartedReport | TaskFinishedReport | TaskReusedReport | RunStateReport | GateReachedReport,
    Field(discriminator="type"),
]


class ReportBatch(_Report):
    events: Annotated[list[Report], Field(min_length=1, max_length=1000)]
