"""Property-based API testing with schemathesis against the served ``/openapi.json``: with an
admin token, no generated request may get a 5xx, and every response must match the schema
(status codes, content types, headers and bodies as documented), and a request the schema
allows is accepted (positive_data_acceptance at its defaults, but for the operations in
``SEMANTIC_422``). Bounded examples per operation.
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
#: Every check runs as schemathesis ships it: a request the documented schema allows is
#: accepted (2xx, or 404/409 for what does not exist or conflicts), not refused with 422.
#: The operations below are the exceptions, each for a refusal no static schema can state:
#: a 422 is an acceptable answer to a schema-valid request there, and only there.
SEMANTIC_422 = {
    # bounds that are the ledger's current size
    ("GET", "/api/ledger/proof/consistency"): "0 < first <= second <= the tree's size",
    ("GET", "/api/ledger/proof/inclusion"): "tree_size at most the tree's size",
    # the workflow's own tasks, parameters and definition rules (SPEC 5)
    ("POST", "/api/runs/{run_id}/resume"): "a task the run's workflow lacks",
    ("POST", "/api/workflows"): "a definition that breaks the rules of SPEC 5",
    ("POST", "/api/workflows/{name}/trigger"): "parameters the workflow does not declare",
    ("POST", "/api/workflows/by-hash/{definition_hash}/trigger"): "the same, by hash",
    # refused at the door whatever the schema (issue 16): NUL, lone surrogates, empty files
    ("POST", "/api/runs/{run_id}/events"): "NUL or a lone surrogate in a reported string",
    ("POST", "/api/files"): "an empty body",
    # OpenLineage's own schema (spec 2-0-2) decides, not ours
    ("POST", "/api/v1/lineage"): "a body that is not an OpenLineage event",
}
#: Operations that answer 410 Gone for what an expunge erased (SPEC 11): the fuzzer may expunge
#: the run it then reads.
GONE_410 = {
    ("GET", "/api/runs/{run_id}/tasks/{task_name}/logs"),
    ("GET", "/api/files/{sha256}"),
}
CONFIG = "".join(
    f"""
[[operations]]
include-method = "{method}"
include-path = "{path}"
checks.positive_data_acceptance.expected-statuses = ["2XX", "401", "403", "404", "409", "410", "422"]
"""
    for method, path in SEMANTIC_422
) + "".join(
    f"""
[[operations]]
include-method = "{method}"
include-path = "{path}"
checks.positive_data_acceptance.expected-statuses = ["2XX", "401", "403", "404", "409", "410"]
"""
    for method, path in GONE_410
)
MAX_EXAMPLES = "3"


@pytest.mark.timeout(300)  # the run's own bound is 240 s (a loaded machine needs it)
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
            # `--checks all` includes max_response_time at 10 s; speed is bench/'s job, so the
            # only time limit here is the request timeout's (a hang), not a slow moment
            "--max-response-time",
            "20",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-20000:]
    tested = re.search(r"Tested: (\d+)", report)
    assert tested is not None and int(tested.group(1)) >= 30, report[-3000:]
