"""Inclusion proofs for many leaves in a row (exports), read from the stored tree a window at a
time instead of one query per node."""

from __future__ import annotations

from typing import Any

from ledger.integrity import merkle
from ledger.integrity.merkle_store import MerkleStore


class ProofCache:
    """Inclusion proofs for many leaves in a row (exports): stored nodes are read a window at a
    time (one query per level) and kept in a bounded dict, instead of one query per node."""

    def __init__(self, store: MerkleStore, conn: Any, tree_size: int, *, window: int = 4096) -> None:
        self.store = store
        self.conn = conn
        self.tree_size = tree_size
        self.window = window
        self.cache: dict[tuple[int, int], bytes] = {}
        self.loaded_upto = -1

    def _load(self, low: int) -> None:
        """Read every stored node whose leaves overlap [low - window, low + 2 * window)."""
        self.cache.clear()
        first, last = max(0, low - self.window), min(self.tree_size, low + 2 * self.window)
        raw = self.store.raw
        for index, _, hash_ in self.store.iter_leaves(
            self.conn, start=first, stop=last, batch=last - first + 1
        ):
            self.cache[(index, index + 1)] = hash_
        level = 1
        while (1 << level) <= self.tree_size:
            lo, hi = first >> level, (last >> level) + 1
            rows = self.conn.execute(
                raw.sql(f"SELECT idx, hash FROM {self.store.nodes} WHERE level = ? AND idx BETWEEN ? AND ?"),
                (level, lo, hi),
            ).fetchall()
            for idx, hash_ in rows:
                start = int(idx) << level
                if start + (1 << level) <= self.tree_size:
                    self.cache[(start, start + (1 << level))] = bytes(hash_)
            level += 1
        self.loaded_upto = low + self.window

    def subtree(self, start: int, end: int) -> bytes:
        cached = self.cache.get((start, end))
        if cached is not None:
            return cached
        size = end - start
        if size & (size - 1) == 0 and start % size == 0:
            level = size.bit_length() - 1
            value = self.store.node(self.conn, level, start >> level)
        else:
            k = merkle.largest_power_of_two_below(size)
            value = merkle.node_hash(self.subtree(start, start + k), self.subtree(start + k, end))
        if len(self.cache) < 8 * self.window:
            self.cache[(start, end)] = value
        return value

    def path(self, leaf_index: int) -> list[bytes]:
        if leaf_index >= self.loaded_upto or leaf_index < self.loaded_upto - 2 * self.window:
            self._load(leaf_index)
        return merkle.inclusion_path(leaf_index, self.tree_size, self.subtree)
