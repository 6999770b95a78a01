"""``verify``: check every stored event against the rules of SPEC section 1 and the Merkle tree.

The events are cut into ranges of ``RANGE_LEAVES`` Merkle leaves (a power of two) and each range
is checked on its own (:mod:`ledger.integrity.verify_range`), in this process or spread over worker
processes that read the store themselves. Per row: its hash recomputed from its content, its
stream's chain (``prev_hash``) and sequence continuity, and its place in the incrementally kept
Merkle tree (the tree remembers every position it has seen, so a deleted row is a leaf without
an event and an inserted row an event without a leaf). The ranges are then joined in order:
each stream's first event in a range is checked against its last one in the earlier ranges,
and the ranges' subtrees make the root over the stored events, compared with the tree's. With
a saved digest the tree is checked to be an append-only extension of it (RFC 9162
consistency proof).

Memory: O(number of streams) for the chain check plus O(range) per range in flight (a few per
worker); events are never held beyond their range.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import structlog

from ledger.integrity import merkle
from ledger.integrity.merkle_store import Frontier, MerkleStore, TreeHead
from ledger.integrity.verify_range import RangeResult, RangeSpec, check_chain, check_range
from ledger.integrity.verify_report import MAX_LISTED_PROBLEMS, Problem, VerifyReport
from ledger.settings import Settings

__all__ = ["MAX_LISTED_PROBLEMS", "Problem", "VerifyReport", "auto_workers", "verify_ledger"]

log = structlog.get_logger()

#: Leaves per range: a power of two, so an untouched range is one perfect subtree.
RANGE_LEAVES = 1 << 16


def auto_workers(tree_size: int, range_leaves: int = RANGE_LEAVES) -> int:
    """Processes worth starting: one more than the CPUs (each also waits on the database;
    measured on 2 cores and PostgreSQL at 1M events: 3 workers 102k ev/s, 2 workers 86-92k),
    at most 4; none for a ledger of a couple of ranges, where starting them costs more than
    it saves."""
    if tree_size < 2 * range_leaves:
        return 1
    return min(4, (os.cpu_count() or 1) + 1)


def verify_ledger(
    settings: Settings,
    *,
    digest: Mapping[str, Any] | None = None,
    batch: int = 10000,
    workers: int | None = 1,
    range_leaves: int = RANGE_LEAVES,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Check the whole ledger; ``workers`` processes check ranges side by side (None: as many
    as pay, see :func:`auto_workers`). ``progress(done, total)`` hears how many of the tree's
    events were checked after each range."""
    if range_leaves < 1 or range_leaves & (range_leaves - 1):
        raise ValueError("range_leaves must be a power of two")
    store = MerkleStore(settings)
    report = VerifyReport()
    with store.raw.connect() as conn:
        head = store.catch_up_on(conn)
        report.tree_size, report.root_hash = head.tree_size, head.root.hex()
        if workers is None:
            workers = auto_workers(head.tree_size, range_leaves)
        specs = _plan(store, conn, head, range_leaves)
        if progress is not None:
            progress(0, head.tree_size)
        frontier = _join(_results(settings, specs, batch, workers), report, progress, head.tree_size)
        if frontier.size != head.tree_size or frontier.root() != head.root:
            report.add(
                Problem(
                    "merkle_root",
                    f"the root over the {frontier.size} stored events "
                    f"is {frontier.root().hex()}, the tree of size {head.tree_size} "
                    f"says {head.root.hex()}",
                )
            )
        _check_tree_nodes(store, conn, head, report)
        if digest is not None:
            _check_digest(store, conn, head, digest, report)
    log.info(
        "ledger_verified",
        ok=report.ok,
        events_checked=report.events_checked,
        problems=report.problem_count,
        tree_size=head.tree_size,
        workers=workers,
        ranges=len(specs),
    )
    return report


