"""What the integrity commands tell a person: results on stdout, logs on stderr (readable text
on a terminal, JSON otherwise), which key ``verify-bundle`` trusted, and the public key as a
PEM file for ``curl ... > ledger.pub``."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import threading
from pathlib import Path

import pytest

from tests.e2e.conftest import RUNLEDGER, Server
from tests.e2e.helpers import pipeline, register, trigger

PEM = "application/x-pem-file"


def populate(server: Server) -> None:
    with server.client("admin") as client:
        trigger(client, register(client, pipeline())["name"])


def pem_key(server: Server) -> str:
    with server.client("auditor") as client:
        response = client.get("/api/ledger/public-key", headers={"Accept": PEM})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(PEM)
    return response.text


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_public_key_comes_as_a_pem_file_when_asked_for_and_as_json_otherwise(server: Server) -> None:
    pem = pem_key(server)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----\n") and pem.endswith("-----END PUBLIC KEY-----\n")
    with server.client("auditor") as client:
        body = client.get("/api/ledger/public-key").json()
    assert body["public_key"] == pem and body["algorithm"] == "Ed25519"
    with server.client(None) as anonymous:
        assert anonymous.get("/api/ledger/public-key", headers={"Accept": PEM}).status_code == 401


@pytest.mark.parametrize("backend", ["sqlite"])
def test_verify_bundle_says_which_key_it_trusted_and_warns_without_a_key_of_ones_own(
    server: Server, tmp_path: Path
) -> None:
    populate(server)
    bundle, key = tmp_path / "q4.tar", tmp_path / "ledger.pub"
    exported = server.cli("export", "--out", str(bundle))
    # the run's Run.Triggered and the first admin token's Token.Issued (tokens travel in exports)
    assert exported.stdout == f"exported 2 events of 1 run to {bundle}\n"
    key.write_text(pem_key(server))  # what `curl -H 'Accept: application/x-pem-file' ... > ledger.pub` saves

    trusted = server.cli("verify-bundle", str(bundle), "--public-key", str(key))
    assert trusted.stdout == f"{bundle}: ok, signed by the key in {key}\n"
    assert "warning" not in trusted.stderr

    unanchored = server.cli("verify-bundle", str(bundle))
    assert unanchored.returncode == 0
    assert unanchored.stdout == f"{bundle}: ok, but only against the public key inside the bundle itself\n"
    assert "warning:" in unanchored.stderr and "--public-key" in unanchored.stderr
    assert "/api/ledger/public-key" in unanchored.stderr


@pytest.mark.parametrize("backend", ["sqlite"])
def test_verify_and_export_write_results_to_stdout_and_only_json_logs_to_a_captured_stderr(
    server: Server, tmp_path: Path
) -> None:
    populate(server)
    env = {**server.env, "RUNLEDGER_LOG_FORMAT": "auto"}
    for args in (["verify"], ["export", "--out", str(tmp_path / "b.tar")]):
        done = subprocess.run(
            [RUNLEDGER, *args], env=env, capture_output=True, text=True, timeout=60, check=True
        )
        assert len(done.stdout.splitlines()) == 1, done.stdout  # the result line alone
        logs = [json.loads(line) for line in done.stderr.splitlines()]  # every line a JSON log
        assert logs and all("event" in entry for entry in logs)
    verified = server.cli("verify")
    checked = re.fullmatch(r"(\d+) events checked, tree size \1, root [0-9a-f]{64}: ok\n", verified.stdout)
    assert checked is not None and int(checked[1]) >= 3, verified.stdout  # the run, the token, exports
    as_json = server.cli("verify", "--json")
    assert json.loads(as_json.stdout)["ok"] is True  # stdout holds the report alone
    assert as_json.stderr.splitlines()[-1].endswith(": ok")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_on_a_terminal_verify_logs_readable_text_and_keeps_the_result_on_stdout(server: Server) -> None:
    populate(server)
    env = {**server.env, "RUNLEDGER_LOG_FORMAT": "auto"}
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(
            [RUNLEDGER, "verify"], env=env, stdout=subprocess.PIPE, stderr=terminal, timeout=60, check=True
        )
        os.close(terminal)
        terminal = -1
        shown = _read_all(controller)
    finally:
        if terminal != -1:
            os.close(terminal)
        os.close(controller)
    assert done.stdout.decode().endswith(": ok\n") and b"ledger_verified" not in done.stdout
    shown = re.sub(r"\x1b\[[0-9;]*m", "", shown)  # the console renderer's colours
    assert "ledger_verified" in shown and re.search(r"events_checked=\d+", shown)
    assert '{"' not in shown  # console lines, not JSON


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO once the other side is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def _on_a_terminal(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """``runledger ARGV`` with stderr on a real pty (read as it comes, so a full buffer cannot
    stall it) and stdout on a pipe: its exit code, stdout, and what the terminal showed."""
    controller, terminal = pty.openpty()
    shown: list[str] = []
    reader = threading.Thread(target=lambda: shown.append(_read_all(controller)))
    reader.start()
    try:
        done = subprocess.run(
            [RUNLEDGER, *argv], env=env, stdout=subprocess.PIPE, stderr=terminal, timeout=60, check=False
        )
    finally:
        os.close(terminal)
        reader.join(timeout=10)
        os.close(controller)
    return done.returncode, done.stdout.decode(), "".join(shown)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_export_verify_and_verify_bundle_show_progress_on_a_terminal_and_none_when_piped(
    server: Server, tmp_path: Path
) -> None:
    populate(server)
    env = {**server.env, "RUNLEDGER_LOG_FORMAT": "auto", "TERM": "xterm-256color", "COLUMNS": "120"}
    bundle = tmp_path / "b.tar"
    commands = {
        "exporting": (["export", "--out", str(bundle)], r"(\d+)/\1 events"),  # every position read
        "verifying": (["verify"], r"(\d+)/\1 events"),
        "checking": (["verify-bundle", str(bundle)], r"(\d+)/\1 events"),  # the bundle's events
    }
    for label, (argv, count) in commands.items():
        code, stdout, shown = _on_a_terminal(argv, env)
        assert code == 0, shown
        plain = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", shown)
        assert label in plain and re.search(count, plain), plain  # the bar, finished
        assert "━" in plain  # rich's bar
        assert len(stdout.splitlines()) == 1 and "\x1b" not in stdout and label not in stdout, stdout

        piped = subprocess.run([RUNLEDGER, *argv], env=env, capture_output=True, text=True, timeout=60)
        assert piped.returncode == 0, piped.stderr
        assert piped.stdout == stdout  # the same result, nothing else
        assert label not in piped.stderr and "━" not in piped.stderr and "\x1b" not in piped.stderr
        for line in piped.stderr.splitlines():  # JSON logs (and verify-bundle's key warning) alone
            assert line.startswith("warning: ") or "event" in json.loads(line), line
