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
CHECKS = (
    "not_a_server_error,response_schema_conformance,status_code_conformance,"
    "content_type_conformance,response_headers_conformance"
)
MAX_EXAMPLES = "3"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the schema is one
def test_schemathesis_finds_no_server_error_and_no_response_off_schema(
    server: Server,
    tmp_path: Path,
) -> None:
    """A server of its own: the fuzzer may cancel runs and revoke tokens."""
    with server.client("operator") as client:  # some data for the read endpoints
        definition = pipeline()
        register(client, definition)
        trigger(client, definition["name"])
    done = subprocess.run(
        [
            SCHEMATHESIS,
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
