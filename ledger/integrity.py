"""``verify``: check every stored event against the rules of SPEC section 1 and the Merkle tree.

One pass over the events table in position order (streamed) checks, for each row: its hash
recomputed from its content, its stream's chain (``prev_hash``) and sequence continuity, and its
place in the incrementally kept Merkle tree (the tree remembers every position it has seen, so
a deleted row is a leaf without an event and an inserted row an event without a leaf). At the
end the Merkle root over the stored events is compared with the tree's, and with a saved digest
the tree is checked to be an append-only extension of it (RFC 9162 consistency proof).

Memory: O(number of streams) for the chain check (last sequence and hash per stream) plus
O(log n) for the tree; events are never held.
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import structlog

from ledger import merkle
from ledger.eventcheck import Checked, check_row, check_rows
from ledger.merkle_store import Frontier, MerkleStore, TreeHead
from ledger.rowscan import RawStore
from ledger.settings import Settings

log = structlog.get_logger()

MAX_LISTED_PROBLEMS = 1000


@dataclass(frozen=True)
class Problem:
    kind: str
    detail: str
    position: int | None = None
    stream: str | None = None
    sequence: int | None = None

    def __str__(self) -> str:
        place = []
        if self.stream is not None:
            place.append(f"stream {self.stream}")
        if self.sequence is not None:
            place.append(f"sequence {self.sequence}")
        if self.position is not None:
            place.append(f"position {self.position}")
        where = ", ".join(place)
        return f"{self.kind}: {where}: {self.detail}" if where else f"{self.kind}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "stream": self.stream, "sequence": self.sequence,
            "position": self.position, "detail": self.detail, "message": str(self),
        }


@dataclass
class VerifyReport:
    events_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    tree_size: int = 0
    root_hash: str = ""

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def add(self, problem: Problem) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_LISTED_PROBLEMS:
            self.problems.append(problem)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "events_checked": self.events_checked,
            "problems": [p.to_json() for p in self.problems],
            "problem_count": self.problem_count,
            "tree_size": self.tree_size, "root_hash": self.root_hash,
        }


def verify_ledger(settings: Settings, *, digest: Mapping[str, Any] | None = None,
                  batch: int = 10000, workers: int = 1) -> VerifyReport:
    """Check the whole ledger; with ``workers`` > 1 that many processes decode and hash (it
    pays on idle cores only: on this shared 2-core machine one process measured faster)."""
    store = MerkleStore(settings)
    report = VerifyReport()
    with store.raw.connect() as conn, store.raw.connect() as leaves_conn:
        head = store.catch_up_on(conn)
        report.tree_size, report.root_hash = head.tree_size, head.root.hex()
        _check_events(store, conn, leaves_conn, head, report, batch, workers)
        _check_tree_nodes(store, conn, head, report)
        if digest is not None:
            _check_digest(store, conn, head, digest, report)
    log.info("ledger_verified", ok=report.ok, events_checked=report.events_checked,
             problems=report.problem_count, tree_size=head.tree_size)
    return report


def checked_rows(raw: RawStore, conn: Any, upto: int, batch: int,
                 workers: int) -> Iterator[Checked]:
    """:func:`check_row` of every stored row up to ``upto``, in position order; with
    ``workers`` > 1 the decoding and hashing run in that many processes, a few batches ahead
    (bounded memory), while the caller does the order-dependent checks."""
    rows = raw.scan(conn, upto=upto, batch=batch)
    if workers <= 1:
        for row in rows:
            yield check_row(*row)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: deque[Future[list[Checked]]] = deque()
        while True:
            chunk = list(itertools.islice(rows, batch))
            if chunk:
                pending.append(pool.submit(check_rows, chunk))
            if pending and (not chunk or len(pending) >= 2 * workers):
                yield from pending.popleft().result()
            if not chunk and not pending:
                return


def _check_events(store: MerkleStore, conn: Any, leaves_conn: Any, head: TreeHead,
                  report: VerifyReport, batch: int, workers: int) -> None:
    dense = store.raw.is_sqlite  # SQLite rowids never skip: any gap is a deleted row
    streams: dict[str, tuple[int, str]] = {}
    leaves: Iterator[tuple[int, int, bytes]] = store.iter_leaves(leaves_conn, batch=batch)
    leaf = next(leaves, None)
    frontier = Frontier(0, {})
    previous_position = -1
    for position, stream, sequence, stored, prev_hash, recomputed in checked_rows(
        store.raw, conn, head.last_position, batch, workers
    ):
        report.events_checked += 1
        where: dict[str, Any] = {"position": position, "stream": stream, "sequence": sequence}
        if recomputed != stored:
            report.add(Problem("hash_mismatch", f"content hashes to {recomputed}, the row says "
                               f"{stored}: the event was modified", **where))
        _check_chain(streams, stream, sequence, stored, prev_hash, where, report)
        deleted_here = 0
        while leaf is not None and leaf[1] < position:
            report.add(Problem("event_deleted", f"the Merkle tree holds leaf {leaf[0]} for this "
                               f"position but the event is gone", position=leaf[1]))
            deleted_here += 1
            leaf = next(leaves, None)
        leaf_of_event = merkle.leaf_hash(_entry(stored))
        if leaf is not None and leaf[1] == position:
            if leaf[2] != leaf_of_event:
                report.add(Problem("leaf_mismatch", f"the Merkle tree recorded a different event "
                                   f"at leaf {leaf[0]}: the row was changed, swapped or replaced",
                                   **where))
            leaf = next(leaves, None)
        else:
            report.add(Problem("event_inserted", "this row is not in the Merkle tree although "
                               f"the tree has seen every position up to {head.last_position}",
                               **where))
        gap = position - previous_position - 1
        if dense and gap > deleted_here:
            report.add(Problem("position_gap", f"positions {previous_position + 1}.."
                               f"{position - 1} are missing (SQLite never leaves gaps)",
                               position=previous_position + 1))
        previous_position = position
        frontier.append(leaf_of_event)
    while leaf is not None:
        report.add(Problem("event_deleted", f"the Merkle tree holds leaf {leaf[0]} for this "
                           "position but the event is gone (tail truncated?)", position=leaf[1]))
        leaf = next(leaves, None)
    stored_root = frontier.root()
    if frontier.size != head.tree_size or stored_root != head.root:
        report.add(Problem("merkle_root", f"the root over the {frontier.size} stored events is "
                           f"{stored_root.hex()}, the tree of size {head.tree_size} says "
                           f"{head.root.hex()}"))


def _check_chain(streams: dict[str, tuple[int, str]], stream: str, sequence: int, hash_: str,
                 prev_hash: str | None, where: dict[str, Any], report: VerifyReport) -> None:
    last = streams.get(stream)
    expected = 1 if last is None else last[0] + 1
    if sequence > expected:
        report.add(Problem("sequence_gap", f"sequence {expected}..{sequence - 1} of this stream "
                           "missing", **where))
    elif sequence < expected:
        report.add(Problem("sequence_order", f"sequence {sequence} comes after sequence "
                           f"{expected - 1} in position order", **where))
    if sequence == 1:
        if prev_hash is not None:
            report.add(Problem("chain_broken", "the first event of a stream must have "
                               "prev_hash null", **where))
    elif last is not None and last[0] == sequence - 1 and prev_hash != last[1]:
        report.add(Problem("chain_broken", f"prev_hash {prev_hash} is not the hash of sequence "
                           f"{sequence - 1} ({last[1]})", **where))
    if last is None or sequence > last[0]:
        streams[stream] = (sequence, hash_)


def _entry(hash_: str) -> bytes:
    try:
        entry = bytes.fromhex(hash_)
    except ValueError:
        return hash_.encode()
    return entry if len(entry) == 32 else hash_.encode()


def _check_tree_nodes(store: MerkleStore, conn: Any, head: TreeHead, report: VerifyReport) -> None:
    try:
        from_nodes = store.root(conn, head.tree_size)
    except LookupError as exc:
        report.add(Problem("merkle_tree", str(exc)))
        return
    if from_nodes != head.root:
        report.add(Problem("merkle_tree", f"the stored tree nodes give root {from_nodes.hex()}, "
                           f"the tree head says {head.root.hex()}"))


def _check_digest(store: MerkleStore, conn: Any, head: TreeHead, digest: Mapping[str, Any],
                  report: VerifyReport) -> None:
    try:
        size = int(digest["tree_size"])
        root = bytes.fromhex(str(digest["root_hash"]))
    except (KeyError, TypeError, ValueError) as exc:
        report.add(Problem("digest", f"the digest is malformed: {exc}"))
        return
    if size > head.tree_size:
        report.add(Problem("digest", f"the digest covers {size} events but the ledger has only "
                           f"{head.tree_size}: history was truncated"))
        return
    if size == 0:
        if root != merkle.EMPTY_ROOT:
            report.add(Problem("digest", "an empty tree's root is the hash of nothing"))
        return
    try:
        proof = merkle.consistency_path(size, head.tree_size, store.subtree(conn))
    except LookupError as exc:
        report.add(Problem("digest", str(exc)))
        return
    if not merkle.verify_consistency(size, head.tree_size, root, head.root, proof):
        report.add(Problem("digest", f"today's tree (size {head.tree_size}, root "
                           f"{head.root.hex()}) is not an append-only extension of the digest "
                           f"(size {size}, root {root.hex()})"))
