"""``GET /api/runs/{run_id}/events``: a run's events as the contract shows them, or, with
``?follow=true``, as Server-Sent Events (one JSON event per ``data:`` line, ``id:`` = the
event's sequence) until the run ends.

The follower never holds a database connection while it waits: every ~``POLL_SECONDS`` it asks
for the ledger's newest position (one cheap query in a worker thread, shared by all followers
of the process through :class:`NewestPosition`), and reads the run's stream only when that
moved. A client that reconnects with ``Last-Event-ID`` resumes
after that sequence. A client too slow to take an event within ``SEND_TIMEOUT_SECONDS`` is
dropped. When the database goes away the follower keeps the stream open (pings go on) and
tries again with backoff (up to ``MAX_BACKOFF_SECONDS``); it goes on from where it was once the
database answers.
"""

from __future__ import annotations

import json
import time
import weakref
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
import structlog
from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse

from api.deps import Auditor, RuntimeDep
from api.scope import ScopedRunId
from ledger.domain.status import TERMINAL, RunStatus, status_after
from ledger.errors import NotFound
from ledger.service import Ledger
from ledger.store.event_record import EventRecord

router = APIRouter(prefix="/api/runs", tags=["runs"])
log = structlog.get_logger()

POLL_SECONDS = 0.15
PING_SECONDS = 15
SEND_TIMEOUT_SECONDS = 30
REREAD_EVERY = 20
MAX_BACKOFF_SECONDS = 5.0


def _status_after(status: RunStatus, event: EventRecord) -> RunStatus:
    """The run's status after ``event``, as far as a follower needs it: whether it has ended."""
    match event.type:
        case "Run.Succeeded" | "Run.Failed" | "Run.Killed" | "Run.LineageReported":
            return status_after(status, event.type, event.data)
        case _:
            return status


class NewestPosition:
    """The ledger's newest position, read at most once per poll interval for all followers."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._lock = anyio.Lock()
        self._value = -1
        self._read_at = float("-inf")

    async def get(self) -> int:
        async with self._lock:
            if time.monotonic() - self._read_at >= POLL_SECONDS * 0.8:
                self._value = await anyio.to_thread.run_sync(self.ledger.reader.max_position)
                self._read_at = time.monotonic()
            return self._value


_newest: weakref.WeakKeyDictionary[Ledger, NewestPosition] = weakref.WeakKeyDictionary()


def newest_position(ledger: Ledger) -> NewestPosition:
    watcher = _newest.get(ledger)
    if watcher is None:
        watcher = _newest[ledger] = NewestPosition(ledger)
    return watcher


def run_events(ledger: Ledger, run_id: str) -> list[EventRecord]:
    events = ledger.stream_events(run_id) if ":" not in run_id else []
    if not events or events[0].type != "Run.Triggered":
        raise NotFound(f"no run {run_id!r}")
    return events


@router.get(
    "/{run_id}/events",
    summary="A run's events; with follow=true, Server-Sent Events until the run ends",
    response_model=None,
    responses={200: {"content": {"application/json": {}, "text/event-stream": {}}}},
)
async def get_run_events(
    run_id: ScopedRunId,
    runtime: RuntimeDep,
    principal: Auditor,
    follow: Annotated[bool, Query(description="stream as Server-Sent Events")] = False,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Response:
    ledger = runtime.ledger
    events = await anyio.to_thread.run_sync(run_events, ledger, run_id)
    if not follow:
        return JSONResponse({"events": [event.to_json() for event in events]})
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
    log.info("run_events_followed", run_id=run_id, principal=principal.name, after=after)
    return EventSourceResponse(
        _follow(ledger, run_id, events, after),
        ping=PING_SECONDS,
        send_timeout=SEND_TIMEOUT_SECONDS,
        headers={"Cache-Control": "no-store"},
    )


async def _follow(
    ledger: Ledger, run_id: str, first: list[EventRecord], after: int
) -> AsyncIterator[dict[str, Any]]:
    """Send ``first`` (past ``after``), then poll for newer events until the run is terminal.

    The stream is re-read when the ledger's newest position moved, and every
    ``REREAD_EVERY`` polls regardless (belt and braces against a late-committing writer).
    """
    status = RunStatus.PENDING
    sent = after
    seen_position = -1
    events = first
    newest_of = newest_position(ledger)
    while True:
        for event in events:
            status = _status_after(status, event)
            seen_position = max(seen_position, event.position)
            if event.sequence > sent:
                sent = event.sequence
                yield {"id": str(event.sequence), "data": json.dumps(event.to_json())}
        if status in TERMINAL:
            log.info("run_events_follow_ended", run_id=run_id, status=status.value)
            return
        events = []
        polls = 0
        pause = POLL_SECONDS
        while not events:
            await anyio.sleep(pause)
            polls += 1
            try:
                newest = await newest_of.get()
                if newest > seen_position or polls % REREAD_EVERY == 0:
                    stream = await anyio.to_thread.run_sync(ledger.stream_events, run_id)
                    seen_position = max(seen_position, newest)
                    events = [e for e in stream if e.sequence > sent]
            except Exception as exc:  # the database went away: keep the stream, retry later
                if pause == POLL_SECONDS:
                    log.warning("run_events_follow_interrupted", run_id=run_id, error=str(exc)[:200])
                pause = min(MAX_BACKOFF_SECONDS, pause * 2)
                continue
            pause = POLL_SECONDS
