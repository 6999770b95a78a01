"""An in-memory evaluator of ``q`` over run summaries: the reference the SQL must agree with.

It reads the checked tree (``projections.search.parse``) and says, for one summary, whether the
expression holds, by the rules of ``projections.search.ast``: a comparison with a value the
run does not have is false; ``NOT`` is plain negation; ``param.``/``label.``/``output.``
values compare as text (strings as they are, other JSON as JSON) with a string and as numbers
(JSON numbers only) with a number; ``LIKE`` is case-sensitive, ``%`` any run, ``_`` one
character.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable
from typing import Any

from ledger.hashing import format_timestamp, parse_timestamp
from projections.search.ast import And, Compare, Expr, Field, In, IsNull, Like, Not, Or

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _attr(summary: dict[str, Any], name: str) -> Any:
    kind, _, rest = name.partition(".")
    if kind == "param":
        return summary["parameters"].get(rest)
    if kind == "label":
        return summary["labels"].get(rest)
    task, _, key = rest.partition(".")
    return summary["outputs"].get(task, {}).get(key)


def _column(summary: dict[str, Any], f: Field) -> Any:
    value = summary[f.name]
    if value is not None and f.type == "time":
        return format_timestamp(parse_timestamp(value))
    if value is not None and f.type == "number":
        return float(value)
    return value


def _like(pattern: str) -> re.Pattern[str]:
    parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.S)


def _typed(raw: Any, wanted: Any, *, attr: bool) -> Any:
    """``raw`` as compared with ``wanted`` (None: no such value to compare)."""
    if raw is None:
        return None
    if not attr:
        return raw
    return _number(raw) if isinstance(wanted, float) else _text(raw)


def holds(expr: Expr, summary: dict[str, Any]) -> bool:
    match expr:
        case And(items):
            return all(holds(i, summary) for i in items)
        case Or(items):
            return any(holds(i, summary) for i in items)
        case Not(item):
            return not holds(item, summary)
    f = expr.field
    raw = _attr(summary, f.name) if f.is_attr else _column(summary, f)
    match expr:
        case IsNull(_, negated):
            return (raw is not None) if negated else (raw is None)
        case Compare(_, op, value):
            mine = _typed(raw, value, attr=f.is_attr)
            return mine is not None and _OPS[op](mine, value)
        case In(_, values, negated):
            if raw is None:
                return False
            member = any(_typed(raw, v, attr=f.is_attr) == v for v in values)
            return not member if negated else member
        case Like(_, pattern, negated):
            if raw is None:
                return False
            match_ = _like(pattern).fullmatch(_text(raw) if f.is_attr else raw) is not None
            return not match_ if negated else match_
    raise AssertionError(expr)
