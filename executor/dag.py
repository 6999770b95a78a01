"""Executing one claimed run: its directory, its file parameters, reuse on resume, and the
DAG of tasks scheduled in parallel, with retries, timeouts and cancellation.

One coordinator thread per run makes every write for the run (task reports, lease renewals,
the final state), so the run's writes never race each other; task attempts run on a thread
pool and only hand their evidence back.

Failure semantics (what Airflow and Dagster users expect):

* A task is retried up to ``max_retries`` times (task setting, else the workflow's), waiting
  ``retry_delay_seconds * 2 ** (attempt - 1)`` before attempt ``attempt + 1``. Each attempt
  is its own ``TaskStarted``/``TaskFinished`` pair with its attempt number.
* When a task with ``on_failure: fail`` (the default) has failed its last attempt, no new
  task is started; tasks already running finish, and the run ends ``failed``.
* When a task with ``on_failure: continue`` has failed its last attempt, the run goes on:
  tasks that depend on it still run (the task declared its failure acceptable to them).
  The run still ends ``failed`` (error names the task) when any task failed, as a run with a
  failed task is marked failed in Airflow and Dagster; only a run whose every task succeeded
  (or was reused) ends ``success``.
* A run timeout stops every running task's process group and fails the run; a task timeout
  fails that attempt (which may then be retried).
* Cancellation (``Run.Killed`` recorded by an operator) is noticed within
  ``STATUS_POLL_SECONDS``; every running task's process group is stopped (SIGTERM, then
  SIGKILL) and each attempt the ledger shows running is closed as ``killed`` with the
  evidence gathered up to the kill (exit status or signal, end time, stdout and stderr).
  Nothing else is written for the run. A run timeout closes its running attempts as
  ``killed`` too, then fails the run. Tasks that never started are ``skipped`` in the read
  model (derived there: nothing is recorded for a task that did not run).

Past 300 lines on purpose, for now: :class:`RunExecution` is one coordinator whose scheduling
loop, report batching and cancel handling share the run's state under one thread (that is what
keeps a run's writes from racing each other); splitting it means first giving that state an
object of its own, which is left for a later change.
"""

from __future__ import annotations

import shutil
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from executor.attempt import AttemptPlan, execute_attempt
from executor.cleanup import remove_run_dir
from executor.container import ContainerRunner
from executor.evidence import HOST, ExecutableHasher
from executor.image_pins import recorded_image_ids
from executor.reuse import ReuseError, restore_reused_tasks
from executor.sandbox import TaskUser, prepare_run_dir, task_environment
from executor.templating import (
    TemplateError,
    parameter_env,
    referenced_params,
    render_command,
)
from ledger.domain.definition import TaskSpec, WorkflowDefinition, parse_definition, topological_order
from ledger.domain.reports import (
    GateReachedReport,
    Report,
    RunStateReport,
    TaskFinishedReport,
    TaskStartedReport,
)
from ledger.domain.run import Run
from ledger.domain.status import TERMINAL, RunStatus, TaskStatus
from ledger.errors import Conflict, IllegalTransition, LedgerError, NotFound
from ledger.hashing import format_timestamp
from ledger.sensitive import HIDDEN, is_sealed
from ledger.service import Ledger
from ledger.store.filestore import CorruptFile, FileStore

STATUS_POLL_SECONDS = 0.5
#: Reports wait up to this long to be written together (fewer transactions); a task that ends
#: sooner has its TaskStarted and TaskFinished written in one go. Evidence timestamps come from
#: the worker, so the delay changes no recorded fact.
FLUSH_DELAY_SECONDS = 0.2
log = structlog.get_logger()


class RunAborted(Exception):
    """The run stopped being ours (killed, failed by the lease monitor, or taken over)."""


@dataclass
class _TaskState:
    spec: TaskSpec
    status: str = "waiting"  # waiting | running | success | failed | reused
    attempts: int = 0
    not_before: float = 0.0
    output_vars: dict[str, Any] = field(default_factory=dict)


