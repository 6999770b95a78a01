"""A workflow with a sensitive parameter and a file parameter, and runs finished by reports
whose outputs are real files in the file store."""

from __future__ import annotations

from typing import Any

from ledger.service import Ledger
from tests.builders import reports

SECRET_DEFINITION: dict[str, Any] = {
    "name": "vault",
    "params": {
        "token": {"type": "string", "sensitive": True},
        "source": {"type": "file"},
        "label": {"type": "string", "default": "plain"},
    },
    "tasks": [{"name": "use", "command": ["echo", "{{ params.label }}"]}],
}


def finish(ledger: Ledger, *, token: str | None, source: str, output: bytes, status: str = "success") -> str:
    """A run of ``vault`` that read ``source`` and wrote ``output`` (stored), ended ``status``."""
    parameters: dict[str, Any] = {"source": source}
    if token is not None:
        parameters["token"] = token
    run_id = ledger.trigger(workflow="vault", parameters=parameters, principal="carol").run_id
    assert ledger.claim(run_id, worker_id="w1") is not None
    out_sha, out_size = ledger.files.put_bytes(output)
    log_sha, log_size = ledger.files.put_bytes(b"log of " + output)
    ended = {"type": "run_succeeded"} if status == "success" else {"type": "run_failed", "error": "boom"}
    ledger.report(
        run_id,
        worker_id="w1",
        reports=reports(
            {"type": "task_started", "task": "use"},
            {
                "type": "task_finished",
                "task": "use",
                "exit_code": 0 if status == "success" else 1,
                "status": "success" if status == "success" else "failed",
                "inputs": [{"path": "params/source", "sha256": source, "size": 1}],
                "outputs": [{"path": "out.txt", "sha256": out_sha, "size": out_size}],
                "stdout": {"sha256": log_sha, "size": log_size},
            },
            ended,
        ),
    )
    return run_id
