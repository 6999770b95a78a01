"""Approval gates with the real executor in-process (SPEC 10), on both backends, finding runs
through the events table (``EventScan``): the run is let go at the gate, the executor holds
nothing while it waits, and once signed the DAG goes on after the gate with the files the
tasks before it wrote."""

from __future__ import annotations

import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from executor import Executor
from ledger.domain.status import RunStatus
from ledger.service import Ledger
from ledger.service.signatures import SignatureRequest
from runledger.signing import public_key_pem, signature_body
from tests.builders import eventually
from tests.integration.executor.conftest import StartExecutor, finished, register_and_trigger, wait_until_done

GATED = {
    "name": "gated-local",
    "tasks": [
        {"name": "make", "command": ["sh", "-c", "echo 41 > n.txt"], "outputs": ["n.txt"]},
        {"name": "qa", "depends_on": ["make"], "approval": {"signatures": 1}},
        {"name": "use", "depends_on": ["qa"], "command": ["cat", "n.txt"], "inputs": ["n.txt"]},
    ],
}


def test_the_executor_lets_a_run_go_at_its_gate_and_continues_after_it_is_signed(
    ledger: Ledger, start_executor: StartExecutor
) -> None:
    executor: Executor = start_executor(concurrency=1)
    run_id = register_and_trigger(ledger, GATED)
    eventually(lambda: ledger.get_run(run_id).status == RunStatus.WAITING, timeout=30)
    eventually(lambda: executor.active_ids() == [], timeout=10)  # no thread, process or slot held
    time.sleep(0.5)
    assert ledger.get_run(run_id).status == RunStatus.WAITING  # and it is not claimed again
    key = Ed25519PrivateKey.generate()
    ledger.register_signing_key(public_key_pem(key), principal="erik", role="operator")
    head = str(ledger.get_run(run_id).last_hash)
    body = signature_body(run_id, head, "approved", "looks right", "erik", key)
    ledger.sign_run(run_id, SignatureRequest(**body), signer="erik", role="operator")
    run = wait_until_done(ledger, run_id)
    assert run.status == RunStatus.SUCCESS
    attempts = finished(ledger, run_id)
    assert [a["attempt"] for a in attempts["make"]] == [1]  # not run again after the gate
    assert attempts["use"][0]["inputs"][0]["sha256"] == attempts["make"][0]["outputs"][0]["sha256"]
    types = [e.type for e in ledger.stream_events(run_id)]
    assert types.count("Run.Started") == 2 and types.index("Run.GateApproved") < len(types) - 1
