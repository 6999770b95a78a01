"""A split rebuild that is SIGKILLed leaves nothing behind: its part processes die with it, and
on PostgreSQL a restarted runner marks the view it left ``rebuilding`` as live again (dropping
the half-built tables)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from ledger.service import Ledger
from ledger.settings import Settings
from projections import state as st
from projections.db import connect
from projections.runner import ProjectionRunner, default_views, view_named
from tests.conftest import POSTGRES

#: A parent that spawns a rebuild part process the way a split rebuild does, prints the part's
#: pid, then waits to be killed.
PARENT = """
import multiprocessing, os, sys, time
from concurrent.futures import ProcessPoolExecutor
from projections.fill import die_with_parent

if __name__ == "__main__":
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(1, mp_context=context, initializer=die_with_parent, initargs=(os.getpid(),))
    print(pool.submit(os.getpid).result(), flush=True)
    time.sleep(120)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie waiting for its reaper is gone too
        return stat.read().split(")")[-1].split()[0] != "Z"


def test_a_rebuild_part_process_dies_when_its_parent_is_sigkilled() -> None:
    with subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True) as parent:
        try:
            assert parent.stdout is not None
            child = int(parent.stdout.readline())
            assert alive(child)
        finally:
            parent.send_signal(signal.SIGKILL)
            parent.wait(timeout=10)
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child), "the part outlived the rebuild"


@pytest.mark.parametrize("backend", [POSTGRES], indirect=True)
def test_a_restarted_runner_marks_a_rebuild_that_died_as_not_running(
    ledger: Ledger, settings: Settings
) -> None:
    first = ProjectionRunner(settings)
    first.catch_up()
    first.stop()
    view = view_named(default_views(), "summaries")
    conn = connect(settings)
    try:
        building, _ = st.start_building(conn, view)  # what a rebuild killed mid-fill leaves
        states = {v["name"]: v["state"] for v in st.view_status(conn, default_views())}
        assert states["summaries"] == "rebuilding"
        runner = ProjectionRunner(settings)
        try:
            runner.step()
        finally:
            runner.stop()
        states = {v["name"]: v["state"] for v in st.view_status(conn, default_views())}
        assert states["summaries"] == "live"
        assert st.tables_named(conn, f"{building.prefix}_") == []
        pointer = st.read_pointer(conn, "summaries")
        assert pointer is not None and pointer.building is None
    finally:
        conn.close()
