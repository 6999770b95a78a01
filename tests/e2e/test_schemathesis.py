"""Property-based API testing with schemathesis against the served ``/openapi.json``: with an
admin token, no generated request may get a 5xx, and every response must match the schema
(status codes, content types, headers and bodies as documented). Bounded examples per operation.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Server
from tests.e2e.helpers import pipeline, register, trigger

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
CHECKS = "all"
#: Requests the schema allows but the ledger refuses on what they mean (a task the workflow
#: lacks, an OpenLineage event missing ``run``, YAML that is not a mapping, an idempotency key
#: on a batch) are 409/422 problems: acceptable answers to a schema-valid request. Every other
#: check runs as schemathesis ships it.
CONFIG = """\
[checks.positive_data_acceptance]
expected-statuses = ["2XX", "401", "403", "404", "409", "422"]
"""
MAX_EXAMPLES = "3"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the schema is one
@pytest.mark.timeout(270)  # the fuzzer's own limit (240 s) and the server start, not the default 120
def test_schemathesis_finds_no_server_error_and_no_response_off_schema(
    server: Server,
    tmp_path: Path,
) -> None:
    """A server of its own: the fuzzer may cancel runs and revoke tokens."""
    with server.client("operator") as client:  # some data for the read endpoints
        definition = pipeline()
        register(client, definition)
        trigger(client, definition["name"])
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    done = subprocess.run(
        [
            SCHEMATHESIS,
            "--config-file",
            str(config),
            "run",
            f"{server.url}/openapi.json",
            "-H",
            f"Authorization: Bearer {server.admin_token}",
            "--checks",
            CHECKS,
            "--max-examples",
            MAX_EXAMPLES,
            "--seed",
            "1",
            "--no-color",
            "--phases",
            "examples,coverage,fuzzing",
            "--request-timeout",
            "20",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-6000:]
    tested = re.search(r"Tested: (\d+)", report)
    assert tested is not None and int(tested.group(1)) >= 30, report[-3000:]
