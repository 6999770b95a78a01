"""One range of the ledger checked on its own: the unit of work ``verify`` spreads over processes.

A range is the Merkle leaves ``[leaf_start, leaf_stop)`` and the stored events whose positions
fall in ``(after, upto]``: from the range's first leaf up to the next range's first leaf. Within
it every check that needs only the range is made here, reading the store directly (no rows
cross process boundaries): each event's hash recomputed from its content, its leaf, rows
deleted or inserted, SQLite position gaps, and each stream's chain from its second event in
the range on. What depends on earlier ranges is left to the caller (:mod:`ledger.integrity.verify`),
which joins the ranges in order: each stream's first event in the range (for its chain), the
range's last hash per stream, and its leaves (as perfect subtrees, or one by one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ledger.integrity import merkle
from ledger.integrity.merkle_store import Frontier, MerkleStore
from ledger.integrity.verify_report import Problem, Problems
from ledger.settings import Settings
from ledger.store.decode import check_row

#: (position, sequence, stored hash, prev_hash) of a stream's first event in a range.
FirstEvent = tuple[int, int, str, Any]


@dataclass(frozen=True)
class RangeSpec:
    leaf_start: int
    leaf_stop: int
    after: int  # positions > after ...
    upto: int  # ... and <= upto
    tree_last_position: int  # the newest position the tree has seen (for messages)


@dataclass
class RangeResult(Problems):
    #: Leaf hashes of the stored events, in order, 32 bytes each.
    leaves: bytes = b""
    #: The perfect subtrees over those leaves (level -> hash), largest first.
    subtrees: dict[int, bytes] = field(default_factory=dict)
    first: dict[str, FirstEvent] = field(default_factory=dict)
    last: dict[str, tuple[int, str]] = field(default_factory=dict)


def check_range(settings: Settings, spec: RangeSpec, batch: int = 10000) -> RangeResult:
    """Every check of :mod:`ledger.integrity.verify` that the range alone can answer."""
    store = MerkleStore(settings)
    with store.raw.connect() as conn, store.raw.connect() as leaves_conn:
        leaves = store.iter_leaves(leaves_conn, batch=batch, start=spec.leaf_start, stop=spec.leaf_stop)
        rows = store.raw.rows.scan_tuples(conn, after=spec.after, upto=spec.upto, batch=batch)
        return _check(rows, leaves, spec, dense=store.raw.is_sqlite)


def _check(
    rows: Iterator[Any], leaves: Iterator[tuple[int, int, bytes]], spec: RangeSpec, *, dense: bool
) -> RangeResult:
    result = RangeResult()
    streams = result.last
    frontier = Frontier(0, {})
    hashes = bytearray()
    leaf = next(leaves, None)
    previous_position = spec.after
    for row in rows:
        position, stream, sequence, stored, prev_hash, recomputed = check_row(*row)
        result.events_checked += 1
        if recomputed != stored:
            result.add(
                Problem(
                    "hash_mismatch",
                    f"content hashes to {recomputed}, the row says {stored}: the event was modified",
                    position,
                    stream,
                    sequence,
                )
            )
        if stream in streams:
            check_chain(streams, stream, sequence, stored, prev_hash, position, result.add)
        else:  # its predecessor is in an earlier range: the caller checks the link
            result.first[stream] = (position, sequence, stored, prev_hash)
            streams[stream] = (sequence, stored)
        deleted_here = 0
        while leaf is not None and leaf[1] < position:
            result.add(
                Problem(
                    "event_deleted",
                    f"the Merkle tree holds leaf {leaf[0]} for this position but the event is gone",
                    leaf[1],
                )
            )
            deleted_here += 1
            leaf = next(leaves, None)
        leaf_of_event = merkle.leaf_hash(_entry(stored))
        if leaf is not None and leaf[1] == position:
            if leaf[2] != leaf_of_event:
                result.add(
                    Problem(
                        "leaf_mismatch",
                        f"the Merkle tree recorded a different event "
                        f"at leaf {leaf[0]}: the row was changed, swapped or replaced",
                        position,
                        stream,
                        sequence,
                    )
                )
            leaf = next(leaves, None)
        else:
            result.add(
                Problem(
                    "event_inserted",
                    "this row is not in the Merkle tree although "
                    f"the tree has seen every position up to {spec.tree_last_position}",
                    position,
                    stream,
                    sequence,
                )
            )
        gap = position - previous_position - 1
        if dense and gap > deleted_here:
            result.add(
                Problem(
                    "position_gap",
                    f"positions {previous_position + 1}.."
                    f"{position - 1} are missing (SQLite never leaves gaps)",
                    previous_position + 1,
                )
            )
        previous_position = position
        hashes += leaf_of_event
        frontier.push(leaf_of_event)
    while leaf is not None:
        result.add(
            Problem(
                "event_deleted",
                f"the Merkle tree holds leaf {leaf[0]} for this "
                "position but the event is gone (tail truncated?)",
                leaf[1],
            )
        )
        leaf = next(leaves, None)
    result.leaves = bytes(hashes)
    result.subtrees = dict(sorted(frontier.nodes.items(), reverse=True))
    return result


def check_chain(
    streams: dict[str, tuple[int, str]],
    stream: str,
    sequence: int,
    hash_: str,
    prev_hash: Any,
    position: int,
    add: Callable[[Problem], None],
) -> None:
    """Sequence continuity and ``prev_hash`` of one event against its stream's last one."""
    last = streams.get(stream)
    expected = 1 if last is None else last[0] + 1
    if sequence > expected:
        add(
            Problem(
                "sequence_gap",
                f"sequence {expected}..{sequence - 1} of this stream missing",
                position,
                stream,
                sequence,
            )
        )
    elif sequence < expected:
        add(
            Problem(
                "sequence_order",
                f"sequence {sequence} comes after sequence {expected - 1} in position order",
                position,
                stream,
                sequence,
            )
        )
    if sequence == 1:
        if prev_hash is not None:
            add(
                Problem(
                    "chain_broken",
                    "the first event of a stream must have prev_hash null",
                    position,
                    stream,
                    sequence,
                )
            )
    elif last is not None and last[0] == sequence - 1 and prev_hash != last[1]:
        add(
            Problem(
                "chain_broken",
                f"prev_hash {prev_hash} is not the hash of sequence {sequence - 1} ({last[1]})",
                position,
                stream,
                sequence,
            )
        )
    if last is None or sequence > last[0]:
        streams[stream] = (sequence, hash_)


def _entry(hash_: str) -> bytes:
    try:
        entry = bytes.fromhex(hash_)
    except ValueError:
        return hash_.encode()
    return entry if len(entry) == 32 else hash_.encode()
