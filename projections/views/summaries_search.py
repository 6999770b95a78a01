"""Which runs of the summaries view a listing or a ``q`` stats query takes, as one SQL shape
both planners can stop early on.

The runs table is ``r``. Without a parameter, label or output equality the runs are walked
newest first by an index that leads with ``(workspace, created_at)`` (or a plain filter's
column), each tested in place, so a page of ``limit`` stops after about ``limit / share``
rows. With one (a plain ``param.``/``label.`` filter, or an equality the whole ``q``
expression needs), that field's rows drive instead: the fields table's primary key
``(name, value_text, created_at, run_id)`` is the page order, and every top-level bound on
``created_at`` is put on those rows too, so a time window is an index range, not a filter
over every run the field matches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from projections.db import Connection
from projections.search import Expr, compile_expr
from projections.search.ast import And, Compare
from projections.view import Tables, placeholders

#: A plain filter's values: one, or several meaning any of them (``status=a&status=b``).
Values = str | Sequence[str]

_BOUNDS = frozenset({"<", "<=", ">", ">=", "="})


def any_of(values: Values | None) -> list[str]:
    if values is None:
        return []
    return [values] if isinstance(values, str) else list(dict.fromkeys(values))


@dataclass
class Selection:
    """``FROM {source} WHERE {where}`` with ``args``; pages follow ``{order}.created_at,
    {order}.run_id`` (``order`` is ``r``, or ``p`` when a field's rows drive)."""

    source: str
    order: str = "r"
    where: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)

    def add(self, condition: str, *args: Any) -> None:
        self.where.append(condition)
        self.args += args

    @property
    def clause(self) -> str:
        return f"WHERE {' AND '.join(self.where)}" if self.where else ""


def split_driver(expr: Expr) -> tuple[Compare | None, Expr | None]:
    """An equality on a ``param.``/``label.``/``output.`` field that the whole expression
    needs (the expression itself, or one of its top-level ANDs), and what is left."""
    items = expr.items if isinstance(expr, And) else (expr,)
    for i, item in enumerate(items):
        if isinstance(item, Compare) and item.field.is_attr and item.op == "=":
            rest = items[:i] + items[i + 1 :]
            return item, None if not rest else rest[0] if len(rest) == 1 else And(rest)
    return None, expr


def time_bounds(expr: Expr | None) -> list[tuple[str, str]]:
    """The ``created_at`` comparisons the whole expression needs, as ``(op, time)``."""
    if expr is None:
        return []
    items = expr.items if isinstance(expr, And) else (expr,)
    return [
        (item.op, str(item.value))
        for item in items
        if isinstance(item, Compare) and item.field.name == "created_at" and item.op in _BOUNDS
    ]


def select_runs(
    conn: Connection,
    t: Tables,
    *,
    workspace: str | None = None,
    columns: Mapping[str, Values | None] | None = None,
    created_after: str | None = None,
    created_before: str | None = None,
    attrs: Sequence[tuple[str, Values | None]] = (),
    expr: Expr | None = None,
    paged: bool = True,
) -> Selection:
    """The runs of ``workspace`` (None: any) whose ``columns`` hold one of their values,
    created in ``[created_after, created_before)`` (view-format times), whose field ``name``
    holds one of ``values`` for each ``(name, values)`` of ``attrs``, and for which ``expr``
    holds; ``paged`` for a page walked in time order (see :func:`compile_expr`)."""
    runs, fields = t("runs"), t("fields")
    chosen = [(name, any_of(values)) for name, values in attrs]
    chosen = [(name, values) for name, values in chosen if values]
    driver: tuple[str, str, list[Any]] | None = None  # (name, value column, values)
    if chosen:
        driver = (chosen[0][0], "value_text", list(chosen[0][1]))
        chosen = chosen[1:]
    elif expr is not None:
        equality, expr = split_driver(expr)
        if equality is not None:
            column = "value_num" if isinstance(equality.value, float) else "value_text"
            driver = (equality.field.name, column, [equality.value])
    selection = Selection(f"{runs} r")
    bounds = time_bounds(expr)
    if driver is not None:
        name, column, values = driver
        selection = Selection(f"{fields} p JOIN {runs} r ON r.run_id = p.run_id", "p")
        selection.add(f"p.name = ? AND p.{column} IN ({placeholders(len(values))})", name, *values)
        for op, value in bounds:  # the window as a range of the driving rows' index
            selection.add(f"p.created_at {op} ?", value)
    if workspace is not None:
        selection.add("r.workspace = ?", workspace)
    for column, wanted in (columns or {}).items():
        among = any_of(wanted)
        if among:
            selection.add(f"r.{column} IN ({placeholders(len(among))})", *among)
    if created_after is not None:
        selection.add(f"{selection.order}.created_at >= ?", created_after)
    if created_before is not None:
        selection.add(f"{selection.order}.created_at < ?", created_before)
    for name, values in chosen:
        selection.add(
            f"r.run_id IN (SELECT run_id FROM {fields} WHERE name = ? "
            f"AND value_text IN ({placeholders(len(values))}))",
            name,
            *values,
        )
    if expr is not None:
        condition = compile_expr(
            expr, postgres=conn.is_postgres, prefix="r.", fields_table=fields, paged=paged
        )
        selection.add(condition.sql, *condition.args)
    return selection
