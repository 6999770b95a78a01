"""What ``workflows.register`` accepts: a definition as a mapping, YAML/JSON text, or a path."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def definition_from(value: Mapping[str, Any] | str | os.PathLike[str]) -> Mapping[str, Any] | str:
    """A mapping as it is; a path (or a string naming an existing file) as its text; other
    text (YAML or JSON) as it is, for the server to parse."""
    if isinstance(value, Mapping):
        return value
    if isinstance(value, os.PathLike) or (
        isinstance(value, str) and "\n" not in value and Path(value).is_file()
    ):
        return Path(value).read_text(encoding="utf-8")
    return value
