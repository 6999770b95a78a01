"""Container tasks (SPEC 12) through a real ``runledger serve`` and a real container runtime,
on SQLite and PostgreSQL: evidence of the image ID, isolation, limits, cancel, timeouts and
replay by the recorded image."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.builders import eventually
from tests.conftest import BACKENDS
from tests.e2e.conftest import Server, serving
from tests.e2e.containers import Images, images
from tests.e2e.test_executor_api import register_and_trigger, wait_done

__all__ = ["images"]  # the session fixture, imported for pytest


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module", params=BACKENDS)
def executing(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, images: Images
) -> Iterator[Server]:
    with serving(request.param, tmp_path_factory, "containers", executor=True) as server:
        yield server


@pytest.fixture(scope="module")
def image(images: Images) -> tuple[str, str]:
    """(tag, image ID) of an image every test may use but none re-points."""
    return images.build("first image")


def attempts(client: httpx.Client, run_id: str) -> dict[str, dict[str, Any]]:
    tasks = client.get(f"/api/runs/{run_id}/tasks").json()["tasks"]
    return {t["name"]: t["attempts"][-1] for t in tasks}


def name() -> str:
    return f"containers-{uuid.uuid4().hex[:10]}"


def test_a_container_task_and_a_local_one_leave_outputs_and_the_image_id_as_evidence(
    executing: Server, images: Images, image: tuple[str, str]
) -> None:
    tag, image_id = image
    client = executing.client("operator")
    definition = {
        "name": name(),
        "params": {"word": {"type": "string", "required": True}},
        "tasks": [
            {
                "name": "inside",
                "image": tag,
                "command": [
                    "sh",
                    "-c",
                    'cat /marker > a.txt; echo "$1" >> a.txt; env > env.txt; '
                    'echo seen=yes >> "$RUNLEDGER_OUTPUTS"',
                    "sh",
                    "{{ params.word }}",
                ],
                "outputs": ["a.txt", "env.txt"],
            },
            {
                "name": "outside",
                "depends_on": ["inside"],
                "inputs": ["a.txt"],
                "command": [
                    "sh",
                    "-c",
                    'tr a-z A-Z < a.txt > b.txt; echo "$1" >> b.txt',
                    "sh",
                    "{{ tasks.inside.outputs.seen }}",
                ],
                "outputs": ["b.txt"],
            },
        ],
    }
    run_id = register_and_trigger(client, definition, {"word": "x; $(touch pwned)"})

    assert wait_done(client, run_id)["status"] == "success"
    inside, outside = (attempts(client, run_id)[n] for n in ("inside", "outside"))
    a_txt = b"first image\nx; $(touch pwned)\n"
    b_txt = a_txt.upper() + b"yes\n"
    assert inside["outputs"][0] == {"path": "a.txt", "sha256": sha(a_txt), "size": len(a_txt)}
    assert outside["outputs"] == [{"path": "b.txt", "sha256": sha(b_txt), "size": len(b_txt)}]
    assert inside["image"] == tag and inside["image_hash"] == image_id == images.image_id(tag)
    assert inside["executable"] == "/bin/sh"
    assert inside["executable_sha256"] == sha(images.busybox.read_bytes())
    assert outside["image"] is None and outside["image_hash"] is None
    env = client.get(f"/api/files/{inside['outputs'][1]['sha256']}").text
    assert "PARAM_WORD=x; $(touch pwned)" in env and "RUNLEDGER_OUTPUTS=/runledger/outputs" in env
    assert "RUNLEDGER_DATABASE_URL" not in env and "RUNLEDGER_DATA_DIR" not in env
    assert not list((executing.state_dir / "runs" / run_id).glob("pwned*"))
    assert images.containers(run_id) == []


def test_a_container_has_no_network_unless_the_task_asks_for_the_host_s(
    executing: Server, image: tuple[str, str]
) -> None:
    tag, _ = image
    client = executing.client("operator")
    listing = ["sh", "-c", "ls /sys/class/net > nets.txt"]
    definition = {
        "name": name(),
        "tasks": [
            {"name": "isolated", "image": tag, "command": listing, "outputs": ["nets.txt"]},
            {"name": "host", "depends_on": ["isolated"], "image": tag, "network": "host",
             "command": ["sh", "-c", "ls /sys/class/net > host.txt"], "outputs": ["host.txt"]},
        ],
    }  # fmt: skip
    run_id = register_and_trigger(client, definition)

    assert wait_done(client, run_id)["status"] == "success"
    isolated, host = (attempts(client, run_id)[n]["outputs"][0] for n in ("isolated", "host"))
    assert client.get(f"/api/files/{isolated['sha256']}").text.split() == ["lo"]
    assert len(client.get(f"/api/files/{host['sha256']}").text.split()) > 1


def test_a_task_allocating_past_its_memory_limit_is_killed_with_a_clear_error(
    executing: Server, image: tuple[str, str]
) -> None:
    tag, _ = image
    client = executing.client("operator")
    definition = {
        "name": name(),
        "tasks": [
            {
                "name": "hungry",
                "image": tag,
                "resources": {"memory_mb": 32, "cpus": 0.5},
                "command": ["dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"],
            }
        ],
    }
    run_id = register_and_trigger(client, definition)

    assert wait_done(client, run_id)["status"] == "failed"
    hungry = attempts(client, run_id)["hungry"]
    assert hungry["exit_code"] == 137
    assert "memory limit of 32 MB" in hungry["error"]


def test_cancel_stops_a_sleeping_container_within_5_s_and_leaves_no_container(
    executing: Server, images: Images, image: tuple[str, str]
) -> None:
    tag, _ = image
    client = executing.client("operator")
    definition = {
        "name": name(),
        "tasks": [{"name": "nap", "image": tag, "command": ["sh", "-c", "echo up > up.txt; sleep 60"]}],
    }
    run_id = register_and_trigger(client, definition)
    eventually(lambda: (executing.state_dir / "runs" / run_id / "up.txt").exists(), timeout=30)
    assert len(images.containers(run_id)) == 1

    assert client.post(f"/api/runs/{run_id}/cancel").status_code == 202
    cancelled = time.monotonic()
    while images.containers(run_id):
        assert time.monotonic() - cancelled < 5, "the container outlived the cancel by 5 s"
        time.sleep(0.1)

    assert wait_done(client, run_id)["status"] == "killed"


def test_a_task_timeout_stops_its_container_within_5_s_and_leaves_no_container(
    executing: Server, images: Images, image: tuple[str, str]
) -> None:
    tag, _ = image
    client = executing.client("operator")
    definition = {
        "name": name(),
        "tasks": [{"name": "nap", "image": tag, "timeout_seconds": 1, "command": ["sleep", "60"]}],
    }
    began = time.monotonic()
    run_id = register_and_trigger(client, definition)

    summary = wait_done(client, run_id, timeout=60)

    nap = attempts(client, run_id)["nap"]
    assert summary["status"] == "failed" and nap["error"] == "timed out after 1 s"
    assert nap["duration_seconds"] < 6, nap
    assert time.monotonic() - began < 30
    assert images.containers(run_id) == []


def test_a_missing_image_fails_the_task_clearly_and_runs_nothing(executing: Server) -> None:
    client = executing.client("operator")
    missing = f"localhost/rl-missing-{uuid.uuid4().hex[:8]}:1"
    definition = {
        "name": name(),
        "tasks": [{"name": "t", "image": missing, "command": ["sh", "-c", "touch ran"]}],
    }
    run_id = register_and_trigger(client, definition)

    assert wait_done(client, run_id)["status"] == "failed"
    t = attempts(client, run_id)["t"]
    assert t["error"].startswith(f"image {missing!r} is not present") and t["image_hash"] is None
    assert t["exit_code"] is None and not (executing.state_dir / "runs" / run_id / "ran").exists()


def test_a_pinned_reference_runs_the_image_with_that_digest_or_nothing(
    executing: Server, images: Images, image: tuple[str, str]
) -> None:
    tag, image_id = image
    other_tag, other_id = images.build("other image")
    repository = tag.rsplit(":", 1)[0]
    absent = f"{repository}@sha256:{'0' * 64}"
    client = executing.client("operator")
    cat = ["sh", "-c", "cat /marker > m.txt"]
    first, other = (f"{repository}@{images.digest(t)}" for t in (tag, other_tag))
    definition = {
        "name": name(),
        "tasks": [
            {"name": "first", "image": first, "command": cat, "outputs": ["m.txt"]},
            {"name": "other", "depends_on": ["first"], "image": other,
             "command": cat, "outputs": ["m.txt"]},
            {"name": "absent", "image": absent, "command": cat, "on_failure": "continue"},
        ],
    }  # fmt: skip
    run_id = register_and_trigger(client, definition)

    wait_done(client, run_id)
    done = attempts(client, run_id)
    assert done["first"]["status"] == "success" and done["first"]["image_hash"] == image_id
    assert done["first"]["outputs"][0]["sha256"] == sha(b"first image\n")
    assert done["other"]["status"] == "success" and done["other"]["image_hash"] == other_id
    assert done["other"]["outputs"][0]["sha256"] == sha(b"other image\n")
    assert done["absent"]["status"] == "failed" and done["absent"]["exit_code"] is None
    assert done["absent"]["error"].startswith(f"image {absent!r} is not present")


def test_replay_reruns_the_recorded_image_after_the_tag_was_moved_to_another(
    executing: Server, images: Images
) -> None:
    tag, first_id = images.build("before")
    client = executing.client("operator")
    definition = {
        "name": name(),
        "tasks": [
            {"name": "m", "image": tag, "command": ["sh", "-c", "cat /marker > m.txt"], "outputs": ["m.txt"]}
        ],
    }
    original = register_and_trigger(client, definition)
    assert wait_done(client, original)["status"] == "success"
    _, second_id = images.build("after", tag=tag)
    assert images.image_id(tag) == second_id != first_id

    replayed = client.post(f"/api/runs/{original}/replay", json={})
    fresh = client.post(f"/api/workflows/{definition['name']}/trigger", json={"parameters": {}})
    assert replayed.status_code == 202 and fresh.status_code == 202, replayed.text
    replay_id, fresh_id = replayed.json()["run_id"], fresh.json()["run_id"]

    assert wait_done(client, replay_id)["status"] == "success"
    assert wait_done(client, fresh_id)["status"] == "success"
    replay, latest = attempts(client, replay_id)["m"], attempts(client, fresh_id)["m"]
    assert replay["image"] == tag and replay["image_hash"] == first_id
    assert replay["outputs"][0]["sha256"] == sha(b"before\n")
    assert latest["image_hash"] == second_id and latest["outputs"][0]["sha256"] == sha(b"after\n")


def test_resume_reuses_done_container_tasks_and_reruns_the_rest_in_the_recorded_image(
    executing: Server, images: Images
) -> None:
    tag, first_id = images.build("before")
    client = executing.client("operator")
    definition = {
        "name": name(),
        "tasks": [
            {"name": "a", "image": tag, "command": ["sh", "-c", "cat /marker > a.txt"], "outputs": ["a.txt"]},
            {"name": "b", "depends_on": ["a"], "image": tag, "inputs": ["a.txt"],
             "command": ["sh", "-c", "cat a.txt /marker > b.txt"], "outputs": ["b.txt"]},
        ],
    }  # fmt: skip
    original = register_and_trigger(client, definition)
    assert wait_done(client, original)["status"] == "success"
    images.build("after", tag=tag)

    resumed = client.post(f"/api/runs/{original}/resume", json={"from_task": "b"})
    assert resumed.status_code == 202, resumed.text
    resume_id = resumed.json()["run_id"]

    assert wait_done(client, resume_id)["status"] == "success"
    a = client.get(f"/api/runs/{resume_id}/tasks/a").json()
    assert a["status"] == "reused" and original in str(a)
    b = attempts(client, resume_id)["b"]
    assert b["image_hash"] == first_id
    assert b["outputs"][0]["sha256"] == sha(b"before\nbefore\n")
