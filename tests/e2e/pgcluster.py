"""A throwaway PostgreSQL 15 cluster of a test's own (``initdb`` into a fresh directory, on a
free port), which the test may stop, start and restart without touching the shared server that
the rest of the suite uses.

PostgreSQL refuses to run as root: when we are root, the cluster's directory is given to the
``postgres`` user and every ``initdb``/``pg_ctl`` runs through ``runuser -u postgres``. When
the cluster cannot be made (no binaries, no such user) the test is skipped, or fails when CI
requires PostgreSQL (``RUNLEDGER_REQUIRE_POSTGRES=1``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_POSTGRES
from tests.e2e.conftest import free_port

BINDIR = Path(os.environ.get("RUNLEDGER_TEST_PG_BINDIR", "/usr/lib/postgresql/15/bin"))
OWNER = "postgres"


def _unavailable(reason: str) -> None:
    if REQUIRE_POSTGRES:
        pytest.fail(f"a throwaway PostgreSQL cluster is required (RUNLEDGER_REQUIRE_POSTGRES=1): {reason}")
    pytest.skip(reason)


@dataclass
class Cluster:
    directory: Path
    port: int
    as_other_user: bool

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60.0) -> None:
        argv = [str(BINDIR / args[0]), *args[1:]]
        if self.as_other_user:
            argv = ["runuser", "-u", OWNER, "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            log = self.directory / "postgres.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise AssertionError(f"{' '.join(args[:2])} exited {done.returncode}: {done.stderr}{tail}")

    def _ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl", action, "-D", str(self.data), "-l", str(self.directory / "postgres.log"),
            "-o", options, "-w", "-t", "30", *extra,
        )  # fmt: skip

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast")

    def restart(self) -> None:
        self._ctl("restart", "-m", "fast")


@contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """A started cluster (trust authentication, user ``postgres``), stopped and removed
    afterwards."""
    if not (BINDIR / "initdb").exists():
        _unavailable(f"no PostgreSQL binaries in {BINDIR}")
    as_other_user = os.geteuid() == 0
    directory = Path(tempfile.mkdtemp(prefix="rl-pgcluster-"))
    try:
        if as_other_user:
            try:
                owner = pwd.getpwnam(OWNER)
            except KeyError:
                _unavailable(f"we are root and there is no {OWNER!r} user to run PostgreSQL as")
            os.chown(directory, owner.pw_uid, owner.pw_gid)
        cluster = Cluster(directory, free_port(), as_other_user)
        initdb = ("initdb", "-D", str(cluster.data), "-U", "postgres", "-A", "trust", "--no-sync")
        cluster._run(*initdb, "-E", "UTF8", "--locale", "C")
        cluster.start()
        try:
            yield cluster
        finally:
            with contextlib.suppress(AssertionError):  # already stopped
                cluster._run("pg_ctl", "stop", "-D", str(cluster.data), "-m", "immediate", "-w")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
