"""Reads more than one router makes the same way: a run's summary from its own events, and a
stored file checked against its hash."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import HTTPException

from api.runtime import Runtime
from ledger.errors import InvalidRequest
from ledger.store.filestore import CorruptFile
from projections.views.rundetail import run_events
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


def read_file_checked(runtime: Runtime, sha256: str) -> bytes:
    """The stored file's bytes, re-hashed on the way (a corrupt file is a 500, and logged)."""
    try:
        return runtime.files.read(sha256)
    except CorruptFile as exc:
        log.error("stored_file_corrupt", sha256=sha256)
        raise HTTPException(500, str(exc)) from None
