"""Per-run detail folded from one run's own events: tasks with every attempt's evidence, the
run's files, where its logs are, and the comparison of two runs. Pure functions over
``EventRecord`` lists, so they read what was recorded, not today's aggregate code.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from typing import Any

from ledger.domain.status import TERMINAL, RunStatus, TaskStatus, status_after, task_status_after
from ledger.errors import NotFound
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
            case _:
                pass
        status = status_after(status, event.type, data)
    if status in TERMINAL:
        for task in tasks.values():
            _settle_after_end(task)
    for task in tasks.values():
        for attempt in task["attempts"]:
            code = attempt.get("exit_code")
            attempt["signal"] = _signal_name(-code) if isinstance(code, int) and code < 0 else None
    return list(tasks.values())


def _settle_after_end(task: dict[str, Any]) -> None:
    """SPEC section 5: when a run ends no task is left ``pending`` or ``running``. A task that
    never started is ``skipped``; one whose attempt was never closed (its worker was lost, or
    a ledger written before killed attempts were closed) is shown ``killed``, with no evidence
    beyond what its start recorded."""
    if task["status"] == TaskStatus.PENDING:
        task["status"] = TaskStatus.SKIPPED.value
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


def files_of(events: Sequence[EventRecord]) -> list[dict[str, Any]]:
    """File parameters and every input and output recorded by the run's tasks."""
    trigger = events[0].data
    params = trigger.get("definition", {}).get("params", {}) or {}
    seen: set[tuple[Any, ...]] = set()
    files: list[dict[str, Any]] = []

    def add(path: Any, sha256: Any, size: Any, role: str, task: str | None) -> None:
        key = (path, sha256, role, task)
        if sha256 and key not in seen:
            seen.add(key)
            files.append({"path": path, "sha256": sha256, "size": size, "role": role, "task": task})

    for name, spec in params.items():
        value = (trigger.get("parameters") or {}).get(name)
        if isinstance(spec, dict) and spec.get("type") == "file" and value:
            add(f"params/{name}", value, None, "input", None)

    def add_refs(event: EventRecord, key: str, role: str) -> None:
        for ref in event.data.get(key) or []:
            add(ref.get("path"), ref.get("sha256"), ref.get("size"), role, str(event.data["task"]))

    for event in events:
        match event.type:
            case "Run.TaskFinished":
                add_refs(event, "inputs", "input")
                add_refs(event, "outputs", "output")
            case "Run.TaskReused":
                add_refs(event, "outputs", "output")
            case _:
                pass
    return files


def _task_facts(task: dict[str, Any] | None) -> dict[str, Any] | None:
    if task is None:
        return None
    last = task["attempts"][-1] if task["attempts"] else {}
    return {
        "status": task["status"],
        "exit_code": last.get("exit_code"),
        "duration_seconds": last.get("duration_seconds"),
        "inputs": {f.get("path"): f.get("sha256") for f in last.get("inputs") or []},
        "outputs": {f.get("path"): f.get("sha256") for f in last.get("outputs") or []},
        "output_vars": last.get("output_vars") or {},
    }


def compare(a: Sequence[EventRecord], b: Sequence[EventRecord]) -> dict[str, Any]:
    """Parameter differences, definition equality and per-task differences of two runs."""
    ta, tb = a[0].data, b[0].data
    pa, pb = ta.get("parameters") or {}, tb.get("parameters") or {}
    parameters = {
        name: {"a": pa.get(name), "b": pb.get(name)}
        for name in sorted(set(pa) | set(pb))
        if pa.get(name) != pb.get(name)
    }
    tasks_a = {t["name"]: t for t in tasks_of(a)}
    tasks_b = {t["name"]: t for t in tasks_of(b)}
    tasks = []
    for name in list(dict.fromkeys([*tasks_a, *tasks_b])):
        fa, fb = _task_facts(tasks_a.get(name)), _task_facts(tasks_b.get(name))
        differences = ["presence"]
        if fa is not None and fb is not None:
            differences = [key for key in fa if fa[key] != fb[key]]
        tasks.append({"task": name, "a": fa, "b": fb, "differences": differences, "same": not differences})
    return {
        "a": a[0].stream,
        "b": b[0].stream,
        "definition_hash_a": ta.get("definition_hash"),
        "definition_hash_b": tb.get("definition_hash"),
        "definition_hash_equal": ta.get("definition_hash") == tb.get("definition_hash"),
        "parameters": parameters,
        "tasks": tasks,
    }


def batch_progress(batch_id: str, run_ids: list[str], statuses: list[str]) -> dict[str, Any]:
    """A batch's progress from its runs' statuses (the same shape as the batches view)."""
    processed = sum(1 for s in statuses if s in TERMINAL)
    failed = sum(1 for s in statuses if s in {RunStatus.FAILED, RunStatus.KILLED})
    if processed == len(statuses):
        status = "failed" if failed else "success"
    else:
        status = "running" if any(s != "pending" for s in statuses) else "pending"
    return {
        "batch_id": batch_id,
        "status": status,
        "progress": {"total_items": len(statuses), "processed_items": processed, "failed_items": failed},
        "run_ids": run_ids,
    }