class RunExecution:
    def __init__(
        self,
        ledger: Ledger,
        files: FileStore,
        run: Run,
        *,
        worker_id: str,
        task_slots: int,
        hasher: ExecutableHasher,
        user: TaskUser | None = None,
    ) -> None:
        self.ledger = ledger
        self.user = user
        self.files = files
        self.run = run
        self.run_id = run.id
        self.worker_id = worker_id
        self.task_slots = max(1, task_slots)
        self.hasher = hasher
        self.containers = ContainerRunner.from_settings(ledger.settings)
        self.image_pins: dict[str, str] = {}
        self.stop_event = threading.Event()  # stops every running process of the run
        self.abort_reason: str | None = None
        self.log = log.bind(run_id=run.id, worker_id=worker_id)
        settings = ledger.settings
        self.run_dir = settings.run_work_dir / run.id
        self.logs_dir = settings.run_work_dir / ".logs" / run.id
        self.lease_every = settings.lease_seconds / 3
        self._pending: list[Report] = []
        self._pending_since: float | None = None
        self._last_renewal = time.monotonic()
        self._last_poll = time.monotonic()
        #: Set once the run was cancelled under us: the attempts the ledger shows running
        #: (task -> attempt), which are all that may still be written, as ``killed``.
        self.cancelled: dict[str, int] | None = None

    # ---- entry point --------------------------------------------------------------------
    def abort(self, reason: str) -> None:
        """Stop the run from outside (worker shutting down): it is failed with ``reason``."""
        self.abort_reason = reason
        self.stop_event.set()

    def execute(self) -> str:
        """Run to the end; the run's final status as this worker saw it. The run's
        directory goes once it has ended (its outputs are stored by then), unless
        ``RUNLEDGER_KEEP_RUN_DIRS``; one left by a crash goes when an executor starts."""
        status = "abandoned"
        try:
            status = self._execute()
            return status
        except RunAborted as exc:
            self.stop_event.set()
            self.log.info("run_abandoned", reason=str(exc))
            return "abandoned"
        except Exception as exc:
            self.stop_event.set()
            self.log.exception("run_crashed")
            self._try_fail(f"executor error: {exc}")
            status = RunStatus.FAILED.value
            return status
        finally:
            # stdout/stderr are in the file store by now.
            shutil.rmtree(self.logs_dir, ignore_errors=True)
            if status in TERMINAL:
                remove_run_dir(self.ledger, self.run_id)

    def _execute(self) -> str:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        try:
            definition = parse_definition(self.run.definition)
        except LedgerError as exc:
            return self._finish_failed(f"invalid definition: {exc.detail}")
        try:
            params, file_inputs = self._place_file_params(definition)
        except (LedgerError, CorruptFile, OSError) as exc:
            return self._finish_failed(f"file parameter: {exc}")
        states = {t.name: _TaskState(t) for t in definition.tasks}
        order = topological_order(definition)
        if any(t.image for t in definition.tasks):
            self.image_pins = recorded_image_ids(self.ledger, self.run)
        prior_failures = self._continue_after_gate(states)
        if (
            self.run.trigger_kind == "resume"
            and self.run.resume_of
            and self.run.resume_from_task
            and not self.run.tasks
        ):
            try:
                reused = restore_reused_tasks(
                    self.ledger,
                    self.files,
                    definition,
                    source_run_id=self.run.resume_of,
                    from_task=self.run.resume_from_task,
                    run_dir=self.run_dir,
                )
            except (ReuseError, CorruptFile, LedgerError, OSError) as exc:
                return self._finish_failed(f"resume: {exc}")
            for report in reused:
                states[report.task].status = "reused"
                states[report.task].output_vars = dict(report.output_vars)
                self._pending.append(report)
        prepare_run_dir(self.run_dir, self.user)
        return self._schedule(definition, order, states, params, file_inputs, prior_failures)

    def _continue_after_gate(self, states: dict[str, _TaskState]) -> list[str]:
        """A run claimed again after its approval gate was signed (SPEC 10): the tasks it
        already finished keep their outcome (their files are in the run directory, which
        stays); the failures of ``on_failure: continue`` tasks still fail the run."""
        failures = []
        for name, recorded in self.run.tasks.items():
            state = states.get(name)
            if state is None:
                continue
            state.attempts = recorded.attempts
            if recorded.status in {TaskStatus.SUCCESS, TaskStatus.REUSED}:
                state.status = "reused" if recorded.status == TaskStatus.REUSED else "success"
                state.output_vars = dict(recorded.output_vars)
            elif recorded.status == TaskStatus.FAILED:
                state.status = "failed"
                failures.append(f"task {name!r} failed")
        if self.run.tasks:
            self.log.info("run_continued_after_gate", done=sorted(self.run.tasks))
        return failures

    # ---- the DAG ------------------------------------------------------------------------
    def _schedule(
        self,
        definition: WorkflowDefinition,
        order: list[str],
        states: dict[str, _TaskState],
        params: dict[str, Any],
        file_inputs: dict[str, dict[str, Any]],
        prior_failures: list[str],
    ) -> str:
        deadline = (
            None if definition.timeout_seconds is None else time.monotonic() + definition.timeout_seconds
        )
        env = task_environment(
            self.ledger.settings, params=parameter_env(params), run_id=self.run_id, run_dir=self.run_dir
        )
        running: dict[Future[TaskFinishedReport], _TaskState] = {}
        blocking_failure: str | None = None
        failures: list[str] = list(prior_failures)
        timed_out = False
        #: An approval gate ready to be reached: nothing new starts, and once the running
        #: tasks are done the run is let go at it (it holds no process or lease meanwhile).
        gate: _TaskState | None = None
        with ThreadPoolExecutor(
            max_workers=self.task_slots, thread_name_prefix=f"run-{self.run_id[:8]}"
        ) as pool:
            while True:
                now = time.monotonic()
                if deadline is not None and now >= deadline and not timed_out:
                    timed_out = True
                    self.stop_event.set()
                    self.log.info("run_timed_out", timeout=definition.timeout_seconds)
                stopping = timed_out or self.stop_event.is_set()
                if blocking_failure is None and not stopping and gate is None:
                    for name in order:
                        if len(running) >= self.task_slots:
                            break
                        state = states[name]
                        if state.status != "waiting" or state.not_before > now:
                            continue
                        if not all(
                            states[d].status in {"success", "reused", "failed"} for d in state.spec.depends_on
                        ):
                            continue
                        if state.spec.approval is not None:
                            gate = state
                            break
                        future = self._start(
                            pool, definition, state, states, params, file_inputs, env, deadline
                        )
                        if future is not None:
                            running[future] = state
                        else:  # the command could not even be rendered
                            failures.append(f"task {name!r} failed: template error")
                            if state.spec.on_failure == "fail":
                                blocking_failure = failures[-1]
                                break
                self._flush()
                if not running and gate is not None and blocking_failure is None and not stopping:
                    return self._reach_gate(gate)
                if not running and (
                    blocking_failure is not None
                    or stopping
                    or not any(s.status == "waiting" for s in states.values())
                ):
                    break
                timeout = STATUS_POLL_SECONDS
                if self._pending_since is not None:
                    timeout = min(timeout, self._pending_since + FLUSH_DELAY_SECONDS - now)
                waiting = [
                    s.not_before - now
                    for s in states.values()
                    if s.status == "waiting" and s.not_before > now
                ]
                if waiting:
                    timeout = min(timeout, *waiting)
                timeout = max(0.005, timeout)
                if not running:
                    self.stop_event.wait(timeout)
                done, _ = wait(list(running), timeout=timeout, return_when=FIRST_COMPLETED)
                if done and deadline is not None and time.monotonic() >= deadline:
                    timed_out = stopping = True  # the attempt hit the run's deadline
                    self.stop_event.set()
                for future in done:
                    state = running.pop(future)
                    report = future.result()
                    if stopping and report.status != "success":
                        reason = "run timed out" if timed_out else (self.abort_reason or "stopped")
                        if self.cancelled is not None:
                            reason = "run cancelled"
                        report = report.model_copy(update={"status": "killed", "error": reason})
                    self._pending.append(report)
                    failure = self._settle(definition, state, report, stopping)
                    if failure is not None:
                        failures.append(failure)
                        if state.spec.on_failure == "fail":
                            blocking_failure = failure
                self._poll_status()
        if self.cancelled is not None:
            self._flush(force=True)
            self.log.info("run_cancel_honoured", unclosed=sorted(self.cancelled))
            return RunStatus.KILLED.value
        if self.abort_reason is not None:
            return self._finish_failed(self.abort_reason)
        if timed_out:
            return self._finish_failed(f"run timed out after {definition.timeout_seconds:g} s")
        if blocking_failure is not None or failures:
            return self._finish_failed(blocking_failure or "; ".join(failures))
        self._pending.append(RunStateReport(type="run_succeeded"))
        self._flush(force=True)
        if self.cancelled is not None:  # cancelled as its last task ended
            self._flush(force=True)
            return RunStatus.KILLED.value
        self.log.info("run_succeeded")
        return RunStatus.SUCCESS.value

    def _reach_gate(self, gate: _TaskState) -> str:
        """Record ``Run.GateReached`` and let the run go: the signatures make it claimable."""
        self._pending.append(GateReachedReport(type="gate_reached", task=gate.spec.name))
        self._flush(force=True)
        if self.cancelled is not None:
            return RunStatus.KILLED.value
        self.log.info("run_waiting_at_gate", task=gate.spec.name)
        return RunStatus.WAITING.value

    def _start(
        self,
        pool: ThreadPoolExecutor,
        definition: WorkflowDefinition,
        state: _TaskState,
        states: dict[str, _TaskState],
        params: dict[str, Any],
        file_inputs: dict[str, dict[str, Any]],
        env: dict[str, str],
        deadline: float | None,
    ) -> Future[TaskFinishedReport] | None:
        spec = state.spec
        state.attempts += 1
        state.status = "running"
        started_at = format_timestamp(datetime.now(UTC))
        outputs = {name: s.output_vars for name, s in states.items() if s.status in {"success", "reused"}}
        try:
            command = render_command(spec.command, params, outputs)
            # The evidence shows a sensitive value as "[sensitive]"; the task gets the value.
            recorded = render_command(spec.command, self._masked(params), outputs)
        except TemplateError as exc:
            self._pending.append(
                TaskStartedReport(
                    type="task_started",
                    task=spec.name,
                    attempt=state.attempts,
                    command=list(spec.command),
                    host=HOST,
                    started_at=started_at,
                )
            )
            report = TaskFinishedReport(
                type="task_finished",
                task=spec.name,
                attempt=state.attempts,
                status="failed",
                command=list(spec.command),
                host=HOST,
                started_at=started_at,
                ended_at=started_at,
                duration_seconds=0.0,
                error=f"template: {exc}",
            )
            self._pending.append(report)
            state.status = "failed"
            return None
        self._pending.append(
            TaskStartedReport(
                type="task_started",
                task=spec.name,
                attempt=state.attempts,
                command=recorded,
                host=HOST,
                started_at=started_at,
            )
        )
        timeout = spec.timeout_seconds
        if deadline is not None:
            remaining = max(0.0, deadline - time.monotonic())
            timeout = remaining if timeout is None else min(timeout, remaining)
        plan = AttemptPlan(
            run_id=self.run_id,
            task=spec,
            attempt=state.attempts,
            command=command,
            recorded_command=recorded,
            env=env,
            run_dir=self.run_dir,
            logs_dir=self.logs_dir,
            started_at=started_at,
            timeout=None if spec.timeout_seconds is None and deadline is None else timeout,
            user=self.user,
            # A file parameter is an input of the tasks that name it in their command; one
            # that declares ``params/<name>`` in ``inputs`` hashes it with its other inputs.
            extra_inputs=[
                ref
                for name, ref in file_inputs.items()
                if name in referenced_params(spec.command) and ref["path"] not in spec.inputs
            ],
            pinned_image_id=self.image_pins.get(spec.name),
        )
        self.log.debug("task_started", task=spec.name, attempt=state.attempts)
        return pool.submit(
            execute_attempt,
            plan,
            files=self.files,
            hasher=self.hasher,
            stop=self.stop_event,
            containers=self.containers,
        )

    def _settle(
        self, definition: WorkflowDefinition, state: _TaskState, report: TaskFinishedReport, stopping: bool
    ) -> str | None:
        """Record an attempt's outcome in ``state``; a final failure's message, else None."""
        spec = state.spec
        if report.status == "success":
            state.status = "success"
            state.output_vars = dict(report.output_vars)
            return None
        max_retries = spec.max_retries if spec.max_retries is not None else definition.max_retries
        delay = (
            spec.retry_delay_seconds
            if spec.retry_delay_seconds is not None
            else definition.retry_delay_seconds
        )
        if not stopping and state.attempts <= max_retries:
            state.status = "waiting"
            state.not_before = time.monotonic() + delay * 2 ** (state.attempts - 1)
            self.log.info("task_retry_scheduled", task=spec.name, attempt=state.attempts, error=report.error)
            return None
        state.status = "failed"
        self.log.info("task_failed", task=spec.name, attempt=state.attempts, error=report.error)
        return f"task {spec.name!r} failed: {report.error}"

    # ---- writes -------------------------------------------------------------------------
    def _flush(self, *, force: bool = False) -> None:
        """Send the reports gathered so far in one atomic write (and renew the lease)."""
        if self.cancelled is not None:
            self._flush_cancelled()
            return
        ending = any(
            isinstance(r, GateReachedReport) or (isinstance(r, RunStateReport) and r.type != "lease_renewed")
            for r in self._pending
        )
        if not ending and time.monotonic() - self._last_renewal >= self.lease_every:
            self._pending.append(RunStateReport(type="lease_renewed"))
            force = True  # a renewal does not wait
        if not self._pending and not force:
            return
        now = time.monotonic()
        if self._pending_since is None:
            self._pending_since = now
        if not force and now - self._pending_since < FLUSH_DELAY_SECONDS:
            return
        reports, self._pending, self._pending_since = self._pending, [], None
        if not reports:
            return
        try:
            self.ledger.report(self.run_id, worker_id=self.worker_id, reports=reports)
        except (Conflict, IllegalTransition) as exc:
            self._check_still_ours()
            if self.cancelled is not None:  # cancelled meanwhile: keep what may still be said
                self._pending = reports + self._pending
                return
            raise RuntimeError(f"report refused while the run is still ours: {exc}") from exc
        if any(isinstance(r, RunStateReport) and r.type == "lease_renewed" for r in reports):
            self._last_renewal = time.monotonic()
        self._last_poll = time.monotonic()

    def _poll_status(self) -> None:
        if time.monotonic() - self._last_poll < STATUS_POLL_SECONDS:
            return
        self._last_poll = time.monotonic()
        self._check_still_ours()

    def _check_still_ours(self) -> None:
        try:
            run = self.ledger.get_run(self.run_id)
        except NotFound as exc:  # pragma: no cover - runs are never deleted
            raise RunAborted("run vanished") from exc
        if run.status == RunStatus.KILLED and run.worker_id == self.worker_id:
            if self.cancelled is None:
                self.cancelled = {
                    name: state.attempts
                    for name, state in run.tasks.items()
                    if state.status == TaskStatus.RUNNING
                }
                self.stop_event.set()
                self.log.info("run_cancel_noticed", running=sorted(self.cancelled))
            return
        if run.status != RunStatus.RUNNING or run.worker_id != self.worker_id:
            self.stop_event.set()
            raise RunAborted(f"run is {run.status.value}")

    def _flush_cancelled(self) -> None:
        """After a cancel: close the attempts the ledger shows running, as ``killed``."""
        assert self.cancelled is not None
        closing = [
            r.model_copy(update={"status": "killed", "error": r.error or "run cancelled"})
            for r in self._pending
            if isinstance(r, TaskFinishedReport) and self.cancelled.get(r.task) == r.attempt
        ]
        self._pending, self._pending_since = [], None
        if not closing:
            return
        try:
            self.ledger.report(self.run_id, worker_id=self.worker_id, reports=closing)
        except LedgerError as exc:
            self.log.warning("killed_attempts_not_recorded", error=str(exc))
            return
        for report in closing:
            self.cancelled.pop(report.task, None)

    def _finish_failed(self, error: str) -> str:
        self._pending.append(RunStateReport(type="run_failed", error=error[:10000]))
        self._flush(force=True)
        self.log.info("run_failed", error=error)
        return RunStatus.FAILED.value

    def _try_fail(self, error: str) -> None:
        try:
            self.ledger.fail_run(
                self.run_id, error=error[:10000], by=self.worker_id, worker_id=self.worker_id
            )
        except Exception:
            self.log.exception("run_fail_not_recorded")

    def _masked(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` with the run's sealed (sensitive) values shown as ``[sensitive]``."""
        sealed = {name for name, value in self.run.parameters.items() if is_sealed(value)}
        return {name: HIDDEN if name in sealed else value for name, value in params.items()}

    # ---- file parameters ----------------------------------------------------------------
    def _place_file_params(
        self, definition: WorkflowDefinition
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """Copy each ``file`` parameter to ``params/<name>`` after re-checking its hash."""
        params = self.ledger.run_parameters(self.run)  # sensitive values opened
        inputs: dict[str, dict[str, Any]] = {}
        for name, spec in definition.params.items():
            sha256 = params.get(name)
            if spec.type != "file" or sha256 is None:
                continue
            relative = f"params/{name}"
            size = self.files.copy_to(str(sha256), self.run_dir / relative)
            inputs[name] = {"path": relative, "sha256": sha256, "size": size}
            params[name] = relative
        return params, inputs


def run_dir_for(ledger: Ledger, run_id: str) -> Path:
    return ledger.settings.run_work_dir / run_id
