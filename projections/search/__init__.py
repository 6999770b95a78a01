"""The ``q`` search language of ``GET /api/runs`` and ``GET /api/stats`` (SPEC section 8).

:mod:`~projections.search.parse` turns the text into a tree of :mod:`~projections.search.ast`
nodes (lark, LALR; errors name the position), checking every field and value;
:mod:`~projections.search.compile` turns the tree into a parameterised SQL condition over
the summaries view (user text only ever reaches SQL as bound parameters).
"""

from projections.search.ast import Expr
from projections.search.compile import Condition, compile_expr
from projections.search.parse import InvalidQuery, parse

__all__ = ["Condition", "Expr", "InvalidQuery", "compile_expr", "parse"]
