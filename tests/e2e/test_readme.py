"""The README's commands, pasted into a shell on a fresh clone, work.

The test builds a stand-in for a fresh clone (a temporary directory holding links to the
repository's Makefile, pyproject.toml, constraints.txt, examples/ and the installed .venv),
starts the server there with ``make run PORT=<free port>`` as the README says (the one line it
cannot paste, since it blocks), and then runs every other line of the README's ``bash`` blocks,
in order, in one ``bash -euo pipefail`` with no ``RUNLEDGER_*`` variable set and the virtualenv
not on PATH. The only edit is the port: ``127.0.0.1:8000`` becomes the free one.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.builders import eventually
from tests.e2e.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
CLONE_FILES = ("Makefile", "pyproject.toml", "constraints.txt", "examples", ".venv")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
SHELLS = {"bash", "sh", "shell"}
#: Lines the test runs itself rather than in the script: the server, which does not return.
SERVER_LINE = re.compile(r"^make run\b")


def shell_blocks(markdown: str) -> list[str]:
    """The bodies of the fenced blocks tagged bash/sh/shell; an untagged fence is an error, so
    that no command can hide in a block the test does not run."""
    blocks = []
    for language, body in FENCE.findall(markdown):
        assert language, "tag every fenced block in README.md (bash for commands, text otherwise)"
        if language in SHELLS:
            blocks.append(body)
    return blocks


def test_shell_blocks_are_read_from_every_tagged_fence_and_an_untagged_one_is_refused() -> None:
    text = "```bash\necho a\n```\n\n```text\nnot run\n```\n\n```sh\necho b\n```\n"
    assert shell_blocks(text) == ["echo a\n", "echo b\n"]
    with pytest.raises(AssertionError):
        shell_blocks("```\nmake run\n```\n")


def fresh_env(clone: Path) -> dict[str, str]:
    """A login shell's environment: no RUNLEDGER_* settings and no virtualenv on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLEDGER_")}
    env.pop("VIRTUAL_ENV", None)
    venv_bin = str((REPO / ".venv" / "bin").resolve())
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env["HOME"] = str(clone)
    return env


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    assert (REPO / ".venv" / "bin" / "runledger").exists(), "run the suite through make (it builds .venv)"
    root = tmp_path / "runledger"
    root.mkdir()
    for name in CLONE_FILES:
        (root / name).symlink_to(REPO / name)
    return root


@pytest.fixture
def make_run(clone: Path) -> Iterator[tuple[str, Path]]:
    """``make run PORT=...`` in the clone, answering /healthz; stopped with SIGTERM after."""
    port = free_port()
    out = clone / "make-run.out"
    # ``-o .venv/.installed``: never reinstall from inside a test (the clone's .venv is the
    # repository's own); `make test` installed it moments ago.
    with out.open("wb") as stdout:
        process = subprocess.Popen(
            ["make", "-o", ".venv/.installed", "run", f"PORT={port}"],
            cwd=clone,
            env=fresh_env(clone),
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert process.poll() is None, out.read_text()
        try:
            return httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        eventually(healthy, timeout=30.0)
        yield url, out
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_every_readme_command_works_when_pasted_into_a_shell_on_a_fresh_clone(
    clone: Path, make_run: tuple[str, Path]
) -> None:
    url, server_output = make_run
    lines = "".join(shell_blocks(README.read_text())).splitlines()
    server_lines = [line for line in lines if SERVER_LINE.match(line)]
    assert server_lines, "the README starts the server with `make run`"
    script = "\n".join(line for line in lines if not SERVER_LINE.match(line))
    assert "127.0.0.1:8000" in script
    script = script.replace("http://127.0.0.1:8000", url)

    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=clone,
        env=fresh_env(clone),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    # What the blocks promise, seen in their output and in the ledger they wrote to.
    banner = server_output.read_text()
    assert f"runledger is serving at {url}" in banner and f"{url}/docs" in banner
    assert '"definition_hash"' in done.stdout and '"status":"pending"' in done.stdout
    assert "events checked" in done.stdout and ": ok" in done.stdout
    assert "q4.tar: ok, signed by the key in ledger.pub" in done.stdout
    assert (clone / "ledger.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    token = (clone / ".runledger" / "admin-token").read_text().strip()
    runs = httpx.get(
        f"{url}/api/runs", params={"workflow": "pipeline"}, headers={"Authorization": f"Bearer {token}"}
    ).json()["runs"]
    # The curl trigger, `runledger trigger` and `runledger replay`: three runs, with their
    # parameters as the README gave them.
    assert sorted(run["parameters"]["query"] for run in runs) == ["x", "x", "y"]
