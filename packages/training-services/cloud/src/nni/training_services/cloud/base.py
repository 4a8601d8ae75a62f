"""What every cloud platform shares: jobs that run a trial runner which connects back.

A cloud training service never reaches its workers directly. For each *environment* it
submits one job (an OpenPAI job, an AML run, a PAI-DLC job, a DLTS job) whose command starts
the trial runner (``python3 -m nni.training_services.local.runner --connect HOST:PORT
--runner-id ID``; the secret token travels in the job's environment, never in its command
line). The runner connects to this service's :class:`~nni.runtime.runner_listener.RunnerListener`
and from then on trials are handed to it and its events come back over that connection,
exactly as with the remote platform's SSH channel.

Reuse mode (the default; the only mode of AML, DLC and DLTS): an environment runs one trial
at a time and takes the next queued trial when its trial ends, so an experiment holds at most
``trialConcurrency`` jobs. A new job is submitted only when a trial waits and no environment
is idle. Non-reuse mode (OpenPAI ``reuseMode: false``): one job per trial, runner ``--single``.

Faults: when a job ends (failed, stopped by someone, preempted) or its runner's connection
drops, the trial it ran becomes SYS_CANCELED with the platform's reason and ``requeue=True``
(the manager runs its parameters again). A job that ends *before its runner ever connected*
counts as a start failure; after :attr:`CloudTrainingService.max_start_failures` of them in a
row (no runner connected in between) its trial is FAILED instead, with the reason, so that a
wrong image or an unreachable ``nniManagerIp`` does not resubmit jobs forever. A submission the
service refuses (HTTP 4xx: bad credentials, unknown virtual cluster ...) fails the trial at once
with the service's message.

Job states are polled every ``poll_interval`` seconds (5; the environment variable
``NNI_CLOUD_POLL_INTERVAL`` overrides it). :meth:`stop` stops the runners, then cancels every
job it submitted.
"""
from __future__ import annotations

import abc
import asyncio
import dataclasses
import itertools
import logging
import os
import shlex
import shutil
from pathlib import Path
from typing import Optional

from nni.runtime.runner_client import RunnerClient, RunnerError
from nni.runtime.runner_listener import RunnerListener
from nni.runtime.training_service import (
    ExperimentContext,
    RequestNeverSatisfiable,
    StateEvent,
    TrialJobDetail,
    TrialJobStatus,
)
from nni.training_services.local.runner_pool import OUTPUT_FILES, RUNNER_ERRORS, RunnerPool, copy_output_files

__all__ = ["CloudTrainingService", "CloudApiError", "JobState", "RUNNER_MODULE", "OUTPUT_FILES"]

_logger = logging.getLogger("nni.training_services.cloud")

RUNNER_MODULE = "nni.training_services.local.runner"
_ENDED = ("succeeded", "failed", "stopped")


class CloudApiError(RuntimeError):
    """A call to the cloud service failed; ``str(err)`` is one line.

    ``retryable``: a network fault or a 5xx answer (try again later); otherwise the service
    refused the request (bad credentials, bad job) and retrying will not help."""

    def __init__(self, message: str, retryable: bool = False, status: Optional[int] = None) -> None:
        super().__init__(" ".join(str(message).split()))
        self.retryable = retryable
        self.status = status


@dataclasses.dataclass(frozen=True)
class JobState:
    """A job's state as a platform reports it, mapped onto five phases.

    ``phase``: ``waiting`` (queued, being scheduled), ``running``, ``succeeded``, ``failed``
    or ``stopped``; ``message``: the platform's own state name and reason."""

    phase: str
    message: str = ""

    @property
    def ended(self) -> bool:
        return self.phase in _ENDED


class _Env:
    """One job and the runner in it."""

    def __init__(self, env_id: str, trial: Optional[str], single: bool) -> None:
        self.id = env_id
        self.trial = trial  # the trial it runs (or starts for); None: idle
        self.single = single
        self.job_id: Optional[str] = None
        self.client: Optional[RunnerClient] = None
        self.abandoned = False  # stop() or a cancelled trial: cancel the job, hand it nothing
        self.dead = False
        self.job_cancelled = False


