"""A checked ``q`` tree -> one parameterised SQL condition over the summaries view.

Field names come from the fixed table of :data:`~projections.search.ast.COLUMNS` (never from
the user's text), and every value is a bound ``?`` parameter. Columns are compared in place
(their B-tree indexes serve ``=``, ranges and ``IN``); ``param.``, ``label.`` and ``output.``
fields are ``EXISTS (SELECT 1 FROM <fields> f WHERE f.run_id = <run>.run_id AND f.name = ?
AND f.value_... ?)`` over the view's fields table: a correlated probe of its ``(run_id, name,
value_text, value_num)`` index (named with ``INDEXED BY`` on SQLite, whose planner would
otherwise scan the field's ``(name, value_num)`` rows for each run), so a page walking the
runs newest first (by the time index) tests each run in place and stops after ``limit``
matches. On PostgreSQL a page's subqueries carry ``OFFSET 0``, which keeps each a per-run
probe: its planner would otherwise turn a top-level ``EXISTS`` into a semi-join that reads
every run the field matches and sorts them (measured at 100,000 runs: 10,001 rows read and
110-330 ms for ``param.max_urls > 90`` in a time window, against 550 rows and 2-23 ms), or
hash them all first under ``OR`` and ``NOT``; a stats selection (no limit) keeps the join.
``prefix`` names the outer runs table (``r.``): a correlated subquery needs it.

The same answers on both backends: text is compared byte by byte (``COLLATE "C"`` on
PostgreSQL, SQLite's own order), ``LIKE`` is case-sensitive (``GLOB`` with the pattern
translated on SQLite, ``LIKE ... ESCAPE ''`` on PostgreSQL), and a comparison with a missing
value is false rather than NULL, so ``NOT`` is plain negation (see :mod:`.ast`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from projections.search.ast import And, Compare, Expr, Field, In, IsNull, Like, Not, Or, Value

_SQL_OP = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


@dataclass
class Condition:
    """A SQL condition and its parameters, in order."""

    sql: str
    args: list[Any] = field(default_factory=list)


def like_to_glob(pattern: str) -> str:
    """A ``LIKE`` pattern (``%``, ``_``) as the SQLite ``GLOB`` pattern that matches the same
    strings, case-sensitively: GLOB's own wildcards are bracketed to stand for themselves."""
    out = []
    for char in pattern:
        if char == "%":
            out.append("*")
        elif char == "_":
            out.append("?")
        elif char in "*?[":
            out.append(f"[{char}]")
        else:
            out.append(char)
    return "".join(out)


