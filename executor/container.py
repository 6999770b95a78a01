"""Container tasks (SPEC 12): one attempt run by Podman or Docker through its CLI.

The image is resolved to its image ID *before* the task starts and the container is started
from that ID, so a tag moved afterwards changes neither what ran nor what was recorded. The
image ID is the sha256 of the image's configuration, which names every layer by the digest of
its uncompressed content: it exists for images built or imported locally (a manifest digest
only exists once an image has been pushed or pulled), both runtimes report it, and both run
it. A reference pinned ``@sha256:<hex>`` must resolve to an image carrying that digest.

The container gets the run directory as its working directory (``/runledger/work``), the
outputs file at ``/runledger/outputs``, ``--network=none`` unless the task asks for ``host``,
and of the worker's environment only ``PARAM_*`` and the ``RUNLEDGER_*`` variables a task is
given; the executor never pulls. A stop or timeout kills the container by the name given to
this attempt and removes it.

Past 300 lines on purpose: the runtime's CLI (resolve, run, kill, remove) and the watcher that
stops a container are one lifecycle; split apart they would each hold half of it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import structlog

from executor.container_image import ImageFiles
from executor.evidence import EvidenceError, inside
from executor.process import ProcessResult, run_process
from executor.runner import Identity, Launch, RunnerError
from ledger.domain.definition import TaskSpec
from ledger.settings import Settings

WORKDIR = "/runledger/work"
OUTPUTS = "/runledger/outputs"
#: What a task sees of the worker's environment (besides ``PARAM_*``).
PASSED_VARIABLES = ("RUNLEDGER_OUTPUTS", "RUNLEDGER_ATTEMPT", "RUNLEDGER_RUN_ID")
CLI_TIMEOUT_SECONDS = 60.0
#: A kill that did not end the runtime's client within this long: the client is killed too.
KILL_WAIT_SECONDS = 10.0
log = structlog.get_logger()


class ContainerError(RunnerError):
    """The task cannot run in a container: no runtime, no such image, a digest mismatch."""


@dataclass(frozen=True)
class ResolvedImage:
    image_id: str  # lowercase hex, no prefix
    path: list[str]  # the image's PATH, for finding argv[0]


class ContainerRunner:
    """Runs container attempts through one runtime CLI, found when first needed."""

    def __init__(self, runtime: str | None, run_flags: str) -> None:
        self._configured = runtime
        self._runtime: str | None = None
        self.run_flags = shlex.split(run_flags)
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> ContainerRunner:
        return cls(settings.container_runtime, settings.container_run_flags)

    @property
    def runtime(self) -> str:
        with self._lock:
            if self._runtime is None:
                self._runtime = find_runtime(self._configured)
            return self._runtime

    # ---- before the task starts ---------------------------------------------------------
    def identify(self, launch: Launch) -> Identity:
        """The image ID (resolved now, or pinned by the run replayed) and argv[0] in it."""
        if launch.task.image is None:
            raise ContainerError(f"task {launch.task.name!r} names no image")
        image = self.resolve(launch.task.image, pinned_id=launch.pinned_image_id)
        executable, digest = self.executable(image, launch.command[0], launch.run_dir)
        return Identity(launch.task.image, image.image_id, executable, digest)

    def resolve(self, image: str, *, pinned_id: str | None = None) -> ResolvedImage:
        """The image ``image`` names now, or (replay) the recorded image ID ``pinned_id``."""
        reference = pinned_id or image
        done = self._cli("image", "inspect", reference)
        if done.returncode != 0:
            reason = _last_line(done.stderr) or f"exit code {done.returncode}"
            if pinned_id is not None:
                raise ContainerError(
                    f"image {image!r} as recorded ({pinned_id}) is not present for "
                    f"{Path(self.runtime).name}: {reason}"
                )
            raise ContainerError(
                f"image {image!r} is not present for {Path(self.runtime).name} "
                f"(the executor never pulls): {reason}"
            )
        try:
            info: dict[str, Any] = json.loads(done.stdout)[0]
            image_id = str(info["Id"]).removeprefix("sha256:").lower()
        except (ValueError, LookupError, TypeError) as exc:
            raise ContainerError(f"could not read what the runtime says of image {image!r}: {exc}") from None
        if "@sha256:" in image:
            wanted = image.rsplit("@sha256:", 1)[1]
            if wanted != image_id and wanted not in _digests(info):
                raise ContainerError(
                    f"image {image!r} is pinned, but the runtime's image {image_id} does not carry "
                    "that digest; refusing to run a different image"
                )
        env = (info.get("Config") or {}).get("Env") or []
        path = next((e[5:] for e in env if isinstance(e, str) and e.startswith("PATH=")), None)
        return ResolvedImage(image_id, (path or DEFAULT_PATH).split(":"))

    def executable(self, image: ResolvedImage, program: str, run_dir: Path) -> tuple[str | None, str | None]:
        """``argv[0]`` as the container will exec it, and its sha256 where it can be read."""
        if "/" in program and not program.startswith("/"):
            try:
                local = inside(run_dir, program)
            except EvidenceError:
                return None, None
            digest = ImageFiles.hash_file(local) if local.is_file() else None
            return f"{WORKDIR}/{program}", digest
        if Path(self.runtime).name != "podman":
            return (program if program.startswith("/") else None), None
        return ImageFiles(self.runtime).find(image.image_id, program, image.path)

    # ---- the attempt ----------------------------------------------------------------------
    def run(self, launch: Launch, identity: Identity, stop: threading.Event) -> ProcessResult:
        task, run_dir, outputs_file, timeout = (
            launch.task,
            launch.run_dir,
            launch.outputs_file,
            launch.timeout,
        )
        name, stdout, stderr = launch.name, launch.stdout, launch.stderr
        if identity.image_hash is None:
            return ProcessResult(None, None, error="no image resolved for the container")
        for mounted in (run_dir, outputs_file):
            if ":" in str(mounted) or "," in str(mounted):
                return ProcessResult(None, None, error=f"cannot mount {mounted}: ':' or ',' in the path")
        client_env = dict(launch.env) | {"RUNLEDGER_OUTPUTS": OUTPUTS}
        passed = sorted(k for k in client_env if k.startswith("PARAM_")) + list(PASSED_VARIABLES)
        argv = [
            self.runtime, "run", "--rm", "--name", name, "--pull=never", "--entrypoint=",
            *self.run_flags,
            f"--network={task.network}",
            "--volume", f"{run_dir.resolve()}:{WORKDIR}",
            "--volume", f"{outputs_file.resolve()}:{OUTPUTS}",
            "--workdir", WORKDIR,
            *[flag for key in passed if key in client_env for flag in ("--env", key)],
            *_limits(task),
            identity.image_hash, *launch.command,
        ]  # fmt: skip
        finished = threading.Event()
        watcher = _Watcher(self, name, timeout, stop, finished)
        watcher.start()
        try:
            limit = None if timeout is None else timeout + KILL_WAIT_SECONDS
            result = run_process(
                argv,
                cwd=run_dir,
                env=client_env,
                stdout=stdout,
                stderr=stderr,
                timeout=limit,
                stop=watcher.gave_up,
            )
        finally:
            finished.set()
            watcher.join()
        if watcher.killed or result.error is not None:
            self.remove(name)
        if watcher.killed == "timeout":
            return ProcessResult(
                result.exit_code, result.pid, timed_out=True, error=f"timed out after {timeout:g} s"
            )
        if watcher.killed == "stop":
            return ProcessResult(result.exit_code, result.pid, stopped=True, error="stopped")
        return ProcessResult(
            result.exit_code, result.pid, error=result.error or _exit_error(task, result, stderr)
        )

    def remove(self, name: str) -> None:
        """Kill the container ``name`` (SIGKILL, no grace) and remove it; gone already is fine."""
        self._cli("kill", name)
        self._cli("rm", "--force", name)

    def _cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [self.runtime, *args],
                capture_output=True,
                text=True,
                timeout=CLI_TIMEOUT_SECONDS,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return subprocess.CompletedProcess([self.runtime, *args], 125, "", str(exc))


DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def find_runtime(configured: str | None) -> str:
    """The runtime CLI to use: the setting, else podman, else docker."""
    candidates = [configured] if configured else ["podman", "docker"]
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    if configured:
        raise ContainerError(
            f"container runtime {configured!r} (RUNLEDGER_CONTAINER_RUNTIME) is not installed"
        )
    raise ContainerError("no container runtime: install podman or docker, or set RUNLEDGER_CONTAINER_RUNTIME")


def container_name(run_id: str, task: str, attempt: int) -> str:
    """A name for one attempt's container, unique per run, task and attempt."""
    safe = "".join(c if c.isalnum() or c in "_.-" else "-" for c in task)
    return f"runledger-{run_id}-{attempt}-{safe}"[:200]


