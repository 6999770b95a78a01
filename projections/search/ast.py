"""The checked tree of a ``q`` expression: what a field is, and the nodes over it.

Two-valued logic throughout: a comparison with a value the run does not have (a NULL column,
a parameter or label it does not carry) is false, and ``NOT`` turns false into true. So
``NOT error = "x"`` holds for a run with no error, and ``error != "x"`` does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: A field's type: text, number, or an ISO 8601 time (kept as text in the view's format, so
#: text order is time order); ``attr`` fields (``param.``, ``label.``, ``output.``) are text
#: or number depending on the value they are compared with.
FieldType = Literal["text", "number", "time", "attr"]
Op = Literal["=", "!=", "<", "<=", ">", ">="]
Value = str | float

#: The summary columns ``q`` can name: their type, and whether the column may be NULL.
COLUMNS: dict[str, tuple[FieldType, bool]] = {
    "status": ("text", False),
    "workflow": ("text", False),
    "version": ("number", True),
    "triggered_by": ("text", True),
    "trigger_kind": ("text", True),
    "created_at": ("time", False),
    "started_at": ("time", True),
    "completed_at": ("time", True),
    "duration_seconds": ("number", True),
    "tasks_failed": ("number", False),
    "retry_count": ("number", False),
    "error": ("text", True),
    "definition_hash": ("text", True),
    "batch_id": ("text", True),
}
#: The prefixes of attribute fields: ``param.<name>``, ``label.<key>``, ``output.<task>.<key>``.
ATTR_PREFIXES = ("param.", "label.", "output.")


@dataclass(frozen=True)
class Field:
    #: The column name, or the attribute's full name (``param.max_urls``).
    name: str
    type: FieldType
    nullable: bool

    @property
    def is_attr(self) -> bool:
        return self.type == "attr"


@dataclass(frozen=True)
class Compare:
    field: Field
    op: Op
    value: Value


@dataclass(frozen=True)
class In:
    field: Field
    values: tuple[Value, ...]
    negated: bool


@dataclass(frozen=True)
class Like:
    """``%`` any run of characters, ``_`` one character; case-sensitive on both backends."""

    field: Field
    pattern: str
    negated: bool


@dataclass(frozen=True)
class IsNull:
    field: Field
    negated: bool


@dataclass(frozen=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    item: Expr


Expr = Compare | In | Like | IsNull | And | Or | Not
