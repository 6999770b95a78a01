"""``examples/seed_user.py`` against a live ``runledger serve`` with its executor: the script
runs as a user would run it (a real process, the URL and token in its environment) and its
output says what happened."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

from tests.e2e.client_helpers import cli_env
from tests.e2e.conftest import Server

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_the_seed_user_example_registers_triggers_compares_replays_and_exports(
    server_factory: Callable[..., Server], tmp_path: Path
) -> None:
    server = server_factory(executor=True)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "seed_user.py"), str(tmp_path)],
        env=cli_env(server, "operator"),
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "registered pipeline version 1" in out
    runs = re.findall(r"^run (\S+) (\w+) by (\S+) lines=(\S+)$", out, re.MULTILINE)
    assert [(status, by, lines) for _, status, by, lines in runs] == [
        ("success", "test-operator", "3"),
        ("success", "test-operator", "5"),
        ("failed", "test-operator", "None"),  # a failed task's output variables are not kept
    ]
    assert f"failed in the last week: ['{runs[2][0]}']" in out
    assert "compare: same definition True, parameters ['limit', 'query']" in out
    assert re.search(rf"^replayed {runs[0][0]} as \S+: success, limit=7$", out, re.MULTILINE)
    with tarfile.open(tmp_path / "evidence.tar") as bundle:
        assert "manifest.json" in {Path(name).name for name in bundle.getnames()}
