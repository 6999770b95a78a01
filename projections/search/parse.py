"""``q`` text -> a checked :mod:`projections.search.ast` tree, with lark (LALR).

Every refusal is an :class:`InvalidQuery` naming the 1-based character position of the
problem (in its detail and as the problem document's ``position``): a character no token
starts with, a token where it cannot stand, an unknown field, a value of the wrong type, an
unreadable time or string.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from ledger.errors import InvalidRequest
from ledger.hashing import format_timestamp, parse_timestamp
from projections.search.ast import (
    ATTR_PREFIXES,
    COLUMNS,
    And,
    Compare,
    Expr,
    Field,
    In,
    IsNull,
    Like,
    Not,
    Op,
    Or,
    Value,
)

#: The longest ``q`` taken, and the most comparisons in one (each is a bound parameter or a
#: few, and both backends cap a statement's parameters).
MAX_LENGTH = 4000
MAX_TERMS = 200

GRAMMAR = r"""
start: expr
?expr: and_expr
     | expr _OR and_expr            -> or_
?and_expr: not_expr
     | and_expr _AND not_expr       -> and_
?not_expr: _NOT not_expr            -> not_
     | "(" expr ")"
     | predicate
predicate: FIELD CMP value          -> compare
     | FIELD _IN list               -> in_
     | FIELD _NOT _IN list          -> not_in
     | FIELD _LIKE STRING           -> like
     | FIELD _NOT _LIKE STRING      -> not_like
     | FIELD _IS _NULL              -> is_null
     | FIELD _IS _NOT _NULL         -> is_not_null
list: "(" value ("," value)* ")"
?value: STRING | NUMBER

