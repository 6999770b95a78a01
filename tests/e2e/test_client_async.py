"""``runledger.AsyncClient`` against a real ``runledger serve`` on both backends: the same
surface as the sync client, awaited."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from runledger import ConflictError, RunNotFoundError, VerificationError, WorkflowNotFoundError
from tests.e2e.client_helpers import async_client_for, complete
from tests.e2e.conftest import Server
from tests.e2e.helpers import pipeline
from tests.e2e.proxy import rewriting_proxy
from tests.e2e.test_api_runs import OUT_TXT


def test_the_async_client_drives_a_run_from_trigger_to_replay(shared_server: Server, tmp_path: Path) -> None:
    definition = pipeline()

    async def main() -> None:
        async with async_client_for(shared_server, "operator", tmp_path) as client:
            registered = await client.workflows.register(definition)
            assert registered.version == 1
            assert definition["name"] in {w.name for w in await client.workflows.list()}
            assert (
                await client.workflows.get(definition["name"])
            ).definition_hash == registered.definition_hash
            with pytest.raises(WorkflowNotFoundError):
                await client.workflows.get("no-such-workflow")
            run = await client.trigger(definition["name"], {"query": "alpha"})
            loop = asyncio.get_running_loop()
            worker = loop.run_in_executor(None, complete, shared_server, run.run_id)
            seen = [e.type async for e in run.events(follow=True, timeout=30)]
            await worker
            assert seen[0] == "Run.Triggered" and seen[-1] == "Run.Succeeded"
            assert (await run.wait(timeout=30)).status == "success"
            assert [e.sequence async for e in run.events()] == list(range(1, len(seen) + 1))
            assert [t.name for t in await run.tasks()] == ["fetch", "summarise"]
            assert await run.logs("fetch") == "fetched 3 urls\n"
            out = next(f for f in (await run.files()).files if f.role == "output")
            assert (await run.download(out.sha256, tmp_path / "o")).read_bytes() == OUT_TXT
            for _ in range(100):  # the lineage view follows the ledger a moment behind
                if (await run.lineage()).edges:
                    break
                await asyncio.sleep(0.1)
            assert (await run.lineage()).edges
            assert (await run.audit()).entries
            replayed = await run.replay({"query": "beta"})
            assert replayed.replay_of == run.run_id
            resumed = await run.resume("summarise")
            assert resumed.resume_of == run.run_id
            assert (await client.runs.compare(run.run_id, replayed.run_id)).parameters["query"]["b"] == "beta"
            assert (await replayed.cancel()).status == "killed"
            with pytest.raises(ConflictError):
                await replayed.cancel()
            pinned = await client.trigger_by_hash(registered.definition_hash, {"query": "h"})
            assert pinned.trigger_kind == "hash"
            batch = await client.trigger_batch(definition["name"], ["a", "b"], "query")
            assert (await client.batch(batch.batch_id)).progress.total_items == 2
            for _ in range(600):  # lists and stats come from views that follow the ledger a moment behind
                listed = [r.run_id async for r in client.runs.list(workflow=definition["name"], page_size=2)]
                if len(listed) == 6 and (await client.stats(workflow=definition["name"])).total_runs == 6:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the views never showed the 6 runs")
            assert listed[-1] == run.run_id  # newest first, across three pages
            stored = await client.files.upload(b"bytes")
            assert stored.size == 5
            assert (await client.ledger.digest()).tree_size > 0
            assert (await client.ledger.verify()).ok
            assert (await client.export(tmp_path / "b.tar")).stat().st_size > 0
            with pytest.raises(RunNotFoundError):
                await client.runs.get("no-such-run")
            verified = await client.runs.get(run.run_id, verify=True)
            assert verified.status == "success"

    asyncio.run(main())


def test_the_async_client_catches_a_tampered_event(shared_server: Server, tmp_path: Path) -> None:
    definition = pipeline()

    def tamper(method: str, path: str, body: object) -> object:
        if path.endswith("/events") and isinstance(body, dict):
            body["events"][-1]["timestamp"] = "2000-01-01T00:00:00.000000Z"
        return body

    async def main(url: str) -> None:
        async with async_client_for(shared_server, "operator", tmp_path) as client:
            await client.workflows.register(definition)
            run = await client.trigger(definition["name"], {"query": "a"})
        from runledger import AsyncClient

        async with AsyncClient(url, shared_server.token("auditor"), trusted_digest=tmp_path / "d") as lied_to:
            with pytest.raises(VerificationError):
                await lied_to.runs.get(run.run_id, verify=True)

    with rewriting_proxy(shared_server.url, tamper) as url:
        asyncio.run(main(url))


def test_the_async_client_labels_signs_holds_and_expunges_as_the_sync_one(
    shared_server: Server, tmp_path: Path
) -> None:
    """SPEC 8, 10 and 11 through ``AsyncClient``: labels, a signing key and a signature over
    the run's head, its report, the ledger-wide audit trail, a hold, an expunge, and 410."""
    from runledger import GoneError
    from runledger.signing import create_key_files

    definition = pipeline()
    private, public, fingerprint = create_key_files(tmp_path / "admin-key.pem")

    async def main() -> None:
        async with async_client_for(shared_server, "admin", tmp_path) as client:
            await client.workflows.register(definition)
            run = await client.trigger(definition["name"], {"query": "gamma"})
            await asyncio.get_running_loop().run_in_executor(None, complete, shared_server, run.run_id)
            assert (await run.wait(timeout=30)).status == "success"
            labelled = await run.label(set={"team": "async"}, reason="triage")
            assert labelled.labels == {"team": "async"}
            assert (await client.signing_keys.register(public)).fingerprint == fingerprint
            assert fingerprint in {k.fingerprint for k in await client.signing_keys.list()}
            signed = await run.sign("reviewed", private, "looked at it", signer="admin")
            assert signed.meaning == "reviewed" and signed.signer == "admin"
            assert [s.valid for s in (await run.signatures()).signatures] == [True]
            assert b"reviewed" in await run.report()
            actions: list[str] = []
            for _ in range(100):  # the audit view follows the ledger a moment behind
                actions = [e.action async for e in client.audit_entries(run_id=run.run_id)]
                if "signed" in actions:
                    break
                await asyncio.sleep(0.1)
            assert {"triggered", "labelled", "signed"} <= set(actions)
            assert (await run.hold("legal matter")).held
            with pytest.raises(ConflictError):
                await run.expunge("too early")  # held
            assert not (await run.release("settled")).held
            erased = await run.expunge("GDPR request")
            assert erased.recorded and not (await run.expunge("again")).recorded
            with pytest.raises(GoneError):
                await run.logs("fetch")

    asyncio.run(main())
