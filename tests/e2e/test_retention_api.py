"""SPEC section 11 over real HTTP, with the built-in executor: a sensitive parameter reaches
the task and operators, never auditors or the evidence; a legal hold blocks expunge; expunge
erases (key, unshared files, logs) and answers 410 afterwards; the ledger still verifies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import runledger
from tests.builders import eventually
from tests.conftest import BACKENDS
from tests.e2e.conftest import Server, serving
from tests.e2e.helpers import assert_problem, pipeline, register, ui_session

SECRET = "s3cr3t-Token-4711"


@pytest.fixture(scope="module", params=BACKENDS)
def executing_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with serving(request.param, tmp_path_factory, "retention", executor=True) as server:
        yield server


def secret_workflow() -> dict[str, Any]:
    """The task succeeds only if the value reached it both in argv and in the environment."""
    script = (
        'echo "run $RUNLEDGER_RUN_ID" > out.txt; echo "log $RUNLEDGER_RUN_ID"; test "$PARAM_TOKEN" = "$1"'
    )
    return pipeline(
        params={
            "token": {"type": "string", "sensitive": True},
            "note": {"type": "string", "default": "plain"},
        },
        tasks=[
            {
                "name": "use",
                "command": ["sh", "-c", script, "sh", "{{ params.token }}"],
                "outputs": ["out.txt"],
            }
        ],
    )


def finished(client: httpx.Client, run_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/api/runs/{run_id}").json()
        return body if body.get("status") in {"success", "failed", "killed"} else None

    result: dict[str, Any] = eventually(done, timeout=30.0, interval=0.2)
    return result


def run_node(client: httpx.Client, run_id: str) -> dict[str, Any]:
    """The run's own node in its lineage graph (an empty dict until the view has it)."""
    nodes = client.get(f"/api/runs/{run_id}/lineage").json()["nodes"]
    return next((n for n in nodes if n["id"] == f"run:{run_id}"), {})


def test_a_sensitive_run_is_shown_by_role_held_expunged_and_gone(
    executing_server: Server, tmp_path: Path
) -> None:
    server = executing_server
    definition = secret_workflow()
    admin, operator, auditor = server.client("admin"), server.client("operator"), server.client("auditor")
    register(operator, definition)
    response = operator.post(
        f"/api/workflows/{definition['name']}/trigger", json={"parameters": {"token": SECRET}}
    )
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    summary = finished(operator, run_id)
    assert summary["status"] == "success", summary  # the task got the value in argv and env
    assert summary["parameters"] == {"token": SECRET, "note": "plain"}  # an operator sees it
    assert auditor.get(f"/api/runs/{run_id}").json()["parameters"]["token"] == "[sensitive]"
    tasks = auditor.get(f"/api/runs/{run_id}/tasks").json()["tasks"]
    evidence = str(tasks)
    assert SECRET not in evidence and "[sensitive]" in evidence  # the recorded argv is masked
    assert SECRET not in str(auditor.get(f"/api/runs/{run_id}/audit").json())
    eventually(lambda: not (server.state_dir / "runs" / run_id).exists())  # removed once ended
    files = {f["role"]: f["sha256"] for f in auditor.get(f"/api/runs/{run_id}/files").json()["files"]}
    assert auditor.get(f"/api/runs/{run_id}/tasks/use/logs").text.startswith("log ")

    assert auditor.get(f"/api/runs/{run_id}/tasks").json()["expunged"] is False
    assert eventually(lambda: run_node(auditor, run_id))["expunged"] is False
    before = ui_session(server, server.admin_token).get(f"/runs/{run_id}")
    assert before.status_code == 200 and 'id="run-expunged"' not in before.text

    assert admin.post(f"/api/runs/{run_id}/hold", json={"reason": "litigation"}).json()["recorded"]
    assert_problem(admin.post(f"/api/runs/{run_id}/expunge", json={"reason": "erase"}), 409)
    assert_problem(operator.post(f"/api/runs/{run_id}/expunge", json={}), 403)
    assert admin.request("DELETE", f"/api/runs/{run_id}/hold", json={"reason": "settled"}).json() == {
        "run_id": run_id,
        "held": False,
        "recorded": True,
    }

    done = admin.post(f"/api/runs/{run_id}/expunge", json={"reason": "GDPR erasure"})
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["recorded"] and body["key_destroyed"] and files["output"] in body["files_deleted"]
    again = server.cli(
        "runs", "expunge", run_id, "--url", server.url, "--token", server.admin_token, "--json"
    )  # the CLI over the client: a no-op answer, exit 0
    assert '"recorded": false' in again.stdout

    shown = admin.get(f"/api/runs/{run_id}").json()
    assert shown["expunged"] and shown["parameters"]["token"] == "[erased]"
    answer = auditor.get(f"/api/runs/{run_id}/tasks").json()
    erased_evidence = str(answer["tasks"])
    assert answer["expunged"] and "[erased]" in erased_evidence and "[sensitive]" not in erased_evidence
    assert auditor.get(f"/api/runs/{run_id}/tasks/use").json()["expunged"] is True
    eventually(lambda: run_node(auditor, run_id)["expunged"] is True)  # the lineage view follows
    ui = ui_session(server, server.admin_token)
    run_page = ui.get(f"/runs/{run_id}")
    assert run_page.status_code == 200 and 'id="run-expunged"' in run_page.text
    assert "[erased]" in run_page.text and SECRET not in run_page.text and "[sensitive]" not in run_page.text
    assert ui.get(f"/runs/{run_id}/tasks/use/logs").status_code == 410
    assert ui.get(f"/runs/{run_id}/files/{files['output']}").status_code == 410
    assert_problem(auditor.get(f"/api/runs/{run_id}/tasks/use/logs"), 410)
    assert_problem(auditor.get(f"/api/files/{files['output']}"), 410)
    with runledger.Client(url=server.url, token=server.token("auditor")) as sdk:  # 410 -> GoneError
        with pytest.raises(runledger.GoneError) as gone:
            sdk.runs.get(run_id).logs("use")
        assert gone.value.status == 410
    listed = eventually(
        lambda: [
            r
            for r in auditor.get("/api/runs", params={"workflow": definition["name"]}).json()["runs"]
            if r["expunged"]
        ]
    )
    assert listed[0]["parameters"]["token"] == "[erased]"
    audit = auditor.get(f"/api/runs/{run_id}/audit").json()["entries"]
    assert [e["action"] for e in audit][-3:] == ["hold_placed", "hold_released", "expunged"]
    assert audit[0]["detail"]["parameters"]["token"] == "[erased]"
    events = [e["type"] for e in auditor.get(f"/api/runs/{run_id}/events").json()["events"]]
    assert events.count("Run.Expunged") == 1
    verified = server.cli("verify")
    assert verified.returncode == 0 and "ok" in verified.stdout
    bundle, key = tmp_path / "bundle.tar", tmp_path / "key.pem"
    with admin.stream("GET", "/api/export", params={"workflow": definition["name"]}) as streamed:
        bundle.write_bytes(b"".join(streamed.iter_bytes()))
    assert SECRET.encode() not in bundle.read_bytes()  # the export holds the ciphertext only
    key.write_text(admin.get("/api/ledger/public-key").json()["public_key"])
    assert server.cli("verify-bundle", str(bundle), "--public-key", str(key)).returncode == 0
    metrics = auditor.get("/metrics").text
    assert "runledger_retention_passes_total" in metrics
