"""Reads more than one router makes the same way: a run's summary from its own events, and a
stored file checked against its hash."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import HTTPException

from api.runtime import Runtime
from ledger.errors import Gone, InvalidRequest, NotFound
from ledger.store.event_record import EventRecord
from ledger.store.filestore import CorruptFile
from projections.views.rundetail import is_expunged, run_events
from projections.views.summaries_fold import summary_from_events

log = structlog.get_logger()


def run_summary(runtime: Runtime, run_id: str) -> dict[str, Any]:
    """The run's summary, folded from its own events with the same fold the summaries view
    uses: a single run is always read-your-writes (after a trigger, a cancel, a report), even
    while the view lags. Cross-run queries go to the view."""
    found = summary_from_events(run_events(runtime.ledger, run_id))
    if found is None:  # pragma: no cover - run_events raised already
        raise InvalidRequest(f"no run {run_id!r}")
    return dict(found)


def sensitive_values(runtime: Runtime, run_id: str) -> dict[str, Any]:
    """The run's parameters with sealed values opened (``[erased]`` without the key)."""
    run = runtime.ledger.get_run(run_id)
    return runtime.ledger.run_parameters(run)


def refuse_expunged(events: list[EventRecord]) -> None:
    """410 Gone for the logs and files of an expunged run."""
    if is_expunged(events):
        raise Gone(f"run {events[0].stream} is expunged: its logs and files are erased")


def read_file_checked(runtime: Runtime, sha256: str) -> bytes:
    """The stored file's bytes, re-hashed on the way (a corrupt file is a 500, and logged);
    410 for one an expunge deleted."""
    try:
        return runtime.files.read(sha256)
    except NotFound:
        if runtime.ledger.keys.was_erased(sha256):
            raise Gone(f"stored file {sha256} was deleted when the runs naming it were expunged") from None
        raise
    except CorruptFile as exc:
        log.error("stored_file_corrupt", sha256=sha256)
        raise HTTPException(500, str(exc)) from None