class _Compiler:
    def __init__(self, *, postgres: bool, prefix: str, fields_table: str, paged: bool) -> None:
        self.postgres = postgres
        self.paged = paged
        self.prefix = prefix
        self.fields = fields_table
        self.args: list[Any] = []
        self.top = True

    def expr(self, node: Expr, top: bool = True) -> str:
        """``node`` as SQL; ``top`` while it is one of the condition's top-level ANDs."""
        match node:
            case And(items):
                return "(" + " AND ".join(self.expr(i, top) for i in items) + ")"
            case Or(items):
                return "(" + " OR ".join(self.expr(i, False) for i in items) + ")"
            case Not(item):
                return f"(NOT {self.expr(item, top and not isinstance(item, And | Or | Not))})"
            case Compare() | In() | Like() | IsNull() if node.field.is_attr:
                self.top = top
                return self.attr(node)
            case Compare(f, op, value):
                return self.guard(f, f"{self.text(f, op)} {_SQL_OP[op]} {self.arg(value)}")
            case In(f, values, negated):
                marks = ", ".join(self.arg(v) for v in values)
                return self.guard(f, f"{self.column(f)} {'NOT IN' if negated else 'IN'} ({marks})")
            case Like(f, pattern, negated):
                test = self.like(self.column(f), pattern)
                return self.guard(f, f"NOT ({test})" if negated else test)
            case IsNull(f, negated):
                return f"{self.column(f)} IS {'NOT ' if negated else ''}NULL"
        raise AssertionError(node)  # pragma: no cover - every node is matched above

    # ---- columns ------------------------------------------------------------------------
    def column(self, f: Field) -> str:
        return f"{self.prefix}{f.name}"

    def text(self, f: Field, op: str) -> str:
        """The column as an ordered comparison reads it: byte order on PostgreSQL too."""
        if self.postgres and f.type != "number" and op not in ("=", "!="):
            return f'{self.column(f)} COLLATE "C"'
        return self.column(f)

    def guard(self, f: Field, test: str) -> str:
        """``test``, false (not NULL) where a nullable column is NULL."""
        return f"({self.column(f)} IS NOT NULL AND {test})" if f.nullable else test

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return "?"

    def like(self, column: str, pattern: str) -> str:
        if self.postgres:
            return f"{column} LIKE {self.arg(pattern)} ESCAPE ''"
        return f"{column} GLOB {self.arg(like_to_glob(pattern))}"

    # ---- param., label., output. ----------------------------------------------------------
    def has(self, name: str, test: str | None = None) -> str:
        """Whether the run has a field row named by the ``name`` mark (passing ``test``)."""
        where = f"f.run_id = {self.prefix}run_id AND f.name = {name}{f' AND {test}' if test else ''}"
        if not self.postgres:  # the run's own rows, not every run's rows of that field
            return f"EXISTS (SELECT 1 FROM {self.fields} f INDEXED BY {self.fields}_by_run WHERE {where})"
        # OFFSET 0 keeps PostgreSQL from hashing every run the field matches first (a
        # semi-join, or a hashed SubPlan under OR and NOT): each run walked is probed in
        # place, and a page stops early. Without a limit (stats), a top-level test may join.
        fence = "" if self.top and not self.paged else " OFFSET 0"
        return f"EXISTS (SELECT 1 FROM {self.fields} f WHERE {where}{fence})"

    def attr(self, node: Compare | In | Like | IsNull) -> str:
        name = self.arg(node.field.name)
        match node:
            case IsNull(_, negated):
                return self.has(name) if negated else f"NOT {self.has(name)}"
            case Compare(_, op, value):
                column = "f.value_num" if isinstance(value, float) else self.text_of("f.value_text", op)
                test = f"{column} {_SQL_OP[op]} {self.arg(value)}"
            case In(_, values, negated):
                if negated:  # it has the field, and its value is none of them
                    name_again = self.arg(node.field.name)
                    return f"({self.has(name)} AND NOT {self.has(name_again, self.attr_in(values))})"
                test = self.attr_in(values)
            case Like(_, pattern, negated):
                like = self.like("f.value_text", pattern)
                test = f"NOT ({like})" if negated else like
        return self.has(name, test)

    def text_of(self, column: str, op: str) -> str:
        return f'{column} COLLATE "C"' if self.postgres and op not in ("=", "!=") else column

    def attr_in(self, values: tuple[Value, ...]) -> str:
        texts = [v for v in values if isinstance(v, str)]
        numbers = [v for v in values if isinstance(v, float)]
        parts = []
        if texts:
            parts.append(f"f.value_text IN ({', '.join(self.arg(v) for v in texts)})")
        if numbers:
            parts.append(f"f.value_num IN ({', '.join(self.arg(v) for v in numbers)})")
        return parts[0] if len(parts) == 1 else f"({' OR '.join(parts)})"


def compile_expr(
    expr: Expr, *, postgres: bool, prefix: str, fields_table: str, paged: bool = True
) -> Condition:
    """``expr`` as SQL over the runs table (columns named ``<prefix><column>``), for a page
    walked in time order (``paged``) or for a whole selection (stats)."""
    compiler = _Compiler(postgres=postgres, prefix=prefix, fields_table=fields_table, paged=paged)
    sql = compiler.expr(expr)
    return Condition(sql, compiler.args)