class _Watcher(threading.Thread):
    """Kills the container when the run is stopped or the attempt's time is up."""

    def __init__(
        self,
        runner: ContainerRunner,
        name: str,
        timeout: float | None,
        stop: threading.Event,
        finished: threading.Event,
    ) -> None:
        super().__init__(name=f"watch-{name[:40]}", daemon=True)
        self.runner, self.container, self.timeout = runner, name, timeout
        self.stop, self.finished = stop, finished
        self.killed: str | None = None
        self.gave_up = threading.Event()  # the kill did not end the client: run_process ends it

    def run(self) -> None:
        waited = 0.0
        while not self.finished.wait(0.05):
            waited += 0.05
            if self.stop.is_set():
                self.killed = "stop"
            elif self.timeout is not None and waited >= self.timeout:
                self.killed = "timeout"
            if self.killed:
                self.runner.remove(self.container)
                log.info("container_killed", container=self.container, reason=self.killed)
                if not self.finished.wait(KILL_WAIT_SECONDS):
                    self.gave_up.set()
                return


def _limits(task: TaskSpec) -> list[str]:
    flags: list[str] = []
    if task.resources is not None and task.resources.cpus is not None:
        flags += ["--cpus", f"{task.resources.cpus:g}"]
    if task.resources is not None and task.resources.memory_mb is not None:
        memory = f"{task.resources.memory_mb}m"
        flags += ["--memory", memory, "--memory-swap", memory]
    return flags


def _exit_error(task: TaskSpec, result: ProcessResult, stderr: BinaryIO) -> str | None:
    code = result.exit_code
    if code == 0 or code is None:
        return None
    memory = task.resources.memory_mb if task.resources is not None else None
    if code == 137 and memory is not None:
        return (
            f"killed by SIGKILL (exit code 137) under a memory limit of {memory} MB: "
            "the task most likely ran out of memory"
        )
    if code in (125, 126, 127):
        meaning = {
            125: "the container runtime failed",
            126: "the command cannot be run",
            127: "command not found",
        }
        tail = _last_line(_read_tail(stderr))
        return f"{meaning[code]} (exit code {code})" + (f": {tail}" if tail else "")
    return None


def _digests(info: dict[str, Any]) -> set[str]:
    found = {str(info.get("Digest") or "")}
    found.update(str(d) for d in info.get("RepoDigests") or [])
    return {d.rsplit("sha256:", 1)[1] for d in found if "sha256:" in d}


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""


def _read_tail(handle: BinaryIO, size: int = 4096) -> str:
    """The end of a capture file, read through the executor's own descriptor."""
    try:
        end = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, end - size))
        return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
