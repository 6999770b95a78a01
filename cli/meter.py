"""A progress bar for the long commands (``export``, ``verify``, ``verify-bundle``): rich's, on
stderr, only when stderr is a terminal. Piped or redirected, nothing is drawn; stdout never
carries it either way (it holds the command's result alone).

:func:`meter` gives the ``progress(done, total)`` callback the integrity functions take.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: What the integrity functions call: ``progress(done, total)``.
Progress = Callable[[int, int], None]


def _ignore(done: int, total: int) -> None:
    return None


@contextmanager
def meter(description: str) -> Iterator[Progress]:
    """A bar on stderr while the block runs (nothing when stderr is not a terminal); the log
    lines written meanwhile are printed above it."""
    if not sys.stderr.isatty():
        yield _ignore
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import (
        Progress as Bar,
    )

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("events"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Bar(*columns, console=Console(file=sys.stderr), redirect_stdout=False, redirect_stderr=True) as bar:
        task = bar.add_task(description, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        yield progress
