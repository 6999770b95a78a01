"""What any input must be before the ledger takes it: JSON and YAML decoded with bounds.

Every string the ledger stores ends up in views, logs, file names and task arguments, so a
decoded value is refused (:class:`~ledger.errors.InvalidRequest`, a 422) when it holds

- a NUL character (``"\\u0000"``: PostgreSQL text cannot hold it, a process argument neither),
- a lone surrogate (``"\\ud800"``: no UTF-8 encoding exists, so it could never be stored),
- nesting deeper than :data:`MAX_DEPTH` objects and arrays.

YAML is read without aliases and anchors (a few hundred bytes of ``&a [*a, *a, ...]`` expand
into billions of nodes) and with the same depth bound while it is composed.
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml

from ledger.errors import InvalidRequest

#: The deepest nesting of objects and arrays accepted anywhere (a definition, a facet, a body).
MAX_DEPTH = 64


class InputRefused(InvalidRequest):
    """A decoded value the ledger will not take (see the module docstring)."""

    title = "Invalid input"


def _refuse_text(text: str, where: str) -> None:
    if "\x00" in text:
        raise InputRefused(f"{where}: NUL characters (\\u0000) are not accepted")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputRefused(f"{where}: lone surrogates (\\ud800-\\udfff) are not accepted") from None


def check_value(value: Any, where: str = "body") -> None:
    """Refuse ``value`` (decoded JSON or YAML) holding NUL, a lone surrogate, or nesting past
    :data:`MAX_DEPTH`. Iterative: no input can exhaust the stack."""
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            _refuse_text(item, path)
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise InputRefused(f"{path}: nested deeper than {MAX_DEPTH} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    if isinstance(key, str):
                        _refuse_text(key, f"{path} (a key)")
                    stack.append((child, f"{path}.{key}", depth + 1))
            else:
                stack.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(item))


def loads_json(data: bytes | str, where: str = "body") -> Any:
    """Strict JSON (UTF-8, no NaN, no lone surrogate escapes), then :func:`check_value`.
    Malformed JSON raises :class:`orjson.JSONDecodeError` (a ``ValueError``)."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):  # orjson's own bound, 1024
            raise InputRefused(f"{where}: nested deeper than {MAX_DEPTH} levels") from None
        raise
    if not _plainly_bounded(data):
        check_value(value, where)
    return value


def _plainly_bounded(data: bytes | str) -> bool:
    """Whether JSON text is bound to decode into a value :func:`check_value` accepts, without
    walking it: a NUL or a lone surrogate can only come from a ``\\u`` escape (strict JSON
    has no raw control characters, and orjson takes only valid UTF-8), and a text with at
    most :data:`MAX_DEPTH` ``{`` and ``[`` in all cannot nest deeper. (Most request bodies:
    the walk was a fifth of the ingest fast path's parsing.)"""
    if isinstance(data, str):
        return "\\u" not in data and data.count("{") + data.count("[") <= MAX_DEPTH
    return b"\\u" not in data and data.count(b"{") + data.count(b"[") <= MAX_DEPTH


class BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` refusing aliases and anchors, and nesting past :data:`MAX_DEPTH`."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[no-untyped-call]  # (untyped in types-PyYAML)
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases and anchors (&name, *name) are not accepted", event.start_mark
            )
        collection = isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent)
        self._depth += collection
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= collection


def load_yaml(text: str) -> Any:
    """YAML (a superset of JSON) through :class:`BoundedLoader`. Raises ``yaml.YAMLError``."""
    return yaml.load(text, Loader=BoundedLoader)  # a SafeLoader subclass
