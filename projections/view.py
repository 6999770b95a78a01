"""What every read model is: a name, a schema version, its tables, and a batch handler.

A view's tables are named ``rl_<name>_v<schema_version>_g<generation>_<table>``: the schema
version is part of the name (a changed schema builds new tables), and the generation lets a
rebuild fill fresh tables while the live ones keep serving.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from ledger.records import EventRecord
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
    """One read model: its DDL, its event handler, and (in the module) its queries."""

    name: ClassVar[str]
    schema_version: ClassVar[int]
    #: Table suffixes, so a generation can be dropped and compared.
    table_names: ClassVar[tuple[str, ...]]

    @abstractmethod
    def create(self, conn: Connection, t: Tables) -> None:
        """Create this generation's tables and indexes (IF NOT EXISTS)."""

    @abstractmethod
    def apply(self, conn: Connection, t: Tables, events: list[EventRecord]) -> None:
        """Fold ``events`` (oldest first) into the tables, inside the caller's transaction.

        Events the view does not care about are simply skipped; the caller still advances
        the view's position past them in the same transaction.
        """

    def drop(self, conn: Connection, t: Tables) -> None:
        for table in self.table_names:
            conn.execute(f"DROP TABLE IF EXISTS {t(table)}")


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def chunks(items: list[Any], size: int = 500) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def placeholders(count: int) -> str:
    return ",".join("?" * count)
