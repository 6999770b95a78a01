"""runledger as an outside engine uses it, for the shared ``runbench`` harness.

    PYTHONPATH=../shared/bench:. python ../shared/bench/runbench.py \
        --system bench.runledger_adapter:RunledgerAdapter --url http://127.0.0.1:8000 \
        --opt token=OPERATOR_TOKEN --opt worker_token=WORKER_TOKEN --mode write --clients 1,8

Mapping (13 requests per run, as many as MLflow needs):
  create_run           POST /api/workflows/{wf}/trigger, then POST /api/runs/claim (worker)
  record_task_start    POST /api/runs/{id}/events  [task_started]
  record_task_finish   POST /api/runs/{id}/events  [task_finished: exit code, duration,
                                                    2 input + 2 output sha256, host]
  finish_run           POST /api/runs/{id}/events  [run_succeeded]
  get_run              GET  /api/runs/{id}
  list_recent_finished GET  /api/runs?status=success&limit=50
  search_by_param      GET  /api/runs?param.<key>=<value>&limit=50
``create_run`` returns the run the worker was handed: claims go oldest first, so with several
clients a client may execute a run another client triggered, as a real worker pool would.
Options (``--opt``, or ``RUNLEDGER_BENCH_TOKEN`` / ``RUNLEDGER_BENCH_WORKER_TOKEN``):
``token`` (operator), ``worker_token`` (worker).
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from typing import Any

import httpx
from runbench import N_TASKS, N_WORKFLOWS, Adapter, Recorder, RequestFailed, TaskFinish, TaskStart

PARAM_NAMES = ("workflow", "dataset", "git_sha", "seed", "owner")


def workflow_definition(name: str) -> dict[str, Any]:
    """A workflow of 5 string parameters and tasks t0..t4 (a chain)."""
    tasks: list[dict[str, Any]] = []
    for i in range(N_TASKS):
        task: dict[str, Any] = {"name": f"t{i}", "command": ["true"]}
        if i:
            task["depends_on"] = [f"t{i - 1}"]
        tasks.append(task)
    return {
        "name": name,
        "description": "runbench workload",
        "params": {p: {"type": "string", "required": True} for p in PARAM_NAMES},
        "tasks": tasks,
    }


def _iso(unix_seconds: float) -> str:
    return datetime.fromtimestamp(unix_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class RunledgerAdapter(Adapter):  # type: ignore[misc]  # runbench is outside the project
    name = "runledger"

    def __init__(self, url: str, client: httpx.AsyncClient, rec: Recorder, **opts: str) -> None:
        super().__init__(url, client, rec, **opts)
        token = opts.get("token") or os.environ.get("RUNLEDGER_BENCH_TOKEN", "")
        worker = opts.get("worker_token") or os.environ.get("RUNLEDGER_BENCH_WORKER_TOKEN", "")
        if not token or not worker:
            raise SystemExit("runledger adapter needs --opt token=... --opt worker_token=...")
        self.operator = {"Authorization": f"Bearer {token}"}
        self.worker = {"Authorization": f"Bearer {worker}"}
        self.claim_timeout = float(opts.get("claim_timeout", "30"))

    async def setup(self) -> None:
        for i in range(N_WORKFLOWS):
            response = await self.client.post(
                f"{self.url}/api/workflows",
                headers=self.operator,
                json={"definition": workflow_definition(f"wf-{i}")},
            )
            if response.status_code not in (200, 201):
                raise SystemExit(f"runledger setup failed: {response.status_code} {response.text}")

    # ---- write path ---------------------------------------------------------------------------
    async def _events(self, op: str, run_id: str, events: list[dict[str, Any]]) -> None:
        await self._request(
            op, "POST", f"/api/runs/{run_id}/events", headers=self.worker, json={"events": events}
        )

    async def _claim(self) -> str:
        """Claim the next pending run; a 204 (the read model not caught up yet) is retried."""
        deadline = asyncio.get_running_loop().time() + self.claim_timeout
        while True:
            claimed = await self._request("claim", "POST", "/api/runs/claim", headers=self.worker)
            if claimed:
                return str(claimed.get("run_id") or claimed["id"])
            if asyncio.get_running_loop().time() > deadline:
                raise RequestFailed("claim: no pending run within the claim timeout")
            await asyncio.sleep(0.002)

    async def _trigger(self, workflow: str, params: dict[str, str]) -> str:
        body = await self._request(
            "create_run",
            "POST",
            f"/api/workflows/{workflow}/trigger",
            headers=self.operator,
            json={"parameters": params},
        )
        return str(body["run_id"])

    async def create_run(self, workflow: str, params: dict[str, str], label: str) -> str:
        await self._trigger(workflow, params)
        return await self._claim()

    @staticmethod
    def _started(rec: TaskStart) -> dict[str, Any]:
        return {
            "type": "task_started",
            "task": rec.task,
            "attempt": 1,
            "host": rec.host,
            "started_at": _iso(rec.started_at),
        }

    @staticmethod
    def _finished(rec: TaskFinish) -> dict[str, Any]:
        return {
            "type": "task_finished",
            "task": rec.task,
            "attempt": 1,
            "exit_code": rec.exit_code,
            "duration_seconds": rec.duration_s,
            "host": rec.host,
            "ended_at": _iso(rec.finished_at),
            "inputs": [{"sha256": h} for h in rec.input_sha256],
            "outputs": [{"sha256": h} for h in rec.output_sha256],
        }

    async def record_task_start(self, run_id: str, rec: TaskStart) -> None:
        await self._events("task_start", run_id, [self._started(rec)])

    async def record_task_finish(self, run_id: str, rec: TaskFinish) -> None:
        await self._events("task_finish", run_id, [self._finished(rec)])

    async def finish_run(self, run_id: str, status: str = "finished") -> None:
        event = {"type": "run_succeeded"} if status == "finished" else {"type": "run_failed", "error": status}
        await self._events("finish_run", run_id, [event])

    async def create_complete_run(
        self,
        workflow: str,
        params: dict[str, str],
        label: str,
        tasks: list[tuple[TaskStart, TaskFinish]],
        status: str = "finished",
    ) -> str:
        """3 requests: trigger, claim, one atomic report of every event."""
        await self._trigger(workflow, params)
        run_id = await self._claim()
        events: list[dict[str, Any]] = []
        for start, finish in tasks:
            events += [self._started(start), self._finished(finish)]
        events.append(
            {"type": "run_succeeded"} if status == "finished" else {"type": "run_failed", "error": status}
        )
        await self._events("report_all", run_id, events)
        return run_id

    # ---- read path ----------------------------------------------------------------------------
    @staticmethod
    def _norm(summary: dict[str, Any]) -> dict[str, Any]:
        status = summary["status"]
        return {
            "id": summary["run_id"],
            "status": "finished" if status == "success" else status,
            "params": dict(summary.get("parameters") or {}),
            "n_tasks": int(summary.get("tasks_succeeded") or 0),
        }

    async def get_run(self, run_id: str) -> dict[str, Any]:
        body = await self._request("get_run", "GET", f"/api/runs/{run_id}", headers=self.operator)
        return self._norm(body)

    async def list_recent_finished(self, limit: int = 50) -> list[dict[str, Any]]:
        body = await self._request(
            "list_recent_finished",
            "GET",
            "/api/runs",
            headers=self.operator,
            params={"status": "success", "limit": limit},
        )
        return [self._norm(r) for r in body["runs"]]

    async def search_by_param(self, key: str, value: str, limit: int = 50) -> list[dict[str, Any]]:
        body = await self._request(
            "search_by_param",
            "GET",
            "/api/runs",
            headers=self.operator,
            params={f"param.{key}": value, "limit": limit},
        )
        return [self._norm(r) for r in body["runs"]]
