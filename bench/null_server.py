"""The harness's ceiling: a server on runledger's stack that stores nothing.

    .venv/bin/python -m bench.null_server --port 8123

It answers the requests of :mod:`bench.runledger_adapter` the way ``runledger serve`` does
(same paths, same bearer header, the same JSON shapes, FastAPI on uvicorn with the same
settings: ``api.transport``'s loop and HTTP protocol) and does no work: a trigger queues an
id, a claim hands the oldest one out, a report is acknowledged. Driven by the same
``runbench`` harness with the same clients, its runs/s is the most any server on this stack
could show on this machine, because the harness's own client work and the HTTP layer are
all that is left.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import threading
from typing import Annotated, Any

import uvicorn
from fastapi import Body, FastAPI, Header, HTTPException, Response

from api.transport import HTTP, LOOP


def create_app() -> FastAPI:
    app = FastAPI(title="runbench null server")
    pending: collections.deque[str] = collections.deque()
    ids = itertools.count(1)
    lock = threading.Lock()

    def authorised(authorization: str | None) -> None:
        if not authorization or not authorization.startswith("Bearer "):
            raise HTTPException(status_code=401, detail="missing bearer token")

    @app.post("/api/workflows", status_code=201)
    def register(
        body: Annotated[dict[str, Any], Body()], authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        authorised(authorization)
        return {"name": body["definition"]["name"], "version": 1}

    @app.post("/api/workflows/{name}/trigger", status_code=202)
    def trigger(
        name: str,
        body: Annotated[dict[str, Any], Body()],
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        authorised(authorization)
        run_id = f"{name}-{next(ids)}"
        with lock:
            pending.append(run_id)
        return {"run_id": run_id, "status": "pending", "definition_hash": "0" * 64}

    @app.post("/api/runs/claim", response_model=None)
    def claim(authorization: Annotated[str | None, Header()] = None) -> dict[str, Any] | Response:
        authorised(authorization)
        with lock:
            if not pending:
                return Response(status_code=204)
            run_id = pending.popleft()
        return {"run_id": run_id, "status": "running"}

    @app.post("/api/runs/{run_id}/events")
    def report(
        run_id: str,
        body: Annotated[dict[str, Any], Body()],
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        authorised(authorization)
        return {"run_id": run_id, "status": "running", "recorded": len(body["events"])}

    @app.get("/healthz")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    args = parser.parse_args(argv)
    uvicorn.run(
        create_app(), host=args.host, port=args.port, log_config=None, access_log=False, http=HTTP, loop=LOOP
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
