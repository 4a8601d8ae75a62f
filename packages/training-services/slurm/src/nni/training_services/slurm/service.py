"""The ``slurm`` training service: trial runners as SLURM jobs that connect back to the manager.

Every trial runs in the one trial runner of every non-local platform
(``python -m nni.training_services.local.runner``); here each runner is a SLURM job submitted
with ``sbatch`` (one job per runner, no array jobs: each can be pending, cancelled, pre-empted
or timed out on its own). The job's batch script goes to the trial code, runs ``setupScript``
and execs the runner with ``--connect HOST:PORT --runner-id ID``; the runner connects to the
service's :class:`~nni.runtime.runner_listener.RunnerListener` (on ``nniManagerIp``,
127.0.0.1 by default) and authenticates with a token that reaches the job through the
environment sbatch exports (never in the script or on a command line).

Reuse mode (default): a runner runs one trial after another; runners are submitted as trials
wait for one, up to ``maxRunners`` (default: as many as trials run at once), and an idle runner
is released after ``idle_timeout`` seconds. ``reuseMode: false``: one job per trial
(``--single``). Either way a job asks for one trial's resources (``cpusPerTrial``,
``memoryPerTrial``, ``gpusPerTrial`` ...).

The cluster's file system is shared (as on every SLURM cluster): trials work in
``<experiment dir>/trials/<trial id>/`` as on the local platform, the batch scripts and the
jobs' output files (``--output``) are in ``<experiment dir>/slurm/``, and a trial's folder gets
a copy of the output of the job that ran it (``slurm-<job id>.out``: setup script output and the
runner's log).

Jobs are followed with ``squeue`` (pending reasons become the WAITING message of the trials
that wait; a job that ends before its runner connected is reported with its output's last
line) and ``scontrol show job`` (why a job ended). A trial whose job is cancelled, pre-empted,
hits its node's failure or its time limit while another trial had used part of the job ends
SYS_CANCELED with the reason and ``requeue=True``, so the manager runs its parameters again; a
trial that alone used up the job's ``timeLimit`` fails instead (it would time out again).
:meth:`~SlurmTrainingService.stop` stops the runners, cancels every job still known and waits
until ``squeue`` shows none of them.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Optional

from nni.runtime import runner_protocol as rp
from nni.runtime.runner_client import RunnerClient
from nni.runtime.runner_listener import RunnerListener
from nni.runtime.training_service import (
    ExperimentContext,
    RequestNeverSatisfiable,
    StateEvent,
    TrialJobDetail,
    TrialJobStatus,
    TrialSpec,
)
from nni.training_services.local.runner_pool import RUNNER_ERRORS, RunnerPool

from .commands import JobInfo, SlurmCommands, SlurmError, batch_script, sbatch_options, slurm_unavailable_reason
from .config import SlurmConfig

__all__ = ["SlurmTrainingService"]

_logger = logging.getLogger("nni.training_services.slurm")

#: Job states that mean SLURM (not the trial) ended the job: a trial that looked failed in such a
#: job was killed with it.
_ENDED_BY_SLURM = {"CANCELLED", "PREEMPTED", "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "REQUEUED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY"}
#: Runner jobs that end before connecting, in a row, after which a waiting trial fails with the reason.
START_FAILURES_BEFORE_GIVING_UP = 3


class _Runner:
    """One runner job, as the service sees it."""

    def __init__(self, runner_id: str) -> None:
        self.id = runner_id
        self.job_id: Optional[str] = None
        self.client: Optional[RunnerClient] = None
        self.job: Optional[JobInfo] = None  # last seen by squeue
        self.ended = False
        self.retiring = False  # stopped on purpose (idle, non-reuse after its trial)
        self.trial: Optional[str] = None  # the trial it runs now
        self.trials_run = 0
        self.submitted_at = time.monotonic()
        self.connected_at: Optional[float] = None
        self.idle_since = time.monotonic()
        self.output: Optional[Path] = None
        self.wait_task: Optional[asyncio.Task] = None

    @property
    def connected(self) -> bool:
        return self.client is not None and not self.ended

    def describe(self) -> str:
        return f"SLURM job {self.job_id}" if self.job_id else f"runner {self.id} (not submitted yet)"


class SlurmTrainingService(RunnerPool):
    """Runs trials in SLURM jobs (``platform: slurm``).

    Args:
        config: canonical ``trainingService`` mapping (see :class:`~.config.SlurmConfig`).
        context: the experiment.
        poll_interval: seconds between ``squeue`` calls while a job waits to start (and ten
            times that while every job runs).
        idle_timeout: reuse mode: seconds an idle runner job is kept for the next trial.
        commands: the SLURM command runner (its ``stats`` say how long SLURM calls took).
    """

    platform = "slurm"
    config_class = SlurmConfig

    def __init__(self, config: dict, context: ExperimentContext, poll_interval: float = 1.0,
                 idle_timeout: float = 120.0, commands: Optional[SlurmCommands] = None) -> None:
        super().__init__(config, context)
        self.reuse = self.config.get("reuseMode", True) is not False
        self.max_runners: Optional[int] = self.config.get("maxRunners") if self.reuse else None
        self.poll_interval = poll_interval
        self.idle_timeout = idle_timeout
        self.commands = commands or SlurmCommands()
        self.host = self.config.get("nniManagerIp") or "127.0.0.1"
        self.gpus = int(self.config.get("gpusPerTrial") or context.trial_gpu_number or 0)
        self._slurm_dir = Path(context.experiment_dir) / "slurm"
        self._listener: Optional[RunnerListener] = None
        self._runners: dict[str, _Runner] = {}
        self._runners_at_stop: list[_Runner] = []
        self._live_jobs: set[str] = set()  # submitted jobs not yet seen ended (stop waits for them)
        self._runner_count = 0
        self._watch_task: Optional[asyncio.Task] = None
        self._retry_task: Optional[asyncio.Task] = None  # a submission retried after sbatch failed
        self._wake = asyncio.Event()
        self._start_failures = 0
        self._submit_failures = 0
        self._retry_at = 0.0
        #: (runner id, seconds from sbatch to the runner's connection) for each runner
        self.start_latencies: list[tuple[str, float]] = []

    # ----- lifecycle -----

    def capacity(self) -> Optional[int]:
        return self.max_runners

    async def start(self) -> None:
        if self._started:
            return
        reason = slurm_unavailable_reason()
        if reason:
            raise SlurmError(f"trainingService (slurm): {reason}")
        self._slurm_dir.mkdir(parents=True, exist_ok=True)
        self._trials_dir.mkdir(parents=True, exist_ok=True)
        # Ask SLURM whether it would ever run such a job (bad partition, too much memory, GPUs the
        # cluster lacks ...): one line before any trial starts.
        probe = self._write_script("probe", ["true"])
        try:
            await self.commands.sbatch(self._job_options("probe"), str(probe), test_only=True)
        except SlurmError as err:
            raise SlurmError(f"trainingService (slurm): {err}") from None
        finally:
            probe.unlink(missing_ok=True)
        self._listener = RunnerListener(self.host, field="trainingService.nniManagerIp")
        await self._listener.start()
        self._started = True
        self._watch_task = self._spawn(self._watch())
        self._dispatch()

    async def _stop_runners(self) -> None:
        for task in (self._watch_task, self._retry_task):
            if task is not None:
                task.cancel()
        runners = self._runners_at_stop = list(self._runners.values())
        # let sbatch calls in flight finish (each then cancels its own job): a job submitted
        # while stopping must not be missed
        submitting = [r.wait_task for r in runners if r.job_id is None and not r.ended and r.wait_task is not None]
        await asyncio.gather(*submitting, return_exceptions=True)
        for r in runners:
            if r.client is None and r.wait_task is not None and not r.wait_task.done():
                r.wait_task.cancel()  # not connected yet: nothing to stop but its job
        jobs = sorted(self._live_jobs, key=int)
        try:
            # jobs whose runner never connected are just cancelled; connected runners stop
            # their trials and exit, which ends their jobs (scancel is for those that do not)
            await self.commands.scancel([r.job_id for r in runners if r.job_id and r.client is None])
            stops = [r.client.stop(timeout=30) for r in runners if r.connected]
            await asyncio.gather(*stops, return_exceptions=True)
            left = await self._wait_jobs_gone(jobs, timeout=5.0, warn=False)
            await self.commands.scancel(left)
            await self._wait_jobs_gone(left)
        except SlurmError as err:
            _logger.warning("Stopping the SLURM jobs: %s", err)

    async def _release(self) -> None:
        for r in self._runners_at_stop:
            self._collect_output(r)
        if self._listener is not None:
            await self._listener.close()
        self._write_stats()

    def stats(self) -> dict:
        """How much of the experiment went to SLURM: seconds and calls per command, jobs
        submitted, and seconds from ``sbatch`` to each runner's connection."""
        cmd = self.commands.stats
        return {
            "commands": {name: {"calls": cmd.calls[name], "seconds": round(cmd.seconds[name], 4)} for name in sorted(cmd.calls)},
            "jobs_submitted": self._runner_count,
            "job_start_latency_s": [round(s, 3) for _, s in self.start_latencies],
        }

    def _write_stats(self) -> None:
        # kept with the jobs' files: `slurm/stats.json` answers "how long did SLURM take?"
        try:
            (self._slurm_dir / "stats.json").write_text(json.dumps(self.stats(), indent=1))
        except OSError as err:
            _logger.info("SLURM statistics not written: %s", err)

    async def _wait_jobs_gone(self, jobs: list[str], timeout: float = 30.0, warn: bool = True) -> list[str]:
        """Wait until squeue shows none of ``jobs`` as pending or running; returns those left."""
        deadline = time.monotonic() + timeout
        left = list(jobs)
        while left:
            left = [j for j, info in (await self.commands.squeue(left)).items() if info.active]
            if not left or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        if left and warn:
            _logger.warning("SLURM jobs still listed by squeue %g s after scancel: %s", timeout, ", ".join(left))
        return left

    # ----- trials -----

    def _trial_spec(self, spec: TrialSpec) -> TrialSpec:
        # SLURM allocates the job's GPUs (and sets CUDA_VISIBLE_DEVICES in it); the runner must
        # not schedule GPUs again: no GPU number, or 0 to hide GPUs from a GPU-less trial.
        return dataclasses.replace(spec, gpu_number=None if self.gpus else 0)

    def _client_of(self, trial_id: str) -> Optional[RunnerClient]:
        runner = self._owner.get(trial_id)
        return runner.client if runner is not None and runner.connected else None

    def _where(self, trial_id: str) -> str:
        runner = self._owner.get(trial_id)
        return runner.describe() if runner is not None else "?"

    # ----- runners -----

    def _job_options(self, runner_id: str) -> list[str]:
        name = f"nni-{self.context.experiment_id}-{runner_id}"
        out = self._slurm_dir / f"{runner_id}-%j.out"
        return [f"--job-name={name}", f"--output={out}", f"--chdir={self._slurm_dir}", "--no-requeue",
                *sbatch_options(self.config)]

    def _runner_argv(self, runner_id: str) -> list[str]:
        assert self._listener is not None
        python = "python3" if self.config.get("pythonPath") else sys.executable
        return [python, "-m", rp.RUNNER_MODULE, *self._listener.runner_args(runner_id), *([] if self.reuse else ["--single"])]

    def _write_script(self, runner_id: str, argv: list[str]) -> Path:
        path = self._slurm_dir / f"{runner_id}.sbatch"
        path.write_text(batch_script(argv, self.context.trial_code_directory, self.config.get("setupScript"),
                                     self.config.get("pythonPath"), comment=f"NNI trial runner {runner_id} of experiment {self.context.experiment_id}"))
        return path

    def _idle_runner(self, trial_id: str) -> Optional[_Runner]:
        idle = [r for r in self._runners.values() if r.connected and r.trial is None and not r.retiring]
        return min(idle, key=lambda r: r.id) if idle else None

    def _launch_for_backlog(self) -> None:
        """Submit runner jobs for the trials no runner takes (up to ``maxRunners``)."""
        starting = [r for r in self._runners.values() if not r.ended and r.client is None]
        live = [r for r in self._runners.values() if not r.ended and not r.retiring]
        want = len(self._backlog) - len(starting)
        if self.max_runners is not None:
            want = min(want, self.max_runners - len(live))
        if want > 0 and time.monotonic() >= self._retry_at:
            for _ in range(want):
                self._launch()
        self._update_waiting()

    def _launch(self) -> None:
        self._runner_count += 1
        runner = _Runner(f"r{self._runner_count}")
        self._runners[runner.id] = runner
        runner.wait_task = self._spawn(self._run_job(runner))

    async def _run_job(self, runner: _Runner) -> None:
        """Submit the runner's job, wait for it to connect, then forward its events."""
        assert self._listener is not None
        self._listener.expect(runner.id)
        script = self._write_script(runner.id, self._runner_argv(runner.id))
        env = dict(self.commands.env if self.commands.env is not None else os.environ, **self._listener.runner_env(runner.id))
        try:
            runner.job_id = await self.commands.sbatch(self._job_options(runner.id), str(script), env=env)
        except SlurmError as err:
            self._submit_failures += 1
            delay = min(2 ** self._submit_failures, 60)
            self._retry_at = time.monotonic() + delay
            _logger.warning("Runner %s: %s; retrying in %d s", runner.id, err, delay)
            self._runner_ended(runner)
            self._note_waiting(f"sbatch failed ({err}); retrying in {delay} s")
            self._retry_task = self._spawn(self._dispatch_later(delay))
            return
        self._submit_failures = 0
        self._live_jobs.add(runner.job_id)
        if self._stopping:
            await self.commands.scancel([runner.job_id])
            return
        runner.submitted_at = time.monotonic()
        runner.output = self._slurm_dir / f"{runner.id}-{runner.job_id}.out"
        _logger.info("Runner %s submitted as SLURM job %s", runner.id, runner.job_id)
        self._wake.set()
        try:
            client = await self._listener.wait_runner(runner.id)
        except asyncio.CancelledError:  # the job ended before connecting, or the service stops
            return
        if runner.ended or self._stopping:
            await client.aclose()
            return
        try:
            context = dataclasses.replace(self.context, trial_gpu_number=None, shared_storage=None)
            await client.hello(context, platform="slurm")
        except (*RUNNER_ERRORS, ValueError) as err:
            _logger.warning("Runner %s (SLURM job %s) failed its hello: %s", runner.id, runner.job_id, err)
            await client.aclose()
            return  # its job ends; the watcher sees it
        runner.client = client
        runner.connected_at = runner.idle_since = time.monotonic()
        self.start_latencies.append((runner.id, runner.connected_at - runner.submitted_at))
        self._start_failures = 0
        self._dispatch()
        await self._pump(runner, client)

    async def _dispatch_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._dispatch()

    def _hand_over(self, runner: _Runner, trial_id: str) -> None:
        runner.trial = trial_id
        runner.trials_run += 1
        self._owner[trial_id] = runner
        detail = self._trials[trial_id]
        node = runner.job.node if runner.job else ""
        detail.url = f"slurm://{node or 'node'}/job/{runner.job_id}"
        self._spawn(self._send(runner, trial_id))

    async def _send(self, runner: _Runner, trial_id: str) -> None:
        result = await self._submit_to(runner.client, trial_id, runner.describe())  # type: ignore[arg-type]
        if isinstance(result, RequestNeverSatisfiable):
            self._trial_done(runner, trial_id)
        elif isinstance(result, Exception):
            # never started: back to the front of the queue for another runner
            if runner.trial == trial_id:
                runner.trial = None
            self._owner.pop(trial_id, None)
            if not self._trials[trial_id].status.is_final:
                _logger.warning("Trial %s could not be handed to %s (%s); it waits for another runner", trial_id, runner.describe(), result)
                self._requeue_first(trial_id)
                self._dispatch()

    async def _pump(self, runner: _Runner, client: RunnerClient) -> None:
        """Forward one runner's events until its connection ends."""
        reason = await self._forward(runner, client)
        runner.ended = True
        if self._stopping:
            return
        self._listener.forget(runner.id)  # type: ignore[union-attr]
        trial_id = runner.trial
        if runner.retiring and trial_id is None:
            self._collect_output(runner)
            self._runner_ended(runner)
            return
        job = await self._settled_job(runner)
        if trial_id is not None and not self._trials[trial_id].status.is_final:
            self._lose_trial(runner, trial_id, job, reason)
        self._collect_output(runner)
        self._runner_ended(runner)

    def _on_runner_state(self, runner: _Runner, detail: TrialJobDetail, event: StateEvent) -> None:
        if not event.status.is_final:
            self._set_status(detail, event.status, event.message, event.exit_code, event.time)
            return
        if detail.status.is_final:  # ended here first (cancelled while handed over): free the runner
            self._trial_done(runner, detail.id)
            return
        asked = detail.id in self._cancelling or self._stopping
        if event.status in (TrialJobStatus.SUCCEEDED, TrialJobStatus.EARLY_STOPPED, TrialJobStatus.USER_CANCELED) or asked:
            self._finish(runner, detail, event)
            return
        # FAILED or SYS_CANCELED that nobody asked for: when SLURM ends a job (scancel,
        # pre-emption, time limit) it signals the trial too, so the trial may look failed.
        # Ask SLURM before believing it.
        self._spawn(self._confirm_end(runner, detail, event))

    async def _confirm_end(self, runner: _Runner, detail: TrialJobDetail, event: StateEvent) -> None:
        try:
            job = await self.commands.job(runner.job_id) if runner.job_id else None
        except SlurmError as err:
            _logger.warning("Trial %s: cannot ask SLURM about job %s (%s); taking the runner's word", detail.id, runner.job_id, err)
            job = None
        if detail.status.is_final or runner.trial != detail.id:
            return  # the lost connection was handled meanwhile
        if job is not None and job.state == "COMPLETING":
            job = await self._settled_job(runner)
            if detail.status.is_final or runner.trial != detail.id:
                return
        if job is not None and job.state in _ENDED_BY_SLURM:
            self._lose_trial(runner, detail.id, job, event.message)
            return
        self._finish(runner, detail, event)

    def _finish(self, runner: _Runner, detail: TrialJobDetail, event: StateEvent) -> None:
        self._set_status(detail, event.status, event.message, event.exit_code, event.time)
        self._trial_done(runner, detail.id)

    def _trial_done(self, runner: _Runner, trial_id: str) -> None:
        if runner.trial == trial_id:
            runner.trial = None
            runner.idle_since = time.monotonic()
        self._copy_output(runner, trial_id)
        if not self.reuse:
            runner.retiring = True  # a --single runner exits after its trial
        self._dispatch()

    def _lose_trial(self, runner: _Runner, trial_id: str, job: Optional[JobInfo], reason: str) -> None:
        """The trial's job ended under it: re-queue it (or fail it when it would fail again)."""
        detail = self._trials[trial_id]
        state = job.describe() if job is not None else "gone from squeue"
        if job is not None and job.state == "TIMEOUT" and runner.trials_run <= 1:
            limit = self.config.get("timeLimit")
            which = f"timeLimit {limit:g} s" if limit else "the partition's default time limit"
            self._set_status(detail, TrialJobStatus.FAILED,
                             f"{runner.describe()} reached its time limit ({which}) while this trial ran alone in it; raise timeLimit")
        elif job is not None and job.state == "OUT_OF_MEMORY":
            self._set_status(detail, TrialJobStatus.FAILED, f"{runner.describe()} ran out of memory (memoryPerTrial); raise memoryPerTrial")
        else:
            self._set_status(detail, TrialJobStatus.SYS_CANCELED,
                             f"{runner.describe()} ended ({state}) while the trial ran on {job.node if job and job.node else 'its node'}; "
                             f"the runner said: {reason}", requeue=True)
        if runner.trial == trial_id:
            runner.trial = None
        self._copy_output(runner, trial_id)

    async def _settled_job(self, runner: _Runner, timeout: float = 10.0) -> Optional[JobInfo]:
        """The job's state once SLURM has decided how it ended (or ``None``: unknown)."""
        if not runner.job_id:
            return None
        deadline = time.monotonic() + timeout
        job = None
        while True:
            try:
                job = await self.commands.job(runner.job_id)
            except SlurmError as err:
                _logger.warning("Asking SLURM about job %s: %s", runner.job_id, err)
                return job
            if job is None or not job.active or time.monotonic() > deadline:
                return job
            await asyncio.sleep(0.2)

    def _runner_ended(self, runner: _Runner) -> None:
        runner.ended = True
        self._runners.pop(runner.id, None)
        if self._listener is not None:
            self._listener.forget(runner.id)
        if not self._stopping:
            self._dispatch()

    # ----- following jobs -----

    async def _watch(self) -> None:
        """squeue the jobs: pending reasons, jobs that die before connecting, idle runners."""
        while not self._stopping:
            waiting = [r for r in self._runners.values() if r.job_id and r.client is None and not r.ended]
            interval = self.poll_interval if waiting or self._backlog else self.poll_interval * 10
            try:
                await asyncio.wait_for(self._wake.wait(), interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            if self._stopping:
                return
            try:
                await self._poll()
            except SlurmError as err:
                _logger.warning("Following the SLURM jobs: %s", err)
                self._note_waiting(f"squeue failed: {err}")
            self._retire_idle()
            self._dispatch()

    async def _poll(self) -> None:
        runners = [r for r in self._runners.values() if r.job_id and not r.ended]
        if not runners and not self._live_jobs:
            return
        asked = {*self._live_jobs, *(r.job_id for r in runners)}
        jobs = await self.commands.squeue(asked)  # type: ignore[arg-type]
        # a job submitted while squeue ran was not asked about: it stays live (stop waits for it)
        self._live_jobs = {j for j in self._live_jobs if j not in asked or (j in jobs and jobs[j].active)}
        for r in runners:
            job = jobs.get(r.job_id)  # type: ignore[arg-type]
            if job is not None:
                r.job = job
            if r.client is not None or r.ended:
                continue
            if job is None or not job.active:
                self._job_failed_to_start(r, job)

    def _job_failed_to_start(self, runner: _Runner, job: Optional[JobInfo]) -> None:
        state = job.describe() if job is not None else "gone from squeue"
        tail = _last_line(runner.output)
        why = f"{runner.describe()} ended ({state}) before its trial runner connected" + (f": {tail}" if tail else "")
        _logger.warning("%s (batch script %s)", why, self._slurm_dir / f"{runner.id}.sbatch")
        if runner.wait_task is not None:
            runner.wait_task.cancel()
        self._runner_ended(runner)
        self._start_failures += 1
        if self._start_failures >= START_FAILURES_BEFORE_GIVING_UP and self._backlog:
            # Jobs keep dying (a broken setupScript, no Python or NNI on the nodes ...): say so
            # on a trial instead of submitting jobs forever.
            trial_id = self._backlog.pop(0)
            self._set_status(self._trials[trial_id], TrialJobStatus.FAILED, why)
            if runner.output is not None:
                self._copy_file(runner.output, trial_id, f"slurm-{runner.job_id}.out")
            self._start_failures = 0
        else:
            self._note_waiting(why + "; submitting another job")

    def _retire_idle(self) -> None:
        if not self.reuse:
            return
        now = time.monotonic()
        for r in list(self._runners.values()):
            if r.connected and r.trial is None and not r.retiring and now - r.idle_since > self.idle_timeout and not self._backlog:
                r.retiring = True
                _logger.info("Runner %s (%s) idle for %d s: released", r.id, r.describe(), self.idle_timeout)
                self._spawn(r.client.stop())  # type: ignore[union-attr]

    def _update_waiting(self) -> None:
        if not self._backlog or time.monotonic() < self._retry_at:
            return  # while sbatch is retried the trials keep its error as their reason
        starting = [r for r in self._runners.values() if not r.ended and r.client is None]
        if starting:
            parts = [f"{r.describe()} {r.job.describe() if r.job else 'submitted'}" for r in starting[:3]]
            more = f" (+{len(starting) - 3} more)" if len(starting) > 3 else ""
            why = "waiting for a SLURM job to start: " + "; ".join(parts) + more
        else:
            why = "waiting for a free SLURM runner" + (f" (maxRunners {self.max_runners})" if self.max_runners else "")
        self._note_waiting(why)

    # ----- output files -----

    def _copy_output(self, runner: _Runner, trial_id: str) -> None:
        if runner.output is not None:
            self._copy_file(runner.output, trial_id, f"slurm-{runner.job_id}.out")

    def _collect_output(self, runner: _Runner) -> None:
        """The job ended: its complete output goes to the folders of the trials it ran."""
        if runner.output is None:
            return
        for trial_id, owner in self._owner.items():
            if owner is runner:
                self._copy_file(runner.output, trial_id, f"slurm-{runner.job_id}.out")

    def _copy_file(self, source: Path, trial_id: str, name: str) -> None:
        try:
            shutil.copyfile(source, self._trials_dir / trial_id / name)
        except OSError as err:
            _logger.debug("Trial %s: %s not copied: %s", trial_id, source, err)

    # ----- clean-up (nnictl experiment delete / platform clean) -----

    @staticmethod
    async def remove_experiment_files(config: dict, experiment_id: str) -> list[str]:
        """``nnictl experiment delete``: cancel the experiment's jobs that SLURM still lists (its
        files are in the experiment folder, which nnictl removes); one line per problem."""
        commands = SlurmCommands()
        try:
            rc, out, err = await commands.run(["squeue", "--noheader", "--format=%i|%j"])
            if rc != 0:
                return [f"slurm: squeue failed: {err.strip()[-200:]}"]
            await commands.scancel(_experiment_jobs(out, lambda eid: eid == experiment_id))
        except SlurmError as err:
            return [f"slurm: {err}"]
        return []

    @classmethod
    def clean_platform(cls, config: dict, running: set) -> list[str]:
        """``nnictl platform clean``: cancel the runner jobs of experiments that are not in
        ``running`` (left by a manager that was killed); one line saying what was done."""
        commands = SlurmCommands()

        async def main() -> str:
            try:
                rc, out, err = await commands.run(["squeue", "--noheader", "--format=%i|%j"])
                if rc != 0:
                    return f"slurm: squeue failed: {err.strip()[-200:]}"
                jobs = _experiment_jobs(out, lambda eid: eid not in running)
                await commands.scancel(jobs)
            except SlurmError as err:
                return f"slurm: not cleaned: {err}"
            return f"slurm: cancelled {len(jobs)} job(s) of stopped experiments"

        return [asyncio.run(main())]


def _experiment_jobs(squeue_out: str, wanted) -> list[str]:
    """Job ids of ``squeue --format=%i|%j`` lines named ``nni-<experiment id>-<runner>`` whose
    experiment id passes ``wanted``."""
    ids = []
    for line in squeue_out.splitlines():
        job_id, _, name = line.strip().partition("|")
        experiment_id, _, runner = name[4:].rpartition("-")
        if name.startswith("nni-") and experiment_id and runner.startswith("r") and job_id.isdigit() and wanted(experiment_id):
            ids.append(job_id)
    return ids


def _last_line(path: Optional[Path]) -> str:
    if path is None:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""
