"""What ``runledger serve`` says when it starts: its URL and the docs URL, once, on the port
``RUNLEDGER_PORT`` names when ``--port`` is not given; each background part logged once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from cli.serve import banner
from tests.builders import eventually
from tests.e2e.conftest import RUNLEDGER, free_port


def test_serve_listens_on_runledger_port_and_prints_its_urls_once_and_logs_each_part_once(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "RUNLEDGER_DATABASE_URL": f"sqlite:///{tmp_path}/ledger.db",
        "RUNLEDGER_PORT": str(port),
        "RUNLEDGER_LOG_FORMAT": "json",
    }
    out, err = tmp_path / "serve.out", tmp_path / "serve.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [RUNLEDGER, "serve", "--no-executor"], env=env, stdout=stdout, stderr=stderr, cwd=tmp_path
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def listening() -> bool:
            assert process.poll() is None, err.read_text()
            try:
                return httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        eventually(listening, timeout=30.0)
        eventually(lambda: "API docs" in out.read_text())
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    printed = out.read_text()
    assert printed.count(f"runledger is serving at {url}\n") == 1
    assert printed.count(f"  API docs: {url}/docs\n") == 1
    assert printed.count(f"  web UI:   {url}/\n") == 1  # api.ui serves the UI at /
    events = [json.loads(line)["event"] for line in err.read_text().splitlines()]
    assert events.count("projection_runner_started") == 1
    assert events.count("server_starting") == 1


def test_the_banner_names_the_ui_only_when_the_app_serves_a_page_at_the_root() -> None:
    from fastapi import FastAPI

    app = FastAPI()
    assert banner("http://h:1", app) == "runledger is serving at http://h:1\n  API docs: http://h:1/docs"
    app.get("/")(lambda: {})
    assert banner("http://h:1", app).endswith("\n  web UI:   http://h:1/")


@pytest.mark.parametrize("port", ["x", "70000", "-1"])
def test_a_runledger_port_that_is_no_tcp_port_exits_2_with_a_message(tmp_path: Path, port: str) -> None:
    env = {**os.environ, "RUNLEDGER_DATABASE_URL": f"sqlite:///{tmp_path}/ledger.db", "RUNLEDGER_PORT": port}
    done = subprocess.run(
        [RUNLEDGER, "serve"], env=env, capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path
    )
    assert done.returncode == 2
    assert "port" in done.stderr and "Traceback" not in done.stderr
