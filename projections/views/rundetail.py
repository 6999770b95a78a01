"""Per-run detail folded from one run's own events: tasks with every attempt's evidence, the
run's files, where its logs are, and a batch's progress (the comparison of two runs is
:mod:`projections.views.compare`). Once the run is expunged (SPEC section 11), a sensitive
value its evidence shows (``[sensitive]`` in a recorded command) reads ``[erased]``. Pure
functions over
``EventRecord`` lists, so they read what was recorded, not today's aggregate code.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ledger.domain.definition import TEMPLATE_RE, TEMPLATE_REF_RE
from ledger.domain.status import TERMINAL, RunStatus, TaskStatus, status_after, task_status_after
from ledger.errors import NotFound
from ledger.sensitive import erased_text, is_sealed
from ledger.service import Ledger
from ledger.store.event_record import EventRecord

EVIDENCE_FIELDS = (
    "status",
    "exit_code",
    "command",
    "image",
    "image_hash",
    "executable",
    "executable_sha256",
    "inputs",
    "outputs",
    "output_vars",
    "stdout",
    "stderr",
    "started_at",
    "ended_at",
    "duration_seconds",
    "host",
    "error",
)


def run_events(ledger: Ledger, run_id: str) -> list[EventRecord]:
    """The run's events, or NotFound when ``run_id`` names no run."""
    events = ledger.stream_events(run_id) if run_id and ":" not in run_id else []
    if not events or events[0].type != "Run.Triggered":
        raise NotFound(f"no run {run_id!r}")
    return events


def is_expunged(events: Sequence[EventRecord]) -> bool:
    """Whether the run was expunged (its key destroyed, its logs and unshared files deleted)."""
    return any(event.type == "Run.Expunged" for event in events)


def _task_names(trigger: EventRecord) -> list[str]:
    tasks = trigger.data.get("definition", {}).get("tasks", [])
    return [str(t.get("name")) for t in tasks if isinstance(t, dict)]


def tasks_of(events: Sequence[EventRecord]) -> list[dict[str, Any]]:
    """Every task of the run (definition order), each attempt's evidence oldest first."""
    tasks: dict[str, dict[str, Any]] = {name: _pending_task(name) for name in _task_names(events[0])}
    status: RunStatus | None = None
    for event in events:
        data = event.data
        match event.type:
            case "Run.TaskStarted":
                task = tasks.setdefault(str(data["task"]), _pending_task(data["task"]))
                task["status"] = str(task_status_after(event.type, data))
                task["attempts"].append(
                    {
                        "attempt": data["attempt"],
                        "status": task["status"],
                        "exit_code": None,
                        "command": data.get("command"),
                        "host": data.get("host"),
                        "started_at": data.get("started_at"),
                    }
                )
            case "Run.TaskFinished":
                task = tasks.setdefault(str(data["task"]), _pending_task(data["task"]))
                task["status"] = str(task_status_after(event.type, data))
                attempt = next((a for a in task["attempts"] if a["attempt"] == data["attempt"]), None)
                if attempt is None:
                    attempt = {"attempt": data["attempt"]}
                    task["attempts"].append(attempt)
                attempt.update({k: data.get(k) for k in EVIDENCE_FIELDS})
            case "Run.TaskReused":
                task = tasks.setdefault(str(data["task"]), _pending_task(data["task"]))
                task["status"] = str(task_status_after(event.type, data))
                task["source_run_id"] = data["source_run_id"]
                task["attempts"].append(
                    {
                        "attempt": 1,
                        "status": task["status"],
                        "exit_code": None,
                        "command": None,
                        "reused_from": data["source_run_id"],
                        "outputs": data.get("outputs", []),
                        "output_vars": data.get("output_vars", {}),
                        "reused_at": event.timestamp,
                    }
                )
            case "Run.GateReached" | "Run.GateApproved" | "Run.GateRejected":
                # an approval gate (SPEC 10): waiting, then signed (success) or rejected
                task = tasks.setdefault(str(data["task"]), _pending_task(data["task"]))
                task["status"] = str(task_status_after(event.type, data))
                task["approval"] = task.get("approval") or data.get("approval")
                if event.type == "Run.GateApproved":
                    task["signed_by"] = data.get("signers")
                if event.type == "Run.GateRejected":
                    task["rejected_by"] = data.get("by")
            case _:
                pass
        status = status_after(status, event.type, data)
    if status in TERMINAL:
        for task in tasks.values():
            _settle_after_end(task)
    erased = _has_sealed(events[0]) and is_expunged(events)
    for task in tasks.values():
        for attempt in task["attempts"]:
            code = attempt.get("exit_code")
            attempt["signal"] = _signal_name(-code) if isinstance(code, int) and code < 0 else None
            if erased and isinstance(attempt.get("command"), list):
                attempt["command"] = [
                    erased_text(arg) if isinstance(arg, str) else arg for arg in attempt["command"]
                ]
    return list(tasks.values())


def _has_sealed(trigger: EventRecord) -> bool:
    return any(is_sealed(v) for v in (trigger.data.get("parameters") or {}).values())


def _settle_after_end(task: dict[str, Any]) -> None:
    """SPEC section 5: when a run ends no task is left ``pending`` or ``running``. A task that
    never started is ``skipped``; one whose attempt was never closed (its worker was lost, or
    a ledger written before killed attempts were closed) is shown ``killed``, with no evidence
    beyond what its start recorded."""
    if task["status"] == TaskStatus.PENDING:
        task["status"] = TaskStatus.SKIPPED.value
    elif task["status"] == TaskStatus.WAITING:  # an approval gate when the run was cancelled
        task["status"] = TaskStatus.KILLED.value
    elif task["status"] == TaskStatus.RUNNING:
        task["status"] = TaskStatus.KILLED.value
        if task["attempts"] and task["attempts"][-1].get("status") == TaskStatus.RUNNING:
            task["attempts"][-1]["status"] = TaskStatus.KILLED.value


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _pending_task(name: Any) -> dict[str, Any]:
    return {"name": name, "status": TaskStatus.PENDING.value, "attempts": []}


