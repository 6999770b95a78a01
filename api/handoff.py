"""Blocking calls handed from the event loop to worker threads, with one future per call.

``loop.run_in_executor`` makes two futures per call (a ``concurrent.futures.Future`` with its
condition variable, and the asyncio future chained to it by callbacks on both sides): on the
ingest fast path that hand-off was about a tenth of an API process's CPU per request
(``bench/README.md``). :class:`Handoff` puts the call on a queue its threads take from, and
the thread that ran it settles the caller's asyncio future on the loop directly (one
``call_soon_threadsafe``). The call runs in the caller's ``contextvars`` context, as with
``run_in_executor(None, context.run, ...)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Item = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", contextvars.Context, Callable[[], Any]]


class Handoff:
    """Up to ``threads`` daemon threads, started as calls need them (a thread waits for the
    next call once it is done; none is kept busy when nothing is asked)."""

    def __init__(self, threads: int, *, name: str) -> None:
        self.limit = threads
        self.name = name
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._spare = 0

    async def run(self, call: Callable[[], T]) -> T:
        """``call()`` in a worker thread, in the current context; its result or its exception."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._submit((loop, future, contextvars.copy_context(), call))
        return await future

    def _submit(self, item: _Item) -> None:
        with self._lock:
            # ``_spare``: threads waiting for a call, less the calls queued for one.
            if self._spare <= 0 and len(self._threads) < self.limit:
                thread = threading.Thread(
                    target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()  # it takes this call (or another thread, done meanwhile, does)
                self._spare += 1
            self._spare -= 1
        self._queue.put(item)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            loop, future, context, call = item
            try:
                result = context.run(call)
            except BaseException as exc:  # the caller's to handle, as with an executor
                _settle_soon(loop, future, None, exc)
            else:
                _settle_soon(loop, future, result, None)
            del item, future, call, context
            with self._lock:
                self._spare += 1

    def shutdown(self) -> None:
        """Let every thread finish the call it holds and stop."""
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join(timeout=30)


def _settle_soon(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], result: Any, exc: BaseException | None
) -> None:
    with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits for it
        loop.call_soon_threadsafe(_settle, future, result, exc)


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.cancelled():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
