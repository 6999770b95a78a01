"""The ledger's Merkle tree, kept incrementally in tables next to the events.

``runledger_merkle_leaves`` holds one row per leaf (its ordinal, the event position it came
from and the leaf hash), ``runledger_merkle_nodes`` every completed perfect subtree
``(level, index) -> hash`` and ``runledger_merkle_state`` the tree size, the last position
seen and the root. :meth:`MerkleStore.catch_up` appends the events stored since the last
position in short transactions (compare-and-set on the state row, so several processes may
catch up at once); proofs read O(log n) stored nodes: nothing is recomputed per request.

The leaf index is the event's ordinal among existing events in position order: PostgreSQL can
leave gaps in positions (rolled-back inserts), the tree never does. Because the tree remembers
every position it has seen, a row deleted later shows up as a leaf without an event.

Past 300 lines on purpose: the tables, the catch-up and the proofs read one another's rows
under the same compare-and-set rule; kept together so that rule is read in one place.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from ledger.hashing import format_timestamp
from ledger.integrity import merkle
from ledger.settings import Settings
from ledger.store.rawstore import RawStore

log = structlog.get_logger()

LEAVES = "runledger_merkle_leaves"
NODES = "runledger_merkle_nodes"
STATE = "runledger_merkle_state"


@dataclass(frozen=True)
class TreeHead:
    tree_size: int
    root: bytes
    last_position: int

    def digest(self, at: datetime | None = None) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size,
            "root_hash": self.root.hex(),
            "at": format_timestamp(at or datetime.now(UTC)),
            "last_position": self.last_position,
        }


class Frontier:
    """The perfect subtrees along the right edge of a tree: level -> hash (O(log n))."""

    def __init__(self, size: int, nodes: dict[int, bytes]) -> None:
        self.size = size
        self.nodes = nodes

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; returns the newly completed interior nodes (level, index, hash)."""
        completed: list[tuple[int, int, bytes]] = []
        carry, level, index = leaf, 0, self.size
        while level in self.nodes and (self.size >> level) & 1:
            carry = merkle.node_hash(self.nodes.pop(level), carry)
            level += 1
            index >>= 1
            completed.append((level, index, carry))
        self.nodes[level] = carry
        self.size += 1
        return completed

    def push(self, leaf: bytes) -> None:
        """:meth:`append` without collecting the completed nodes (for checks that keep none)."""
        self.append_subtree(leaf, 0)

    def append_subtree(self, node: bytes, level: int) -> None:
        """Add a perfect subtree of ``2**level`` leaves at once (the size must be a multiple
        of it): how ranges checked apart join one tree."""
        assert self.size % (1 << level) == 0, "a subtree must start on its own boundary"
        carry, added = node, 1 << level
        while level in self.nodes and (self.size >> level) & 1:
            carry = merkle.node_hash(self.nodes.pop(level), carry)
            level += 1
        self.nodes[level] = carry
        self.size += added

    def root(self) -> bytes:
        if self.size == 0:
            return merkle.EMPTY_ROOT
        result: bytes | None = None
        for level in sorted(self.nodes):
            node = self.nodes[level]
            result = node if result is None else merkle.node_hash(node, result)
        assert result is not None
        return result


#: How the library stores an event's state: the timestamp first, then our hash.
_STORED_HASH = re.compile(
    rb'\{"timestamp":\{"_type_":"datetime_iso","_data_":"[0-9T:.+-]{1,40}"\},"hash":"([0-9a-f]{64})"'
)


def leaf_entry(state: bytes) -> bytes:
    """The 32 raw bytes of an event's stored hash (its Merkle leaf entry). A row shaped
    otherwise (or a crafted one) is parsed in full: ``verify`` compares the two readings."""
    match = _STORED_HASH.match(state)
    if match is not None:
        return bytes.fromhex(match.group(1).decode())
    try:
        value = json.loads(state).get("hash")
    except (ValueError, AttributeError):  # not a JSON object: a leaf no event can match
        return b"unreadable:" + state[:64]
    try:
        entry = bytes.fromhex(str(value))
    except ValueError:
        entry = b""
    return entry if len(entry) == 32 else str(value).encode()