def find_task(events: Sequence[EventRecord], name: str) -> dict[str, Any]:
    for task in tasks_of(events):
        if task["name"] == name:
            return task
    raise NotFound(f"run {events[0].stream} has no task {name!r}")


def log_ref(task: dict[str, Any], stream: str, attempt: int | None) -> dict[str, Any]:
    """The ``{sha256, size}`` of a task attempt's stdout or stderr (latest attempt by default)."""
    attempts = [a for a in task["attempts"] if attempt is None or a["attempt"] == attempt]
    if not attempts:
        raise NotFound(f"task {task['name']!r} has no attempt {attempt}")
    ref = attempts[-1].get(stream)
    if not isinstance(ref, dict) or "sha256" not in ref:
        raise NotFound(f"task {task['name']!r} recorded no {stream}")
    return ref


def file_param_readers(definition: Mapping[str, Any]) -> dict[str, set[str]]:
    """For each ``file`` parameter, the tasks that read it: those declaring ``params/<name>``
    in ``inputs`` or naming ``{{ params.<name> }}`` in their command (SPEC 5: it counts as
    an input of those tasks, and of no other)."""
    params = definition.get("params") or {}
    tasks = [t for t in definition.get("tasks") or [] if isinstance(t, dict)]
    readers: dict[str, set[str]] = {}
    for name, spec in params.items():
        if not isinstance(spec, dict) or spec.get("type") != "file":
            continue
        readers[name] = {
            str(task.get("name"))
            for task in tasks
            if f"params/{name}" in (task.get("inputs") or [])
            or any(name in _params_named(arg) for arg in task.get("command") or [])
        }
    return readers


def _params_named(arg: Any) -> set[str]:
    refs = (TEMPLATE_REF_RE.match(inner) for inner in TEMPLATE_RE.findall(str(arg)))
    return {ref["param"] for ref in refs if ref is not None and ref["param"]}


def files_of(
    events: Sequence[EventRecord], size_of: Callable[[str], int | None] | None = None
) -> list[dict[str, Any]]:
    """Every input and output recorded by the run's tasks. A ``file`` parameter is listed
    as an input of each task that read it; until one has (or when none does), once with
    ``task: null`` and its size from ``size_of``."""
    trigger = events[0].data
    values = trigger.get("parameters") or {}
    readers = file_param_readers(trigger.get("definition") or {})
    param_paths = {f"params/{name}": name for name in readers}
    seen: set[tuple[Any, ...]] = set()
    files: list[dict[str, Any]] = []

    def add(path: Any, sha256: Any, size: Any, role: str, task: str | None) -> None:
        key = (path, sha256, role, task)
        if sha256 and key not in seen:
            seen.add(key)
            files.append({"path": path, "sha256": sha256, "size": size, "role": role, "task": task})

    def add_refs(event: EventRecord, key: str, role: str) -> None:
        task = str(event.data["task"])
        for ref in event.data.get(key) or []:
            param = param_paths.get(ref.get("path")) if role == "input" else None
            if param is not None and task not in readers[param]:
                continue  # recorded before 0.x for a task that never read it
            add(ref.get("path"), ref.get("sha256"), ref.get("size"), role, task)

    for event in events:
        match event.type:
            case "Run.TaskFinished":
                add_refs(event, "inputs", "input")
                add_refs(event, "outputs", "output")
            case "Run.TaskReused":
                add_refs(event, "outputs", "output")
            case _:
                pass
    listed = {(f["path"], f["sha256"]) for f in files if f["role"] == "input"}
    unread = [
        {"path": path, "sha256": values[name], "size": None, "role": "input", "task": None}
        for path, name in param_paths.items()
        if values.get(name) and (path, values[name]) not in listed
    ]
    for entry in unread:
        entry["size"] = size_of(str(entry["sha256"])) if size_of is not None else None
    return unread + files


def batch_status(statuses: Sequence[str]) -> str:
    """A batch's status from its runs': ``failed`` when any run failed, else ``killed`` when
    any was killed, else ``success`` once all ended; ``running`` or ``pending`` before."""
    if all(s in TERMINAL for s in statuses):
        if RunStatus.FAILED in statuses:
            return RunStatus.FAILED.value
        if RunStatus.KILLED in statuses:
            return RunStatus.KILLED.value
        return RunStatus.SUCCESS.value
    return "running" if any(s != "pending" for s in statuses) else "pending"


def batch_progress(
    batch_id: str, run_ids: list[str], statuses: list[str], items: Sequence[Any] | None = None
) -> dict[str, Any]:
    """A batch's progress from its runs' statuses; with ``items`` (the batch's inputs, in
    ``run_ids`` order) also each item's run and status."""
    processed = sum(1 for s in statuses if s in TERMINAL)
    failed = sum(1 for s in statuses if s in {RunStatus.FAILED, RunStatus.KILLED})
    progress: dict[str, Any] = {
        "batch_id": batch_id,
        "status": batch_status(statuses),
        "progress": {"total_items": len(statuses), "processed_items": processed, "failed_items": failed},
        "run_ids": run_ids,
    }
    if items is not None:
        progress["items"] = [
            {"item": item, "run_id": run_id, "status": status}
            for item, run_id, status in zip(items, run_ids, statuses, strict=True)
        ]
    return progress