_OR.2: /OR\b/i
_AND.2: /AND\b/i
_NOT.2: /NOT\b/i
_IN.2: /IN\b/i
_LIKE.2: /LIKE\b/i
_IS.2: /IS\b/i
_NULL.2: /NULL\b/i
CMP: "<=" | ">=" | "!=" | "<>" | "=" | "<" | ">"
FIELD: /[A-Za-z_]+(\.[A-Za-z0-9_.\/-]+)?/
STRING: /"(?:[^"\\]|\\.)*"/
NUMBER: /-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/
%ignore /\s+/
"""


class InvalidQuery(InvalidRequest):
    title = "Invalid search expression"

    def __init__(self, detail: str, position: int) -> None:
        super().__init__(f"q: {detail} at position {position}", extensions={"position": position})
        self.position = position


@cache
def _parser() -> Lark:
    return Lark(GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def parse(text: str) -> Expr:
    """The checked tree of ``text``, or :class:`InvalidQuery`."""
    if len(text) > MAX_LENGTH:
        raise InvalidQuery(f"the expression is longer than {MAX_LENGTH} characters", MAX_LENGTH + 1)
    if not text.strip():
        raise InvalidQuery("an empty expression", 1)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text) from None
    checker = _Check()
    try:
        expr: Expr = checker.transform(tree)
    except VisitError as exc:  # lark wraps what a rule raised
        if isinstance(exc.orig_exc, InvalidQuery):
            raise exc.orig_exc from None
        raise
    if checker.terms > MAX_TERMS:
        raise InvalidQuery(f"more than {MAX_TERMS} comparisons", len(text))
    return expr


def _syntax_error(exc: UnexpectedInput, text: str) -> InvalidQuery:
    if isinstance(exc, UnexpectedEOF):
        return InvalidQuery("the expression ends too early", len(text) + 1)
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        if token.type == "$END":
            return InvalidQuery("the expression ends too early", len(text) + 1)
        expected = ", ".join(sorted(_describe(name) for name in exc.expected))
        return InvalidQuery(f"unexpected {str(token)!r} (expected {expected})", (token.start_pos or 0) + 1)
    if isinstance(exc, UnexpectedCharacters):
        at = exc.pos_in_stream or 0
        return InvalidQuery(f"unexpected character {text[at]!r}", at + 1)
    return InvalidQuery("not a search expression", 1)  # pragma: no cover - lark has no others


_NAMES = {
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "CMP": "a comparison",
    "FIELD": "a field",
    "STRING": "a string",
    "NUMBER": "a number",
}


def _describe(terminal: str) -> str:
    return _NAMES.get(terminal, terminal.strip("_"))


def _position(token: Token) -> int:
    return (token.start_pos or 0) + 1


@v_args(inline=True)
class _Check(Transformer[Token, Any]):
    """The parse tree -> checked nodes (fields known, values of the field's type)."""

    def __init__(self) -> None:
        super().__init__()
        self.terms = 0

    def start(self, expr: Expr) -> Expr:
        return expr

    def or_(self, left: Expr, right: Expr) -> Expr:
        return Or((*(left.items if isinstance(left, Or) else (left,)), right))

    def and_(self, left: Expr, right: Expr) -> Expr:
        return And((*(left.items if isinstance(left, And) else (left,)), right))

    def not_(self, item: Expr) -> Expr:
        return Not(item)

    def list(self, *values: Token) -> tuple[Token, ...]:
        return values

    def compare(self, name: Token, op: Token, value: Token) -> Expr:
        field = _field(name)
        symbol: Op = "!=" if str(op) == "<>" else str(op)  # type: ignore[assignment]
        self.terms += 1
        return Compare(field, symbol, _value(field, value, ordered=symbol not in ("=", "!=")))

    def in_(self, name: Token, values: tuple[Token, ...]) -> Expr:
        return self._in(name, values, negated=False)

    def not_in(self, name: Token, values: tuple[Token, ...]) -> Expr:
        return self._in(name, values, negated=True)

    def _in(self, name: Token, values: tuple[Token, ...], *, negated: bool) -> Expr:
        field = _field(name)
        self.terms += len(values)
        return In(field, tuple(_value(field, v, ordered=False) for v in values), negated)

    def like(self, name: Token, pattern: Token) -> Expr:
        return self._like(name, pattern, negated=False)

    def not_like(self, name: Token, pattern: Token) -> Expr:
        return self._like(name, pattern, negated=True)

    def _like(self, name: Token, pattern: Token, *, negated: bool) -> Expr:
        field = _field(name)
        if field.type == "number":
            raise InvalidQuery(f"{field.name} is a number: LIKE takes text fields", _position(name))
        self.terms += 1
        return Like(field, _string(pattern), negated)

    def is_null(self, name: Token) -> Expr:
        self.terms += 1
        return IsNull(_field(name), negated=False)

    def is_not_null(self, name: Token) -> Expr:
        self.terms += 1
        return IsNull(_field(name), negated=True)


def _field(token: Token) -> Field:
    name = str(token)
    if name in COLUMNS:
        kind, nullable = COLUMNS[name]
        return Field(name, kind, nullable)
    for prefix in ATTR_PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            if prefix == "output." and "." not in name[len(prefix) :].strip("."):
                break
            return Field(name, "attr", True)
    known = ", ".join([*COLUMNS, "param.<name>", "label.<key>", "output.<task>.<key>"])
    raise InvalidQuery(f"unknown field {name!r} (fields: {known})", _position(token))


def _string(token: Token) -> str:
    try:
        value = json.loads(str(token), strict=False)
    except ValueError:
        raise InvalidQuery("an unreadable string (JSON escapes only)", _position(token)) from None
    if not isinstance(value, str):  # pragma: no cover - the terminal is a quoted string
        raise InvalidQuery("not a string", _position(token))
    return value


def _value(field: Field, token: Token, *, ordered: bool) -> Value:
    if token.type == "NUMBER":
        if field.type in ("text", "time"):
            raise InvalidQuery(
                f"{field.name} is {'a time' if field.type == 'time' else 'text'}: "
                "compare it with a string in double quotes",
                _position(token),
            )
        number = float(str(token))
        if number != number or number in (float("inf"), float("-inf")):
            raise InvalidQuery("a number out of range", _position(token))
        return number
    text = _string(token)
    if field.type == "number":
        raise InvalidQuery(f"{field.name} is a number: compare it with a bare number", _position(token))
    if field.type == "time":
        try:
            return format_timestamp(parse_timestamp(text))
        except ValueError:
            raise InvalidQuery(f"{field.name}: {text!r} is not an ISO 8601 time", _position(token)) from None
    return text
