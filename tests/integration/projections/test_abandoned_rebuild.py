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
from tests.conftest import BACKENDS, POSTGRES

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


#: A real rebuild of the summaries view, held in its fill (as if the ledger were big) so that
#: it can be SIGKILLed there: it prints once its tables are started, then waits to be killed.
HELD_REBUILD = """
import sys, time
import projections.rebuild as rebuild
from ledger.settings import Settings
from projections.views import default_views, view_named

def held_fill(*args, **kwargs):
    print("filling", flush=True)
    time.sleep(120)

rebuild.fill_part = held_fill
settings = Settings(database_url=sys.argv[1], data_dir=sys.argv[2])
rebuild.Rebuild(settings, [view_named(default_views(), "summaries")], parts=1).run()
"""


def view_states(settings: Settings) -> dict[str, str]:
    conn = connect(settings)
    try:
        return {v["name"]: v["state"] for v in st.view_status(conn, default_views())}
    finally:
        conn.close()


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_a_sigkilled_rebuild_is_cleared_by_the_next_runner_on_both_backends(
    ledger: Ledger, settings: Settings
) -> None:
    first = ProjectionRunner(settings)
    first.catch_up()
    first.stop()
    argv = [sys.executable, "-c", HELD_REBUILD, settings.database_url, str(settings.data_dir)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as rebuilding:
        try:
            assert rebuilding.stdout is not None
            for line in rebuilding.stdout:  # (its logs come first)
                if line.strip() == "filling":
                    break
            assert view_states(settings)["summaries"] == "rebuilding"
            conn = connect(settings)
            try:
                pointer = st.read_pointer(conn, "summaries")
                assert pointer is not None and pointer.building is not None
                building = pointer.building
                assert st.tables_named(conn, f"{building.prefix}_"), "the half-built tables"
            finally:
                conn.close()
            # While it runs, a second rebuild is refused and a runner leaves it alone.
            with pytest.raises(RuntimeError, match="already running"):
                ProjectionRunner(settings).rebuild("summaries")
            runner = ProjectionRunner(settings)
            try:
                runner.step()
            finally:
                runner.stop()
            assert view_states(settings)["summaries"] == "rebuilding"
        finally:
            rebuilding.send_signal(signal.SIGKILL)
            rebuilding.wait(timeout=10)
    assert view_states(settings)["summaries"] == "rebuilding"  # what the dead rebuild left
    runner = ProjectionRunner(settings)
    try:
        deadline = time.monotonic() + 10  # on PostgreSQL its session ends a moment later
        while True:
            runner.step()
            if view_states(settings)["summaries"] == "live" or time.monotonic() > deadline:
                break
            runner._reset_connections()  # a new connection, as a restarted runner has
            time.sleep(0.1)
    finally:
        runner.stop()
    assert view_states(settings)["summaries"] == "live"
    conn = connect(settings)
    try:
        pointer = st.read_pointer(conn, "summaries")
        assert pointer is not None and pointer.building is None
        assert st.tables_named(conn, f"{building.prefix}_") == []
    finally:
        conn.close()
    ProjectionRunner(settings).rebuild("summaries")  # and the next rebuild goes through
