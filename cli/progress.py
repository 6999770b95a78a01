"""Following a run live over SSE for ``trigger --wait``, ``replay --wait`` and ``runs events
--follow``: which tasks are running, each task as it ends, and the run's end, on stderr
(the events themselves on stdout when asked)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from cli.output import duration, note
from runledger import Run, WaitTimeout
from runledger.models import EventPublic

EventSink = Callable[[EventPublic], None]


class TaskBoard:
    """Which tasks of one run are running, from its events."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.running: dict[str, int] = {}
        self.seen: set[int] = set()
        self.ended = False

    def take(self, event: EventPublic) -> bool:
        """Apply ``event`` (once per sequence); say what changed on stderr. True if new."""
        if event.sequence in self.seen:
            return False
        self.seen.add(event.sequence)
        data = event.data
        before = set(self.running)
        match event.type:
            case "Run.Started":
                note(f"run {self.run_id}: started on {data.get('worker_id', '?')}")
            case "Run.TaskStarted":
                self.running[str(data.get("task"))] = int(data.get("attempt") or 1)
            case "Run.TaskFinished":
                task = str(data.get("task"))
                self.running.pop(task, None)
                took = duration(data.get("duration_seconds"))
                note(f"  task {task}: {data.get('status')} (exit {data.get('exit_code')}, {took})")
            case "Run.TaskReused":
                note(f"  task {data.get('task')}: reused from run {data.get('source_run_id')}")
            case "Run.Succeeded" | "Run.Failed" | "Run.Killed":
                self.ended = True
                self.running.clear()
                error = (
                    f": {data.get('error') or data.get('reason')}" if event.type != "Run.Succeeded" else ""
                )
                note(f"run {self.run_id}: {event.type.split('.')[1].lower()}{error}")
        if set(self.running) != before and self.running:
            note(f"run {self.run_id}: running {', '.join(sorted(self.running))}")
        return True


def watch(run: Run, timeout: float | None, sink: EventSink | None = None) -> Run:
    """Follow ``run`` until it ends (``WaitTimeout`` after ``timeout`` s), then refresh it."""
    board = TaskBoard(run.run_id)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise WaitTimeout(f"run {run.run_id} still {run.refresh().status} after {timeout} s")
        try:
            for event in run.events(follow=True, timeout=left):
                if board.take(event) and sink is not None:
                    sink(event)
        except (httpx.ReadTimeout, httpx.RemoteProtocolError):
            continue
        if run.refresh().done:
            return run
