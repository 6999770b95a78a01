"""``{{ params.X }}`` and ``{{ tasks.T.outputs.Y }}`` inside argv items.

Substitution is plain text replacement inside one argv item: the result is passed to
``exec`` as that one item, never to a shell, so a value like ``x; rm -rf /`` or
``$(touch pwned)`` reaches the program literally.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ledger.domain.definition import TEMPLATE_REF_RE

TEMPLATE_RE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


class TemplateError(ValueError):
    """A template names a value that does not exist (yet)."""


def as_text(value: Any) -> str:
    """How a parameter or output value is written into argv and the environment."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_item(item: str, params: Mapping[str, Any], task_outputs: Mapping[str, Mapping[str, Any]]) -> str:
    def substitute(match: re.Match[str]) -> str:
        ref = TEMPLATE_REF_RE.match(match.group(1))
        if ref is None:
            raise TemplateError(f"unknown template {match.group(0)}")
        if ref["param"]:
            if ref["param"] not in params:
                raise TemplateError(f"unknown parameter {ref['param']!r}")
            return as_text(params[ref["param"]])
        outputs = task_outputs.get(ref["task"])
        if outputs is None or ref["output"] not in outputs:
            raise TemplateError(f"task {ref['task']!r} set no output variable {ref['output']!r}")
        return as_text(outputs[ref["output"]])

    return TEMPLATE_RE.sub(substitute, item)


def render_command(
    command: list[str], params: Mapping[str, Any], task_outputs: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    return [render_item(item, params, task_outputs) for item in command]


def referenced_params(command: list[str]) -> set[str]:
    names: set[str] = set()
    for item in command:
        for inner in TEMPLATE_RE.findall(item):
            ref = TEMPLATE_REF_RE.match(inner)
            if ref is not None and ref["param"]:
                names.add(ref["param"])
    return names


def parameter_env(params: Mapping[str, Any]) -> dict[str, str]:
    """``PARAM_<NAME>`` (upper-cased) for every parameter."""
    return {f"PARAM_{name.upper()}": as_text(value) for name, value in params.items()}


def parse_output_vars(text: str) -> dict[str, str]:
    """``key=value`` lines; blank lines and ``#`` comments are ignored, the last value wins."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or "=" not in stripped:
            continue
        key, value = stripped.split("=", 1)
        key = key.strip()
        if key:
            values[key[:200]] = value.strip()
    return values
