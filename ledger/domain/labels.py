"""Run labels (SPEC section 8): which keys and values a run may carry, and what a change does.

A label is a short ``key: value`` string pair set at trigger or later (``Run.Labelled``).
Keys are ``[a-z0-9_.\\-/]{1,63}``, values strings of at most 256 characters, and a run
carries at most 64 labels.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ledger.errors import InvalidRequest

KEY_PATTERN = re.compile(r"[a-z0-9_.\-/]{1,63}")
MAX_VALUE_LENGTH = 256
MAX_LABELS = 64


def check_key(key: object) -> str:
    if not isinstance(key, str) or KEY_PATTERN.fullmatch(key) is None:
        raise InvalidRequest(f"label key {key!r} is not [a-z0-9_.-/]{{1,63}}")
    return key


def check_labels(labels: Mapping[str, object]) -> dict[str, str]:
    """``labels`` as they will be stored, or :class:`InvalidRequest` naming the first bad one."""
    if len(labels) > MAX_LABELS:
        raise InvalidRequest(f"a run carries at most {MAX_LABELS} labels, not {len(labels)}")
    checked: dict[str, str] = {}
    for key, value in labels.items():
        check_key(key)
        if not isinstance(value, str):
            raise InvalidRequest(f"label {key!r}: the value must be a string")
        if len(value) > MAX_VALUE_LENGTH:
            raise InvalidRequest(f"label {key!r}: the value is longer than {MAX_VALUE_LENGTH} characters")
        checked[key] = value
    return checked


def changed_labels(
    current: Mapping[str, str], set_: Mapping[str, object], remove: Iterable[object]
) -> tuple[dict[str, str], list[str]]:
    """The ``set`` and ``remove`` of a label change, checked against the run's labels now:
    a key both set and removed, no change at all, or more than :data:`MAX_LABELS` after it
    are refused. Removing a key the run does not carry is allowed (and recorded)."""
    to_set = check_labels(set_)
    to_remove = sorted({check_key(key) for key in remove})
    both = sorted(set(to_set) & set(to_remove))
    if both:
        raise InvalidRequest(f"label {both[0]!r} is both set and removed")
    if not to_set and not to_remove:
        raise InvalidRequest("a label change needs at least one key to set or remove")
    after = apply_labels(current, to_set, to_remove)
    if len(after) > MAX_LABELS:
        raise InvalidRequest(f"a run carries at most {MAX_LABELS} labels, not {len(after)}")
    return to_set, to_remove


def apply_labels(
    current: Mapping[str, str], set_: Mapping[str, str], remove: Iterable[str]
) -> dict[str, str]:
    """The labels after a change (the one rule the aggregate and every view follow)."""
    removed = set(remove)
    after = {k: v for k, v in current.items() if k not in removed}
    after.update(set_)
    return dict(sorted(after.items()))