class CloudTrainingService(RunnerPool):
    """Base class of the cloud platforms (see the module docstring).

    A subclass sets :attr:`platform` and :attr:`display_name` and implements
    :meth:`_submit_job`, :meth:`_job_state`, :meth:`_cancel_job` and :meth:`_job_context`;
    it may override :meth:`_open`, :meth:`_prepare`, :meth:`_close`, :meth:`_job_url`,
    :meth:`_trial_files_dir` and :meth:`_runner_config`.

    Args:
        config: canonical ``trainingService`` mapping.
        context: the experiment.
        poll_interval: seconds between job-state polls (default 5 or ``NNI_CLOUD_POLL_INTERVAL``).
        manager_ip: the address runners connect to (default: ``nniManagerIp`` when the
            experiment sets it, else 127.0.0.1).
    """

    display_name = "cloud"
    #: jobs that may end before their runner connects, in a row, before trials fail instead
    max_start_failures = 3
    #: the Python a job runs the runner with
    python = "python3"

    def __init__(self, config: dict, context: ExperimentContext, poll_interval: Optional[float] = None,
                 manager_ip: Optional[str] = None) -> None:
        super().__init__(config, context)
        if poll_interval is None:
            try:
                poll_interval = float(os.environ.get("NNI_CLOUD_POLL_INTERVAL", "5"))
            except ValueError:
                poll_interval = 5.0
        self.poll_interval = max(0.05, poll_interval)
        self.manager_ip = manager_ip or getattr(context, "nni_manager_ip", None) or self.config.get("nniManagerIp") or "127.0.0.1"
        self.reuse = True
        self.listener: Optional[RunnerListener] = None
        self._envs: dict[str, _Env] = {}
        self._envs_at_stop: list[_Env] = []
        self._env_ids = itertools.count(1)
        self._start_failures = 0
        self._monitor_task: Optional[asyncio.Task] = None
        #: every job this service submitted: (job id, environment id), in order (for tests and logs)
        self.submitted_jobs: list[tuple[str, str]] = []

    # ----- what a platform provides -----

    async def _open(self) -> None:
        """Connect to the service (create clients); called first in :meth:`start`."""

    async def _prepare(self) -> None:
        """Put the trial code where jobs find it (called once in :meth:`start`)."""

    async def _close(self) -> None:
        """Release clients (last in :meth:`stop`)."""

    @abc.abstractmethod
    async def _submit_job(self, env_id: str, command: str, env_vars: dict, gpu_number: Optional[int]) -> str:
        """Submit one job running ``command`` (a bash command line) with ``env_vars``; returns its id."""

    @abc.abstractmethod
    async def _job_state(self, job_id: str) -> JobState:
        """The job's current state (:class:`CloudApiError` when it cannot be read)."""

    @abc.abstractmethod
    async def _cancel_job(self, job_id: str) -> None:
        """Stop the job (nothing when it already ended)."""

    @abc.abstractmethod
    def _job_context(self, env_id: str) -> ExperimentContext:
        """The experiment as the runner inside a job sees it (its paths)."""

    def _job_workdir(self) -> Optional[str]:
        """The folder the job's command starts in (``None``: the job's own)."""
        return None

    def _job_url(self, job_id: str) -> Optional[str]:
        """Where a user sees the job (the trial's ``url``)."""
        return None

    def _trial_files_dir(self, trial_id: str) -> Optional[Path]:
        """Where the trial's files are visible on this machine (``None``: not visible here)."""
        return None

    def _runner_config(self) -> dict:
        """Platform settings for the runner (``maxTrialNumberPerGpu``, ``useActiveGpu``)."""
        return {}

    # ----- lifecycle -----

    def check_request(self, gpu_number: Optional[int]) -> None:
        if gpu_number is not None and gpu_number < 0:
            raise RequestNeverSatisfiable(f"trialGpuNumber: must be 0 or more, got {gpu_number}")

    async def start(self) -> None:
        if self._started:
            return
        self._trials_dir.mkdir(parents=True, exist_ok=True)
        await self._open()
        await self._prepare()
        self.listener = RunnerListener(host=self.manager_ip)
        await self.listener.start()
        self._started = True
        self._monitor_task = self._spawn(self._monitor())
        self._dispatch()

    async def _stop_runners(self) -> None:
        envs = self._envs_at_stop = list(self._envs.values())
        for env in envs:
            env.abandoned = True
            if env.client is None and self.listener is not None:
                self.listener.forget(env.id)  # ends its wait for a runner at once
        if self._monitor_task is not None:
            self._monitor_task.cancel()
        await asyncio.gather(*(env.client.stop() for env in envs if env.client is not None), return_exceptions=True)
        await asyncio.gather(*(self._cancel_env_job(env) for env in envs), return_exceptions=True)

    async def _release(self) -> None:
        # jobs submitted while stopping (their submit call was in flight)
        await asyncio.gather(*(self._cancel_env_job(env) for env in self._envs_at_stop), return_exceptions=True)
        if self.listener is not None:
            await self.listener.close()
        await self._close()

    # ----- trials -----

    def _trial_workdir(self, trial_id: str) -> Path:
        files = self._trial_files_dir(trial_id)
        return files if files is not None else super()._trial_workdir(trial_id)

    def _client_of(self, trial_id: str) -> Optional[RunnerClient]:
        env = self._owner.get(trial_id)
        return env.client if env is not None else None

    def _where(self, trial_id: str) -> str:
        env = self._owner.get(trial_id)
        return f"{self.display_name} job {env.job_id if env is not None else '?'}"

    async def _cancel_unstarted(self, trial_id: str, final: TrialJobStatus) -> bool:
        env = self._owner.get(trial_id)
        if env is None or env.client is not None:
            return False
        # its job has not started yet: no point in starting it
        self._set_status(self._trials[trial_id], final)
        env.trial = None
        env.abandoned = True
        return True

    def _idle_runner(self, trial_id: str) -> Optional[_Env]:
        if not self.reuse:
            return None
        return next((e for e in self._envs.values() if e.client is not None and e.trial is None and not e.dead and not e.abandoned), None)

    def _hand_over(self, env: _Env, trial_id: str) -> None:
        env.trial = trial_id
        self._owner[trial_id] = env
        self._spawn(self._send(env, trial_id))

    def _launch_for_backlog(self) -> None:
        """Submit a job (a new environment) for each trial left over."""
        while self._backlog:
            trial_id = self._backlog.pop(0)
            env = _Env(f"{self.context.experiment_id}-{self.platform}-{next(self._env_ids)}", trial_id, single=not self.reuse)
            self._envs[env.id] = env
            self._owner[trial_id] = env
            self._spawn(self._start_env(env))

    def _runner_command(self, env: _Env) -> str:
        assert self.listener is not None
        argv = self.listener.runner_command(env.id, python=self.python, extra=("--single",) if env.single else ())
        command = " ".join(shlex.quote(a) for a in argv)
        workdir = self._job_workdir()
        if workdir:
            command = f"mkdir -p {shlex.quote(workdir)} && cd {shlex.quote(workdir)} && exec {command}"
        return command

    async def _start_env(self, env: _Env) -> None:
        assert self.listener is not None
        self.listener.expect(env.id)
        detail = self._trials.get(env.trial) if env.trial else None
        try:
            job_id = await self._submit_job(env.id, self._runner_command(env), self.listener.runner_env(env.id),
                                            self._gpu_number(self._specs[env.trial]) if env.trial else self.context.trial_gpu_number)
        except CloudApiError as err:
            self._env_failed(env, f"{self.display_name}: the job was not submitted: {err}", fatal=not err.retryable)
            return
        except Exception as err:  # noqa: BLE001 - an SDK's own exception types
            self._env_failed(env, f"{self.display_name}: the job was not submitted: {type(err).__name__}: {err}", fatal=True)
            return
        env.job_id = job_id
        self.submitted_jobs.append((job_id, env.id))
        _logger.info("%s job %s submitted for %s", self.display_name, job_id, env.trial or "a new environment")
        if env.abandoned:
            await self._cancel_env_job(env)
            self._drop_env(env)
            return
        if detail is not None and not detail.status.is_final:
            detail.url = self._job_url(job_id)
            self._waiting(detail, f"{self.display_name} job {job_id} submitted, waiting for it to start")
        client = await self._wait_connected(env)
        if client is None:
            return
        context = self._job_context(env.id)
        try:
            await client.hello(context, config=self._runner_config(), platform=self.platform)
        except RUNNER_ERRORS as err:
            await client.aclose()
            # RunnerError: the runner refused (e.g. another NNI version in the image): retrying will not help
            self._env_failed(env, f"the trial runner in {self.display_name} job {job_id} did not start: {err}",
                             fatal=isinstance(err, RunnerError))
            return
        env.client = client
        self._start_failures = 0
        self._spawn(self._pump(env, client))
        if env.abandoned:
            await self._retire(env)
            return
        if env.trial is not None:
            await self._send(env, env.trial)
        else:
            self._dispatch()

    async def _wait_connected(self, env: _Env) -> Optional[RunnerClient]:
        """The job's runner, once connected; ``None`` when the job ended first (handled here)."""
        assert self.listener is not None and env.job_id is not None
        waiter = asyncio.ensure_future(self.listener.wait_runner(env.id))
        last = ""
        try:
            while True:
                done, _ = await asyncio.wait({waiter}, timeout=self.poll_interval)
                if done:
                    try:
                        return waiter.result()
                    except asyncio.CancelledError:  # forgotten by stop()
                        return None
                if env.abandoned:
                    await self._cancel_env_job(env)
                    self._drop_env(env)
                    return None
                try:
                    state = await self._job_state(env.job_id)
                except CloudApiError as err:
                    _logger.warning("%s job %s: state unknown: %s", self.display_name, env.job_id, err)
                    continue
                if state.ended:
                    self._env_failed(env, f"{self.display_name} job {env.job_id} {state.phase} before its trial runner connected: {state.message}")
                    return None
                detail = self._trials.get(env.trial) if env.trial else None
                text = f"{self.display_name} job {env.job_id}: {state.message or state.phase}"
                if detail is not None and text != last:
                    last = text
                    self._waiting(detail, text)
        finally:
            if not waiter.done():
                waiter.cancel()

    def _env_failed(self, env: _Env, reason: str, fatal: bool = False) -> None:
        """The environment never got a runner: re-queue its trial, or fail it (see module doc)."""
        self._start_failures += 1
        too_many = self._start_failures >= self.max_start_failures
        _logger.warning("%s", reason)
        trial_id = env.trial
        self._drop_env(env)
        if env.job_id is not None:
            self._spawn(self._cancel_env_job(env))
        if trial_id is not None:
            detail = self._trials[trial_id]
            if fatal:
                self._set_status(detail, TrialJobStatus.FAILED, reason)
            elif too_many:
                self._set_status(detail, TrialJobStatus.FAILED,
                                 f"{reason} ({self._start_failures} jobs in a row ended before their runner connected; not retried)")
            else:
                self._set_status(detail, TrialJobStatus.SYS_CANCELED, reason, requeue=True)
        self._dispatch()

    def _drop_env(self, env: _Env) -> None:
        env.dead = True
        self._envs.pop(env.id, None)
        if self.listener is not None:
            self.listener.forget(env.id)
        if env.trial is not None and self._owner.get(env.trial) is env:
            self._owner.pop(env.trial, None)

    async def _send(self, env: _Env, trial_id: str) -> None:
        detail = self._trials[trial_id]
        client = env.client
        if detail.status.is_final or client is None:  # cancelled while its job started
            env.trial = None
            self._owner.pop(trial_id, None)
            if env.single:
                await self._retire(env)
            else:
                self._dispatch()
            return
        result = await self._submit_to(client, trial_id, f"{self.display_name} job {env.job_id}")
        if isinstance(result, RequestNeverSatisfiable):
            env.trial = None
            if env.single:
                await self._retire(env)
            self._dispatch()
        elif isinstance(result, Exception):
            # not started: the trial goes back to the front of the queue
            env.trial = None
            self._owner.pop(trial_id, None)
            self._requeue_first(trial_id)
            await self._env_lost(env, f"the trial runner in {self.display_name} job {env.job_id} failed: {result}")

    async def _pump(self, env: _Env, client: RunnerClient) -> None:
        closed = await self._forward(env, client)
        if env.dead:
            return
        if env.single and env.trial is None:  # its one trial ended; the job ends by itself
            self._drop_env(env)
            return
        if self._stopping or env.abandoned:
            self._drop_env(env)
            return
        await self._env_lost(env, closed)

    def _on_runner_state(self, env: _Env, detail: TrialJobDetail, event: StateEvent) -> None:
        self._set_status(detail, event.status, event.message, event.exit_code, event.time)
        if event.status.is_final:
            if env.trial == detail.id:
                env.trial = None
            self._owner.pop(detail.id, None)
            self._spawn(self._copy_output(detail.id))
            if not env.single:
                self._dispatch()

    async def _env_lost(self, env: _Env, fallback: str) -> None:
        """The runner's connection ended: find out why, re-queue its trial, cancel the job."""
        if env.dead:
            return
        env.dead = True
        reason = fallback
        if env.job_id is not None:
            reason = await self._ended_reason(env.job_id, fallback)
        self._drop_env(env)
        trial_id = env.trial
        env.trial = None
        if trial_id is not None:
            detail = self._trials[trial_id]
            if not detail.status.is_final:
                self._set_status(detail, TrialJobStatus.SYS_CANCELED, f"{reason}; the trial was stopped there", requeue=True)
        _logger.warning("%s environment %s lost: %s", self.display_name, env.id, reason)
        await self._cancel_env_job(env)
        self._dispatch()

    async def _ended_reason(self, job_id: str, fallback: str) -> str:
        """The platform's word on why a job's runner went away (it may take a poll or two)."""
        for _ in range(4):
            try:
                state = await self._job_state(job_id)
            except CloudApiError:
                state = None
            if state is not None and state.ended:
                return f"{self.display_name} job {job_id} {state.phase}: {state.message}"
            await asyncio.sleep(min(1.0, self.poll_interval))
        return f"{self.display_name} job {job_id}: the trial runner's connection was lost ({fallback})"

    async def _retire(self, env: _Env) -> None:
        """End an environment on purpose: stop its runner, cancel its job."""
        if env.dead:
            return
        env.abandoned = True
        self._drop_env(env)
        if env.client is not None:
            try:
                await env.client.stop()
            except Exception:  # noqa: BLE001 - best effort: the job is cancelled anyway
                pass
        await self._cancel_env_job(env)

    async def _cancel_env_job(self, env: _Env) -> None:
        if env.job_id is None or env.job_cancelled:
            return
        env.job_cancelled = True
        try:
            await self._cancel_job(env.job_id)
        except Exception as err:  # noqa: BLE001 - reported, never fatal
            env.job_cancelled = False
            _logger.warning("%s job %s could not be cancelled: %s", self.display_name, env.job_id, err)

    async def _monitor(self) -> None:
        """Poll the jobs of connected environments: a job that ended takes its trial with it."""
        while not self._stopping:
            await asyncio.sleep(self.poll_interval)
            for env in list(self._envs.values()):
                if env.client is None or env.dead or env.job_id is None or self._stopping:
                    continue
                try:
                    state = await self._job_state(env.job_id)
                except CloudApiError as err:
                    _logger.info("%s job %s: state unknown: %s", self.display_name, env.job_id, err)
                    continue
                if state.ended and not env.dead and not self._stopping:
                    await env.client.aclose()
                    await self._env_lost(env, state.message)

    # ----- helpers -----

    async def _copy_output(self, trial_id: str) -> None:
        source = self._trial_files_dir(trial_id)
        target = self._trials_dir / trial_id
        if source is None or source.resolve() == target.resolve():
            return

        await asyncio.get_running_loop().run_in_executor(None, copy_output_files, source, target, trial_id, " from the storage")


def copy_code(source: str, target: Path) -> int:
    """Copy the trial code folder to ``target`` (skipping ``.nniignore`` matches when the
    ``pathspec`` package is installed, and VCS folders); returns the number of files."""
    src = Path(source)
    ignore = None
    nniignore = src / ".nniignore"
    if nniignore.is_file():
        try:
            import pathspec

            ignore = pathspec.GitIgnoreSpec.from_lines(nniignore.read_text(encoding="utf-8").splitlines())
        except ImportError:
            _logger.warning(".nniignore is not applied: install pathspec")
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    count = 0
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if rel.parts[0] in (".git", ".hg", ".svn", "__pycache__"):
            continue
        text = rel.as_posix() + ("/" if path.is_dir() else "")
        if ignore is not None and ignore.match_file(text):
            continue
        if any(ignore is not None and ignore.match_file("/".join(rel.parts[:i]) + "/") for i in range(1, len(rel.parts))):
            continue
        dest = target / rel
        if path.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
        elif path.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
            count += 1
    return count
