"""``serve --workers N``: uvicorn's supervisor of the API processes, pinging them less often.

uvicorn's ``Multiprocess`` wakes every 0.5 s and pings every worker through a pipe (a pickled
message each way, a thread woken in the worker): with two workers that was a third of the
supervisor's Python CPU while ingesting on PostgreSQL (``bench/README.md``), a cost per second
that weighs on every run. :class:`QuietSupervisor` still looks every 0.5 s whether each
worker's process is running (a ``waitpid``, no message), and restarts one that died as uvicorn
does, but pings (the check that a running worker still answers) every :data:`PING_SECONDS`.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from uvicorn.supervisors import Multiprocess

#: How often a running worker is asked whether it still answers (uvicorn: every 0.5 s).
PING_SECONDS = 5.0


class QuietSupervisor(Multiprocess):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._next_ping = 0.0

    def keep_subprocess_alive(self) -> None:
        now = time.monotonic()
        if now < self._next_ping and all(worker.process.is_alive() for worker in self.processes):
            return  # every worker's process runs; the next ping is due later
        self._next_ping = now + PING_SECONDS
        super().keep_subprocess_alive()


def run_workers(app: str, **options: Any) -> None:
    """``uvicorn.run(app, factory=True, workers=N, ...)`` with :class:`QuietSupervisor`."""
    import uvicorn

    config = uvicorn.Config(app, factory=True, **options)
    sock = config.bind_socket()
    with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run
        QuietSupervisor(config, sockets=[sock]).run()