def _plan(store: MerkleStore, conn: Any, head: TreeHead, range_leaves: int) -> list[RangeSpec]:
    """Ranges of ``range_leaves`` leaves that tile the positions up to the tree's last one."""
    starts = list(range(0, head.tree_size, range_leaves)) or [0]
    bounds = [-1] + [store.leaf_position(conn, start) - 1 for start in starts[1:]]
    bounds.append(head.last_position)
    return [
        RangeSpec(
            leaf_start=start,
            leaf_stop=min(start + range_leaves, head.tree_size),
            after=bounds[i],
            upto=bounds[i + 1],
            tree_last_position=head.last_position,
        )
        for i, start in enumerate(starts)
    ]


def _results(settings: Settings, specs: list[RangeSpec], batch: int, workers: int) -> Iterator[RangeResult]:
    """Each range's result, in order; with ``workers`` > 1 computed by that many processes,
    at most two ranges ahead per worker (bounded memory)."""
    if workers <= 1 or len(specs) == 1:
        for spec in specs:
            yield check_range(settings, spec, batch)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(specs)), mp_context=context) as pool:
        pending: deque[Future[RangeResult]] = deque()
        queued = iter(specs)
        for spec in queued:
            pending.append(pool.submit(check_range, settings, spec, batch))
            if len(pending) >= 2 * workers:
                break
        while pending:
            yield pending.popleft().result()
            spec_next = next(queued, None)
            if spec_next is not None:
                pending.append(pool.submit(check_range, settings, spec_next, batch))


def _join(
    results: Iterator[RangeResult],
    report: VerifyReport,
    progress: Callable[[int, int], None] | None = None,
    total: int = 0,
) -> Frontier:
    """Join the ranges in order: chains across range boundaries, problems, and the tree over
    the stored events (perfect subtrees while ranges stay whole, leaf by leaf after a range
    that lost or gained rows)."""
    streams: dict[str, tuple[int, str]] = {}
    frontier = Frontier(0, {})
    for result in results:
        found: list[Problem] = []
        for stream, (position, sequence, hash_, prev_hash) in result.first.items():
            check_chain(streams, stream, sequence, hash_, prev_hash, position, found.append)
        for stream, (sequence, hash_) in result.last.items():
            last = streams.get(stream)
            if last is None or sequence > last[0]:
                streams[stream] = (sequence, hash_)
        found += result.problems
        found.sort(key=lambda p: -1 if p.position is None else p.position)
        for problem in found:
            report.add(problem)
        report.problem_count += result.problem_count - len(result.problems)
        report.events_checked += result.events_checked
        if all(frontier.size % (1 << level) == 0 for level in result.subtrees):
            for level, node in result.subtrees.items():
                frontier.append_subtree(node, level)
        else:
            for offset in range(0, len(result.leaves), 32):
                frontier.push(result.leaves[offset : offset + 32])
        if progress is not None:
            progress(min(frontier.size, total), total)
    return frontier


def _check_tree_nodes(store: MerkleStore, conn: Any, head: TreeHead, report: VerifyReport) -> None:
    try:
        from_nodes = store.root(conn, head.tree_size)
    except LookupError as exc:
        report.add(Problem("merkle_tree", str(exc)))
        return
    if from_nodes != head.root:
        report.add(
            Problem(
                "merkle_tree",
                f"the stored tree nodes give root {from_nodes.hex()}, the tree head says {head.root.hex()}",
            )
        )


def _check_digest(
    store: MerkleStore, conn: Any, head: TreeHead, digest: Mapping[str, Any], report: VerifyReport
) -> None:
    try:
        size = int(digest["tree_size"])
        root = bytes.fromhex(str(digest["root_hash"]))
    except (KeyError, TypeError, ValueError) as exc:
        report.add(Problem("digest", f"the digest is malformed: {exc}"))
        return
    if size > head.tree_size:
        report.add(
            Problem(
                "digest",
                f"the digest covers {size} events but the ledger has only "
                f"{head.tree_size}: history was truncated",
            )
        )
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
        report.add(
            Problem(
                "digest",
                f"today's tree (size {head.tree_size}, root "
                f"{head.root.hex()}) is not an append-only extension of the digest "
                f"(size {size}, root {root.hex()})",
            )
        )
