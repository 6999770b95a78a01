"""SPEC section 10 in the service, on a real SQLite file and a real PostgreSQL schema: reasons,
approval gates counting distinct principals of the gate's role, and every new event hashed as
stored (``runledger verify`` passes)."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.domain.status import RunStatus, TaskStatus
from ledger.errors import Conflict, Forbidden, InvalidRequest
from ledger.integrity.verify import verify_ledger
from ledger.service import Ledger
from ledger.service.signatures import SignatureRequest
from ledger.settings import Settings
from runledger.signing import public_key_pem, signature_body
from tests.builders import reports

GATED = {
    "name": "gated",
    "tasks": [
        {"name": "build", "command": ["true"]},
        {
            "name": "qa",
            "depends_on": ["build"],
            "approval": {"meaning": "approved", "role": "operator", "signatures": 2},
        },
        {"name": "ship", "command": ["true"], "depends_on": ["qa"]},
    ],
}


def waiting_run(ledger: Ledger) -> str:
    ledger.register_workflow(GATED, principal="alice")
    run_id = ledger.trigger(workflow="gated", parameters={}, principal="alice").run_id
    assert ledger.claim(run_id, worker_id="w1") is not None
    ledger.report(
        run_id,
        worker_id="w1",
        reports=reports(
            {"type": "task_started", "task": "build"},
            {"type": "task_finished", "task": "build", "exit_code": 0},
            {"type": "gate_reached", "task": "qa"},
        ),
    )
    return run_id


def signer(ledger: Ledger, name: str, role: str) -> dict[str, Any]:
    key = Ed25519PrivateKey.generate()
    ledger.register_signing_key(public_key_pem(key), principal=name, role=role)
    return {"name": name, "role": role, "key": key}


def sign(ledger: Ledger, run_id: str, who: dict[str, Any], meaning: str, reason: str | None = None) -> Any:
    head = ledger.get_run(run_id).last_hash
    assert head is not None
    body = signature_body(run_id, head, meaning, reason, who["name"], who["key"])
    return ledger.sign_run(run_id, SignatureRequest(**body), signer=who["name"], role=who["role"])


def test_a_gate_opens_with_enough_distinct_principals_of_its_role(ledger: Ledger) -> None:
    run_id = waiting_run(ledger)
    run = ledger.get_run(run_id)
    assert (run.status, run.tasks["qa"].status, run.worker_id) == (
        RunStatus.WAITING,
        TaskStatus.WAITING,
        None,
    )
    with pytest.raises(Conflict):  # nobody holds a waiting run: the old worker cannot report
        ledger.report(run_id, worker_id="w1", reports=reports({"type": "lease_renewed"}))
    erik, fay, quinn = (
        signer(ledger, "erik", "operator"),
        signer(ledger, "fay", "admin"),
        signer(ledger, "quinn", "auditor"),
    )
    sign(ledger, run_id, erik, "approved")
    sign(ledger, run_id, erik, "approved")  # the same principal twice counts once
    sign(ledger, run_id, quinn, "approved")  # below the gate's role
    sign(ledger, run_id, erik, "reviewed")  # another meaning
    assert ledger.get_run(run_id).status == RunStatus.WAITING
    run = sign(ledger, run_id, fay, "approved")
    assert (run.status, run.tasks["qa"].status) == (RunStatus.PENDING, TaskStatus.SUCCESS)
    events = ledger.stream_events(run_id)
    assert events[-1].type == "Run.GateApproved" and events[-1].data["signers"] == ["erik", "fay"]
    assert ledger.claim(run_id, worker_id="w2") is not None  # claimed again, the DAG goes on
    assert verify_ledger(ledger.settings).ok


def test_a_rejection_fails_the_run_naming_the_signer_and_keys_are_checked(ledger: Ledger) -> None:
    run_id = waiting_run(ledger)
    dana = signer(ledger, "dana", "operator")
    with pytest.raises(Conflict):  # a stale head
        body = signature_body(run_id, "0" * 64, "approved", None, "dana", dana["key"])
        ledger.sign_run(run_id, SignatureRequest(**body), signer="dana", role="operator")
    with pytest.raises(Forbidden):  # dana's key, presented by someone else
        head = str(ledger.get_run(run_id).last_hash)
        body = signature_body(run_id, head, "approved", None, "mallory", dana["key"])
        ledger.sign_run(run_id, SignatureRequest(**body), signer="mallory", role="operator")
    run = sign(ledger, run_id, dana, "rejected", reason="assay out of range")
    assert run.status == RunStatus.FAILED and run.tasks["qa"].status == TaskStatus.FAILED
    assert run.error == "rejected at approval gate 'qa' by dana: assay out of range"
    fingerprint = ledger.stream_events(run_id)[-3].data["key_fingerprint"]
    ledger.revoke_signing_key(fingerprint, principal="dana", admin=False)
    with pytest.raises(Forbidden):
        sign(ledger, run_id, dana, "reviewed")
    assert verify_ledger(ledger.settings).ok


def test_reasons_are_required_when_the_setting_says_so_and_nothing_is_written(settings: Settings) -> None:
    ledger = Ledger(settings.model_copy(update={"require_reason": True}))
    try:
        run_id = waiting_run(ledger)
        before = ledger.reader.max_position()
        for refused in (
            lambda: ledger.cancel(run_id, principal="ops"),
            lambda: ledger.cancel(run_id, principal="ops", reason="   "),
            lambda: ledger.replay(run_id, principal="ops"),
            lambda: ledger.resume(run_id, from_task="qa", principal="ops"),
        ):
            with pytest.raises(InvalidRequest, match="reason"):
                refused()
        assert ledger.reader.max_position() == before
        replayed = ledger.replay(run_id, principal="ops", reason="  recalibrated  ")
        assert ledger.stream_events(replayed.run_id)[0].data["reason"] == "recalibrated"
        run = ledger.cancel(run_id, principal="ops", reason="superseded")  # a waiting run can be cancelled
        assert run.status == RunStatus.KILLED
        assert ledger.stream_events(run_id)[-1].data["reason"] == "superseded"
        assert verify_ledger(ledger.settings).ok
    finally:
        ledger.close()
