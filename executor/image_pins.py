"""Which image a replayed (or resumed) container task runs: the one its original run ran.

A replay re-reads the original run's trigger, so its definition still names the image by tag;
the tag may have been moved since. The original run's ``Run.TaskFinished`` evidence holds the
image ID each task ran, and the new run's attempts are pinned to it.
"""

from __future__ import annotations

from ledger.domain.run import Run
from ledger.service import Ledger


def recorded_image_ids(ledger: Ledger, run: Run) -> dict[str, str]:
    """Task name -> image ID recorded by the run ``run`` replays or resumes ({} otherwise)."""
    source = run.replay_of if run.trigger_kind == "replay" else None
    if run.trigger_kind == "resume":
        source = run.resume_of
    if not source:
        return {}
    pins: dict[str, str] = {}
    for event in ledger.reader.stream(source):
        if event.type == "Run.TaskFinished" and event.data.get("image_hash"):
            pins[str(event.data["task"])] = str(event.data["image_hash"])  # the last attempt wins
    return pins
