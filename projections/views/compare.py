"""The comparison of two runs (``GET /api/runs/compare``): parameter differences, definition
equality and per-task differences, folded from each run's own events.

Output variables are the text a task wrote (``key=value`` lines), so they are kept as strings;
where both sides read as decimal numbers they are compared as numbers (``"7"`` equals
``"7.0"``) and the difference ``b - a`` is reported.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from ledger.sensitive import masked
from ledger.store.event_record import EventRecord
from projections.views.rundetail import is_expunged, tasks_of

#: A decimal number as a task would print one (no ``nan``, ``inf`` or ``1_000``), at most
#: 40 digits with a two-digit exponent: what a task writes can never make a delta overflow.
NUMBER_RE = re.compile(
    r"^\s*[-+]?(?=[\d.]{1,41}(?:[eE]|\s*$))(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d{1,2})?\s*$"
)


def as_number(value: Any) -> Decimal | None:
    """``value`` as an exact decimal when it is a number or text that reads as one."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    if isinstance(value, str) and NUMBER_RE.match(value):
        return Decimal(value.strip())
    return None


def _plain(number: Decimal) -> int | float:
    integral = number == number.to_integral_value() and abs(number) <= 2**53
    return int(number) if integral else float(number)


def compare_values(a: Any, b: Any) -> dict[str, Any]:
    """One output variable on both sides: equal as numbers where both read as numbers (with
    ``delta`` = b - a), else as they were written."""
    na, nb = as_number(a), as_number(b)
    if na is not None and nb is not None:
        return {"a": a, "b": b, "numeric": True, "equal": na == nb, "delta": _plain(nb - na)}
    return {"a": a, "b": b, "numeric": False, "equal": a == b, "delta": None}


def compare_output_vars(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {key: compare_values(a.get(key), b.get(key)) for key in sorted(set(a) | set(b))}


def _task_facts(task: dict[str, Any] | None) -> dict[str, Any] | None:
    if task is None:
        return None
    last = task["attempts"][-1] if task["attempts"] else {}
    return {
        "status": task["status"],
        "exit_code": last.get("exit_code"),
        "duration_seconds": last.get("duration_seconds"),
        "inputs": {f.get("path"): f.get("sha256") for f in last.get("inputs") or []},
        "outputs": {f.get("path"): f.get("sha256") for f in last.get("outputs") or []},
        "output_vars": last.get("output_vars") or {},
    }


def compare(a: Sequence[EventRecord], b: Sequence[EventRecord]) -> dict[str, Any]:
    """Parameter differences, definition equality and per-task differences of two runs."""
    ta, tb = a[0].data, b[0].data
    # Sensitive values stay sealed: shown (and compared) as "[sensitive]" ("[erased]" once expunged).
    pa, pb = (
        masked(ta.get("parameters") or {}, erased=is_expunged(a)),
        masked(tb.get("parameters") or {}, erased=is_expunged(b)),
    )
    parameters = {
        name: {"a": pa.get(name), "b": pb.get(name)}
        for name in sorted(set(pa) | set(pb))
        if pa.get(name) != pb.get(name)
    }
    tasks_a = {t["name"]: t for t in tasks_of(a)}
    tasks_b = {t["name"]: t for t in tasks_of(b)}
    tasks = []
    for name in list(dict.fromkeys([*tasks_a, *tasks_b])):
        fa, fb = _task_facts(tasks_a.get(name)), _task_facts(tasks_b.get(name))
        differences = ["presence"]
        entry: dict[str, Any] = {"task": name, "a": fa, "b": fb}
        if fa is not None and fb is not None:
            variables = compare_output_vars(fa["output_vars"], fb["output_vars"])
            differences = [key for key in fa if key != "output_vars" and fa[key] != fb[key]]
            if not all(v["equal"] for v in variables.values()):
                differences.append("output_vars")
            entry["output_vars"] = variables
        tasks.append(entry | {"differences": differences, "same": not differences})
    return {
        "a": a[0].stream,
        "b": b[0].stream,
        "definition_hash_a": ta.get("definition_hash"),
        "definition_hash_b": tb.get("definition_hash"),
        "definition_hash_equal": ta.get("definition_hash") == tb.get("definition_hash"),
        "parameters": parameters,
        "tasks": tasks,
    }
