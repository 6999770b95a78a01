"""What every view (one read model) is: a name, a schema version, its tables, and a batch handler.

A view's tables are named ``rl_<name>_v<schema_version>_g<generation>_<table>``: the schema
version is part of the name (a changed schema builds new tables), and the generation lets a
rebuild fill fresh tables while the live ones keep serving.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from ledger.store.event_record import EventRecord
from projections.db import Connection


@dataclass(frozen=True)
class Tables:
    """The table names of one generation of one view."""

    prefix: str

    def __call__(self, table: str) -> str:
        return f"{self.prefix}_{table}"

    @classmethod
    def of(cls, name: str, schema_version: int, generation: int) -> Tables:
        return cls(f"rl_{name}_v{schema_version}_g{generation}")


class View(ABC):
    """One view: its DDL, its event handler, and (in its module) its queries."""

    name: ClassVar[str]
    schema_version: ClassVar[int]
    #: Table suffixes, so a generation can be dropped and compared.
    table_names: ClassVar[tuple[str, ...]]
    #: Tables a rebuild only ANALYZEs on PostgreSQL (read through their heap anyway); the
    #: others are also VACUUMed, for a visibility map that allows index-only scans.
    analyze_only: ClassVar[frozenset[str]] = frozenset()
    #: Whether a rebuild may split the view's events by stream between processes: not for a
    #: view whose rows several streams write (they must be folded in ledger order).
    splittable: ClassVar[bool] = True

    @abstractmethod
    def create(self, conn: Connection, t: Tables) -> None:
        """Create this generation's tables and indexes (IF NOT EXISTS)."""

    @abstractmethod
    def apply(self, conn: Connection, t: Tables, events: list[EventRecord]) -> None:
        """Fold ``events`` (oldest first) into the tables, inside the caller's transaction.

        Events the view does not care about are simply skipped; the caller still advances
        the view's position past them in the same transaction.
        """

    def rebuilder(self) -> Rebuilder:
        """How a rebuild fills a new generation; the default applies each batch as following
        does."""
        return Rebuilder(self)

    def drop(self, conn: Connection, t: Tables) -> None:
        for table in self.table_names:
            conn.execute(f"DROP TABLE IF EXISTS {t(table)}")


class Rebuilder:
    """Fills one new generation during a rebuild, batch by batch, inside the runner's
    transactions (each batch commits with the generation's position, as when following).

    Nobody reads or writes the generation until it is swapped in, so a view may do better
    than :meth:`View.apply`: carry per-run state in memory between batches, or append rows
    without conflict handling and settle duplicates once in :meth:`finish`. The events after
    the last full batch are applied with :meth:`View.apply`, on the finished tables, in the
    transaction that swaps them in.
    """

    #: Also hold back the generation's ``CREATE UNIQUE INDEX`` statements until
    #: :meth:`finish` has run (for a rebuilder that appends rows without conflict handling).
    defer_unique: ClassVar[bool] = False

    def __init__(self, view: View) -> None:
        self.view = view

    def apply(self, conn: Connection, t: Tables, events: list[EventRecord]) -> None:
        self.view.apply(conn, t, events)

    def flush(self, conn: Connection, t: Tables) -> None:
        """After the last batch of a fill (of each part's fill), in a transaction of its own:
        write what is still held in memory."""

    def finish(self, conn: Connection, t: Tables, table: str, *, parts: int = 1) -> None:
        """After the last batch, before the held-back indexes of ``t(table)`` are built (in
        autocommit; tables may be finished at the same time on other connections); ``parts``
        processes filled the tables."""


#: A view's fold for :class:`CarryingRebuilder`: folds a batch into the tables given the per-run
#: state already known, and returns the state of the runs the batch touched, leaving their
#: per-run rows to a :data:`WriteStates`.
Fold = Callable[[Connection, "Tables", list[EventRecord], "Carry"], dict[str, Any]]
#: Writes the per-run rows of these runs' states (inserting or replacing: a run that left the
#: carry and came back is written again).
WriteStates = Callable[[Connection, "Tables", dict[str, Any]], None]


class CarryingRebuilder(Rebuilder):
    """Keeps the per-run state of recently touched runs between batches (at most ``size``
    runs) instead of reading it back from the tables, and writes a run's rows when it leaves
    the carry or the fill ends (:meth:`flush`): once per run, not once per batch it spans.

    So a batch's position may commit before the rows of the runs it touched. Nothing is lost
    by that: a generation is read only once it is swapped in, after the flush, and a rebuild
    that does not finish is never resumed (the next one starts again from event 0)."""

    def __init__(self, view: View, fold: Fold, write: WriteStates, size: int) -> None:
        super().__init__(view)
        self.fold = fold
        self.write = write
        self.carry = Carry(size)

    def apply(self, conn: Connection, t: Tables, events: list[EventRecord]) -> None:
        left = self.carry.keep(self.fold(conn, t, events, self.carry))
        if left:
            self.write(conn, t, left)

    def flush(self, conn: Connection, t: Tables) -> None:
        if self.carry:
            self.write(conn, t, dict(self.carry))
            self.carry.clear()


class Recent:
    """The keys seen lately, at least the last ``size`` of them and at most about twice as
    many: two generations of a set, the older one dropped when the newer fills up. Bounded
    memory, so a key it has forgotten may come back: callers settle those repeats in SQL."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.new: set[Any] = set()
        self.old: set[Any] = set()

    def fresh(self, rows: list[Any], key: Callable[[Any], Any] | None = None) -> list[Any]:
        """The ``rows`` whose keys (``key(row)``, or the row) it has not seen, remembered from
        now on. ``rows`` must not repeat a key."""
        new, old = self.new, self.old
        keys = rows if key is None else list(map(key, rows))
        fresh = [k not in new and k not in old for k in keys]
        kept = list(itertools.compress(rows, fresh))
        new.update(itertools.compress(keys, fresh))
        if len(new) >= self.size:
            self.old, self.new = new, set()
        return kept


class Carry(dict[str, Any]):
    """Per-run state carried between a rebuild's batches, at most ``size`` runs: the ones
    touched longest ago are forgotten (and reloaded from the tables if they come back)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def keep(self, touched: dict[str, Any]) -> dict[str, Any]:
        """Remember ``touched`` as the newest; forget the oldest beyond ``size`` and return
        them."""
        for key, value in touched.items():
            self.pop(key, None)
            self[key] = value
        excess = len(self) - self.size
        if excess <= 0:
            return {}
        return {key: self.pop(key) for key in list(itertools.islice(iter(self), excess))}


def runs_to_read(events: list[EventRecord]) -> set[str]:
    """The runs whose state a fold of ``events`` must start from: those with events after
    their trigger, less those triggered in ``events`` (a run's stream starts with its
    trigger, so nothing of theirs is stored yet)."""
    later, triggered = set(), set()
    for event in events:
        match event.type:
            case "Run.Triggered":
                triggered.add(event.stream)
            case other if other.startswith("Run."):
                later.add(event.stream)
            case _:
                pass
    return later - triggered


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def chunks(items: list[Any], size: int = 500) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def placeholders(count: int) -> str:
    return ",".join("?" * count)