class MerkleStore:
    def __init__(self, settings: Settings, *, chunk: int = 5000) -> None:
        self.raw = RawStore(settings)
        self.chunk = chunk
        self.leaves = self.raw.table(LEAVES)
        self.nodes = self.raw.table(NODES)
        self.state_table = self.raw.table(STATE)
        self._ensured = False

    # ---- schema -----------------------------------------------------------------------------
    def ensure_tables(self, conn: Any) -> None:
        if self._ensured:
            return
        blob = "BLOB" if self.raw.is_sqlite else "BYTEA"
        statements = [
            f"CREATE TABLE IF NOT EXISTS {self.leaves} (leaf_index BIGINT PRIMARY KEY, "
            f"position BIGINT NOT NULL UNIQUE, hash {blob} NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {self.nodes} (level INTEGER NOT NULL, "
            f"idx BIGINT NOT NULL, hash {blob} NOT NULL, PRIMARY KEY (level, idx))",
            f"CREATE TABLE IF NOT EXISTS {self.state_table} (id INTEGER PRIMARY KEY, "
            f"tree_size BIGINT NOT NULL, last_position BIGINT NOT NULL, root {blob} NOT NULL)",
        ]
        with self.raw.write_transaction(conn) as cursor:
            if not self.raw.is_sqlite:  # concurrent CREATE TABLE IF NOT EXISTS races on PG
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.state_table,))
            for statement in statements:
                cursor.execute(statement)
            cursor.execute(
                self.raw.sql(
                    f"INSERT INTO {self.state_table} (id, tree_size, last_position, root) "
                    f"VALUES (1, 0, -1, ?) ON CONFLICT (id) DO NOTHING"
                ),
                (merkle.EMPTY_ROOT,),
            )
        self._ensured = True

    # ---- reading ----------------------------------------------------------------------------
    def head(self, conn: Any) -> TreeHead:
        self.ensure_tables(conn)
        row = conn.execute(
            f"SELECT tree_size, last_position, root FROM {self.state_table} WHERE id = 1"
        ).fetchone()
        return TreeHead(int(row[0]), bytes(row[2]), int(row[1]))

    def node(self, conn: Any, level: int, index: int) -> bytes:
        if level == 0:
            query = self.raw.sql(f"SELECT hash FROM {self.leaves} WHERE leaf_index = ?")
            row = conn.execute(query, (index,)).fetchone()
        else:
            query = self.raw.sql(f"SELECT hash FROM {self.nodes} WHERE level = ? AND idx = ?")
            row = conn.execute(query, (level, index)).fetchone()
        if row is None:
            raise LookupError(f"the Merkle store has no node at level {level}, index {index}")
        return bytes(row[0])

    def subtree(self, conn: Any) -> merkle.SubtreeHash:
        def mth(start: int, end: int) -> bytes:
            size = end - start
            if size & (size - 1) == 0 and start % size == 0:
                level = size.bit_length() - 1
                return self.node(conn, level, start >> level)
            k = merkle.largest_power_of_two_below(size)
            return merkle.node_hash(mth(start, start + k), mth(start + k, end))

        return mth

    def root(self, conn: Any, tree_size: int) -> bytes:
        return merkle.EMPTY_ROOT if tree_size == 0 else self.subtree(conn)(0, tree_size)

    def frontier(self, conn: Any, size: int) -> Frontier:
        nodes: dict[int, bytes] = {}
        start = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if (size >> level) & 1:
                nodes[level] = self.node(conn, level, start >> level)
                start += 1 << level
        return Frontier(size, nodes)

    def leaf_index_of(self, conn: Any, position: int) -> int | None:
        query = self.raw.sql(f"SELECT leaf_index FROM {self.leaves} WHERE position = ?")
        row = conn.execute(query, (position,)).fetchone()
        return None if row is None else int(row[0])

    def iter_leaves(
        self, conn: Any, *, batch: int = 10000, start: int = 0, stop: int | None = None
    ) -> Iterator[tuple[int, int, bytes]]:
        """(leaf_index, position, leaf hash) for ``start`` <= leaf_index < ``stop``, in
        order, streamed in pages."""
        query = self.raw.sql(
            f"SELECT leaf_index, position, hash FROM {self.leaves} "
            f"WHERE leaf_index >= ? AND leaf_index < ? ORDER BY leaf_index LIMIT ?"
        )
        next_index, end = start, 2**62 if stop is None else stop
        binary = {} if self.raw.is_sqlite else {"binary": True}  # bytea as bytes, not hex
        while next_index < end:
            rows = conn.execute(query, (next_index, end, batch), **binary).fetchall()
            yield from rows  # (int, int, bytes) from both drivers
            if len(rows) < batch:
                return
            next_index = int(rows[-1][0]) + 1

    def leaf_position(self, conn: Any, leaf_index: int) -> int:
        """The event position leaf ``leaf_index`` was made from."""
        query = self.raw.sql(f"SELECT position FROM {self.leaves} WHERE leaf_index = ?")
        row = conn.execute(query, (leaf_index,)).fetchone()
        if row is None:
            raise LookupError(f"the Merkle store has no leaf {leaf_index}")
        return int(row[0])

    # ---- appending --------------------------------------------------------------------------
    def catch_up(self) -> TreeHead:
        """Append every event stored after the tree's last position; returns the new head."""
        with self.raw.connect() as conn:
            return self.catch_up_on(conn)

    def catch_up_on(self, conn: Any) -> TreeHead:
        head = self.head(conn)
        frontier = self.frontier(conn, head.tree_size)
        appended = 0
        while True:
            rows = list(
                self.raw.rows.scan(conn, after=head.last_position, batch=self.chunk, limit=self.chunk)
            )
            if not rows:
                break
            start_size = frontier.size
            leaves: list[tuple[int, int, bytes]] = []
            nodes: list[tuple[int, int, bytes]] = []
            for row in rows:
                leaf = merkle.leaf_hash(leaf_entry(row.state))
                leaves.append((frontier.size, row.position, leaf))
                nodes.extend(frontier.append(leaf))
            new_head = TreeHead(frontier.size, frontier.root(), rows[-1].position)
            if not self._commit(conn, start_size, leaves, nodes, new_head):
                head = self.head(conn)  # another process moved the tree on: start over from it
                frontier = self.frontier(conn, head.tree_size)
                continue
            appended += len(rows)
            head = new_head
        if appended:
            log.info("merkle_tree_extended", appended=appended, tree_size=head.tree_size)
        return self.head(conn) if not appended else head

    def _commit(
        self,
        conn: Any,
        start_size: int,
        leaves: list[tuple[int, int, bytes]],
        nodes: list[tuple[int, int, bytes]],
        head: TreeHead,
    ) -> bool:
        with self.raw.write_transaction(conn) as cursor:
            cursor.execute(
                self.raw.sql(
                    f"UPDATE {self.state_table} SET tree_size = ?, last_position = ?, root = ? "
                    f"WHERE id = 1 AND tree_size = ?"
                ),
                (head.tree_size, head.last_position, head.root, start_size),
            )
            if cursor.rowcount != 1:
                return False
            cursor.executemany(
                self.raw.sql(f"INSERT INTO {self.leaves} (leaf_index, position, hash) VALUES (?, ?, ?)"),
                leaves,
            )
            if nodes:
                cursor.executemany(
                    self.raw.sql(f"INSERT INTO {self.nodes} (level, idx, hash) VALUES (?, ?, ?)"),
                    nodes,
                )
        return True

    # ---- answers ----------------------------------------------------------------------------
    def digest(self) -> dict[str, Any]:
        return self.catch_up().digest()

    def inclusion(self, position: int, tree_size: int | None = None) -> dict[str, Any]:
        with self.raw.connect() as conn:
            head = self.catch_up_on(conn)
            size = head.tree_size if tree_size is None else tree_size
            if not 0 < size <= head.tree_size:
                raise ValueError(f"tree_size must be between 1 and {head.tree_size}")
            index = self.leaf_index_of(conn, position)
            if index is None:
                raise KeyError(f"no event at position {position} in the tree")
            if index >= size:
                raise ValueError(f"position {position} (leaf {index}) is not in a tree of size {size}")
            path = merkle.inclusion_path(index, size, self.subtree(conn))
        return {"leaf_index": index, "tree_size": size, "audit_path": [p.hex() for p in path]}

    def consistency(self, first: int, second: int | None = None) -> dict[str, Any]:
        with self.raw.connect() as conn:
            head = self.catch_up_on(conn)
            size = head.tree_size if second is None else second
            if not 0 < first <= size <= head.tree_size:
                raise ValueError(f"need 0 < first <= second <= {head.tree_size}")
            proof = merkle.consistency_path(first, size, self.subtree(conn))
        return {"first": first, "second": size, "proof": [p.hex() for p in proof]}
