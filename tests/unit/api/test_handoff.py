"""The fast path's hand-off of blocking calls to worker threads (``api/handoff.py``)."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from api.handoff import Handoff

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def test_a_call_runs_in_a_worker_thread_in_the_caller_s_context_and_its_result_comes_back() -> None:
    handoff = Handoff(4, name="test")

    def call() -> tuple[str, str]:
        return threading.current_thread().name, request_id.get()

    async def main() -> tuple[str, str]:
        request_id.set("req-1")
        return await handoff.run(call)

    try:
        thread, seen = asyncio.run(main())
    finally:
        handoff.shutdown()
    assert thread.startswith("test-") and thread != threading.current_thread().name
    assert seen == "req-1"


def test_an_exception_of_the_call_is_raised_to_the_caller() -> None:
    handoff = Handoff(2, name="test")

    def call() -> None:
        raise LookupError("no such run")

    try:
        with pytest.raises(LookupError, match="no such run"):
            asyncio.run(handoff.run(call))
    finally:
        handoff.shutdown()


def test_calls_that_block_run_side_by_side_up_to_the_thread_limit() -> None:
    """Calls waiting on each other (as writers sharing a group commit do) all get a thread;
    threads are started only as calls need them and never more than the limit."""
    handoff = Handoff(3, name="test")
    barrier = threading.Barrier(3, timeout=10)

    async def main() -> list[int]:
        return list(await asyncio.gather(*(handoff.run(barrier.wait) for _ in range(3))))

    try:
        assert sorted(asyncio.run(main())) == [0, 1, 2]
        assert len(handoff._threads) == 3
        assert asyncio.run(main())  # again: the same three threads take the calls
        assert len(handoff._threads) == 3
    finally:
        handoff.shutdown()
