"""How the client commands print: ``--json`` as JSON, otherwise aligned rich tables with a
header on a terminal (tab-separated rows with a header line when piped), dates as
``YYYY-MM-DD HH:MM:SS`` UTC, durations as ``1.2 s`` / ``3 m 04 s`` / ``1 h 02 m``. Data goes to
stdout, progress and messages to stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel


def plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def print_json(value: Any, *, lines: bool = False) -> None:
    if lines and isinstance(value, list):
        for item in value:
            sys.stdout.write(json.dumps(plain(item)) + "\n")
    else:
        sys.stdout.write(json.dumps(plain(value), indent=2) + "\n")
    sys.stdout.flush()


def when(text: str | None) -> str:
    """``2026-12-03T10:04:01.123456Z`` -> ``2026-12-03 10:04:01``."""
    if not text:
        return "-"
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return text
    return at.strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} m {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} m"


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None) -> None:
    """Aligned with a header on a terminal; tab-separated (header first) when piped."""
    rows = [[cell(v) for v in row] for row in rows]
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        grid = Table(*headers, title=title, box=None, header_style="bold", pad_edge=False)
        for row in rows:
            grid.add_row(*row)
        Console().print(grid)
        return
    sys.stdout.write("\t".join(headers) + "\n")
    for row in rows:
        sys.stdout.write("\t".join(row) + "\n")
    sys.stdout.flush()


def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
