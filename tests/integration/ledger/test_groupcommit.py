"""The commit delay: a leading write waits for writes announced as coming, so they share one
transaction; it does not wait for an announced writer that leaves without writing."""

from __future__ import annotations

import threading
import time
from typing import Any

from eventsourcing.persistence import StoredEvent

from ledger.groupcommit import GroupCommitRecorder
from ledger.service import Ledger

LONG_DELAY = 30.0  # far longer than the test: reaching it would fail the joins below


def stored(stream: str) -> list[StoredEvent]:
    return [StoredEvent(originator_id=stream, originator_version=1, topic="tests:Event",
                        state=b"{}")]


def test_a_write_announced_as_coming_shares_the_leader_s_transaction(ledger: Ledger) -> None:
    group = GroupCommitRecorder(ledger.recorder, max_delay=LONG_DELAY)
    computing, results = threading.Event(), {}

    def announced_writer() -> None:
        with group.coming():
            computing.set()
            time.sleep(0.3)  # the command's own work, while the other write is ready
            results["announced"] = group.insert_events(stored("announced"))

    def plain_writer() -> None:
        computing.wait()
        results["plain"] = group.insert_events(stored("plain"))

    threads = [threading.Thread(target=announced_writer), threading.Thread(target=plain_writer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    assert group.groups == 1  # without the delay the plain write would have gone alone
    (plain,), (announced,) = results["plain"], results["announced"]
    assert announced == plain + 1


def test_a_leader_does_not_wait_for_an_announced_writer_that_writes_nothing(
    ledger: Ledger,
) -> None:
    group = GroupCommitRecorder(ledger.recorder, max_delay=LONG_DELAY)
    computing, leave, results = threading.Event(), threading.Event(), {}

    def announced_but_refused() -> None:
        with group.coming():
            computing.set()
            leave.wait(10)  # e.g. the command refuses the request: no write

    def plain_writer() -> None:
        computing.wait()
        results["plain"] = group.insert_events(stored("plain"))

    refused = threading.Thread(target=announced_but_refused)
    writer = threading.Thread(target=plain_writer)
    refused.start()
    writer.start()
    time.sleep(0.2)
    assert "plain" not in results  # it waits for the announced write...
    leave.set()
    writer.join(timeout=10)  # ...until that writer leaves
    refused.join(timeout=10)
    assert not writer.is_alive() and results["plain"]


def test_a_lone_announced_writer_commits_without_waiting(ledger: Ledger) -> None:
    group = GroupCommitRecorder(ledger.recorder, max_delay=LONG_DELAY)
    done: dict[str, Any] = {}

    def write() -> None:
        with group.coming(), group.coming():  # re-entrant: counted once
            done["ids"] = group.insert_events(stored("alone"))

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive() and done["ids"]
