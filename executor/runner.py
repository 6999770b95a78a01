"""The one interface an attempt runs its command through: a local process or a container.

A runner first says what the attempt will run (:class:`Identity`, part of its evidence, known
before it starts; :class:`RunnerError` when it cannot run at all), then runs it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from executor.evidence import ExecutableHasher
from executor.process import ProcessResult, run_process
from executor.sandbox import TaskUser
from ledger.domain.definition import TaskSpec


class RunnerError(Exception):
    """The attempt's command cannot be started (no runtime, no such image, ...)."""


@dataclass(frozen=True)
class Identity:
    """What an attempt runs, resolved before it starts."""

    image: str | None = None
    image_hash: str | None = None
    executable: str | None = None
    executable_sha256: str | None = None


@dataclass(frozen=True)
class Launch:
    """One attempt's command and where it runs."""

    task: TaskSpec
    command: list[str]
    name: str  # unique per run, task and attempt
    env: dict[str, str]
    run_dir: Path
    outputs_file: Path
    #: The capture files, opened by the executor: the task writes to these descriptors.
    stdout: BinaryIO
    stderr: BinaryIO
    timeout: float | None
    #: A container task's image ID as recorded by the run this one replays (or resumes).
    pinned_image_id: str | None = None
    #: A local task runs as this user (``RUNLEDGER_TASK_USER``) when the server is root.
    user: TaskUser | None = None


class TaskRunner(Protocol):
    def identify(self, launch: Launch) -> Identity: ...

    def run(self, launch: Launch, identity: Identity, stop: threading.Event) -> ProcessResult: ...


class LocalRunner:
    """The command as a local process group (:func:`executor.process.run_process`)."""

    def __init__(self, hasher: ExecutableHasher) -> None:
        self.hasher = hasher

    def identify(self, launch: Launch) -> Identity:
        executable = self.hasher.resolve(launch.command[0], cwd=launch.run_dir, env=launch.env)
        digest = self.hasher.sha256(executable) if executable else None
        return Identity(executable=executable, executable_sha256=digest)

    def run(self, launch: Launch, identity: Identity, stop: threading.Event) -> ProcessResult:
        return run_process(
            launch.command,
            cwd=launch.run_dir,
            env=launch.env,
            stdout=launch.stdout,
            stderr=launch.stderr,
            timeout=launch.timeout,
            stop=stop,
            user=launch.user,
        )
