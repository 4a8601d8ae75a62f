"""The bookkeeping every platform with remote trial runners shares.

The remote, SLURM, Kubernetes and cloud platforms all run trials in trial runners driven through
:class:`~nni.runtime.runner_client.RunnerClient`: submitted trials wait in a backlog until a
runner takes them, events come back from each runner, a cancel goes to the runner that has the
trial, and a trial whose runner is lost ends SYS_CANCELED with ``requeue=True``. They differ in
how a runner is launched (an SSH channel, a SLURM job, a Kubernetes job, a cloud job), how its
loss is noticed and what a runner can take, so :class:`RunnerPool` keeps the shared part and a
platform subclass provides:

* :meth:`RunnerPool._idle_runner`, :meth:`RunnerPool._hand_over` and
  :meth:`RunnerPool._launch_for_backlog`: which runner takes the next trial, handing it over
  (:meth:`RunnerPool._submit_to`), and launching runners for the trials left (or saying why they
  wait); :meth:`RunnerPool._dispatch` drives them;
* :meth:`RunnerPool._client_of`: the runner that has a trial (cancel, send_parameter);
* :meth:`RunnerPool._on_runner_state`: a runner's RUNNING / final event of a trial
  (:meth:`RunnerPool._forward` calls it);
* :meth:`RunnerPool._stop_runners` and :meth:`RunnerPool._release`: the two halves of
  :meth:`RunnerPool.stop`;
* optionally :meth:`RunnerPool._trial_workdir`, :meth:`RunnerPool._trial_url`,
  :meth:`RunnerPool._trial_spec` (what :meth:`RunnerPool.submit` records) and
  :meth:`RunnerPool._cancel_unstarted` (a trial promised to a runner that is not up yet).
"""
from __future__ import annotations

import abc
import asyncio
import logging
import shutil
from pathlib import Path
from typing import Any, Optional, Union

from nni.runtime.runner_client import RunnerClient, RunnerConnectionLost, RunnerError, RunnerTimeout
from nni.runtime.training_service import (
    ExperimentContext,
    MetricEvent,
    RequestNeverSatisfiable,
    StateEvent,
    TrainingService,
    TrialJobDetail,
    TrialJobStatus,
    TrialSpec,
    now_ms,
)

__all__ = ["RunnerPool", "RUNNER_ERRORS", "OUTPUT_FILES", "copy_output_files"]

_logger = logging.getLogger("nni.training_services.runner_pool")

#: What a call to a runner raises when the runner is gone, silent or refuses.
RUNNER_ERRORS = (RunnerConnectionLost, RunnerTimeout, RunnerError)
#: A trial's files that are copied into its folder in the experiment folder when it ends.
OUTPUT_FILES = ("stdout", "stderr", "trial.log")


def copy_output_files(source: Path, target: Path, trial_id: str, what: str = "", log=_logger.info) -> None:
    """Copy :data:`OUTPUT_FILES` from ``source`` to ``target`` (blocking); a missing file is logged with ``log``."""
    for name in OUTPUT_FILES:
        try:
            shutil.copyfile(source / name, target / name)
        except OSError as err:
            log("Trial %s: %s not copied%s: %s", trial_id, name, what, err)


class RunnerPool(TrainingService):
    """A training service whose trials run in trial runners (see the module docstring).

    Attributes kept here: ``_backlog`` (submitted trial ids no runner has taken, oldest first),
    ``_specs``, ``_owner`` (trial id -> the platform's runner object that took it),
    ``_cancelling`` (trials a cancel was sent for, until their status is final), ``_started``,
    ``_stopping``, ``_trials_dir`` (``<experiment dir>/trials``). A platform's :meth:`start` sets
    ``_started`` once runners can be launched and calls :meth:`_dispatch`.
    """

    is_multi_phase_job_supported = True

    def __init__(self, config: dict, context: ExperimentContext) -> None:
        super().__init__(config, context)
        self._specs: dict[str, TrialSpec] = {}
        self._owner: dict[str, Any] = {}
        self._backlog: list[str] = []
        self._cancelling: set[str] = set()
        self._handing_over: set[str] = set()  # given to a runner that has not taken it yet
        self._tasks: set[asyncio.Task] = set()
        self._started = False
        self._stopping = False
        self._trials_dir = Path(context.experiment_dir) / "trials"

    # ----- what a platform provides -----

    @abc.abstractmethod
    def _idle_runner(self, trial_id: str) -> Any:
        """The runner that should take ``trial_id`` now (``None``: none can)."""

    @abc.abstractmethod
    def _hand_over(self, runner: Any, trial_id: str) -> None:
        """Give a trial just taken off the backlog to ``runner`` (record it, submit it in the background)."""

    @abc.abstractmethod
    def _launch_for_backlog(self) -> None:
        """No runner takes the backlog's first trial: launch runners for the trials left, or say why they wait."""

    @abc.abstractmethod
    def _client_of(self, trial_id: str) -> Optional[RunnerClient]:
        """The connected runner that has ``trial_id`` (``None``: none has it now)."""

    @abc.abstractmethod
    def _on_runner_state(self, owner: Any, detail: TrialJobDetail, event: StateEvent) -> Any:
        """A runner's non-WAITING state event for an unfinished trial (may be a coroutine function)."""

    @abc.abstractmethod
    async def _stop_runners(self) -> None:
        """:meth:`stop`, after the backlog is cancelled: stop the runners and their jobs."""

    async def _release(self) -> None:
        """:meth:`stop`, last, once every trial is final: release listeners, clients, storage."""

    def _trial_workdir(self, trial_id: str) -> Path:
        """The trial's working folder as the manager records it."""
        return self._trials_dir / trial_id

    def _trial_url(self, trial_id: str) -> Optional[str]:
        return None

    def _trial_spec(self, spec: TrialSpec) -> TrialSpec:
        """The spec as runners get it."""
        return spec

    async def _cancel_unstarted(self, trial_id: str, final: TrialJobStatus) -> bool:
        """Cancel a trial promised to a runner that has not taken it yet; ``True`` when it was."""
        return False

    def _where(self, trial_id: str) -> str:
        """Where the trial runs, for log lines."""
        return str(self._owner.get(trial_id, "?"))

    # ----- TrainingService -----

    async def submit(self, spec: TrialSpec) -> TrialJobDetail:
        if self._stopping:
            raise RuntimeError(f"the {self.platform} training service is stopping")
        (self._trials_dir / spec.trial_id).mkdir(parents=True, exist_ok=True)
        detail = TrialJobDetail(id=spec.trial_id, status=TrialJobStatus.WAITING, sequence_id=spec.sequence_id,
                                submit_time=now_ms(), working_directory=str(self._trial_workdir(spec.trial_id)),
                                url=self._trial_url(spec.trial_id))
        self._trials[spec.trial_id] = detail
        self._specs[spec.trial_id] = self._trial_spec(spec)
        self._backlog.append(spec.trial_id)
        self._dispatch()
        return detail

    async def cancel(self, trial_id: str, early_stopped: bool = False, status: Optional[TrialJobStatus] = None) -> None:
        final = TrialJobStatus.EARLY_STOPPED if early_stopped else (status or TrialJobStatus.USER_CANCELED)
        detail = self._trials.get(trial_id)
        if detail is None or detail.status.is_final:
            return
        if trial_id in self._backlog:
            self._backlog.remove(trial_id)
            self._set_status(detail, final)
            return
        if await self._cancel_unstarted(trial_id, final):
            return
        if trial_id in self._handing_over:  # the runner may not know it yet: _submit_to cancels it there
            self._set_status(detail, final)
            return
        client = self._client_of(trial_id)
        if client is None:
            return
        self._cancelling.add(trial_id)
        try:
            await client.cancel(trial_id, early_stopped=early_stopped, status=status)
        except KeyError:  # not registered there yet: _submit_to cancels it once it is
            self._set_status(detail, final)
        except RUNNER_ERRORS as err:
            _logger.warning("Trial %s: cancel in %s failed: %s", trial_id, self._where(trial_id), err)

    async def send_parameter(self, trial_id: str, parameter: str) -> None:
        detail = self._trials[trial_id]
        if detail.status.is_final:
            return
        client = self._client_of(trial_id)
        if client is None:
            raise KeyError(trial_id)
        await client.send_parameter(trial_id, parameter)

    async def stop(self) -> None:
        self._stopping = True
        for trial_id in list(self._backlog):
            self._backlog.remove(trial_id)
            self._set_status(self._trials[trial_id], TrialJobStatus.SYS_CANCELED, "experiment stopped before the trial started")
        await self._stop_runners()
        if self._tasks:
            current = asyncio.current_task()
            await asyncio.gather(*[t for t in list(self._tasks) if t is not current], return_exceptions=True)
        for detail in self._trials.values():  # a runner that vanished cannot report its trials' end
            if not detail.status.is_final:
                self._set_status(detail, TrialJobStatus.SYS_CANCELED, "experiment stopped")
        await self._release()
        self._end_events()

    def _set_status(self, detail: TrialJobDetail, status: TrialJobStatus, *args: Any, **kwargs: Any) -> None:
        super()._set_status(detail, status, *args, **kwargs)
        if status.is_final:
            self._cancelling.discard(detail.id)

    # ----- helpers for platforms -----

    def _dispatch(self) -> None:
        """Hand backlog trials to idle runners, oldest first; launch runners for the rest.
        Nothing happens before :meth:`start` is done or while stopping."""
        if not self._started or self._stopping:
            return
        while self._backlog:
            runner = self._idle_runner(self._backlog[0])
            if runner is None:
                break
            trial_id = self._backlog.pop(0)
            self._handing_over.add(trial_id)  # until _submit_to has the runner's answer
            self._hand_over(runner, trial_id)
        self._launch_for_backlog()

    async def _submit_to(self, client: RunnerClient, trial_id: str, where: str) -> Union[TrialJobDetail, Exception]:
        """Hand ``trial_id`` to a runner: the runner's record of it, or the error when it did not start there.

        :class:`RequestNeverSatisfiable`: the trial is now FAILED (``"<where>: <reason>"``); a
        runner error or ``OSError``: the trial is untouched (the platform re-queues it or not).
        A trial cancelled while it was being handed over is cancelled on the runner."""
        detail = self._trials[trial_id]
        try:  # _dispatch marked it as being handed over
            remote = await client.submit(self._specs[trial_id])
        except RequestNeverSatisfiable as err:
            self._set_status(detail, TrialJobStatus.FAILED, f"{where}: {err}")
            return err
        except (*RUNNER_ERRORS, OSError) as err:
            return err
        finally:
            self._handing_over.discard(trial_id)
        if detail.status.is_final:  # cancelled while being handed over (see cancel)
            try:
                await client.cancel(trial_id, status=detail.status)
            except (KeyError, *RUNNER_ERRORS):
                pass
        return remote

    def _gpu_number(self, spec: TrialSpec) -> Optional[int]:
        """GPUs the trial asks for (its own number, else ``trialGpuNumber``)."""
        return spec.gpu_number if spec.gpu_number is not None else self.context.trial_gpu_number

    def _requeue_first(self, trial_id: str) -> None:
        """A trial that did not start goes back to the front of the backlog (unless it ended meanwhile)."""
        if not self._trials[trial_id].status.is_final:
            self._backlog.insert(0, trial_id)

    async def _forward(self, owner: Any, client: RunnerClient) -> str:
        """Forward a runner's events until its stream ends; returns why it ended.

        Metrics are emitted, WAITING events go to :meth:`_runner_waiting`, other states of
        unfinished trials and final states of any trial to :meth:`_on_runner_state` (which
        must free the runner on a final state; ``_set_status`` ignores a finished trial)."""
        async for event in client.events():
            detail = self._trials.get(event.trial_id)
            if detail is None:
                continue
            if isinstance(event, MetricEvent):
                self._emit(event)
                continue
            if detail.status.is_final:
                # its end on the runner: a trial cancelled while it was handed over (or one the
                # manager ended first) frees its runner too; the state is final already
                if event.status.is_final:
                    result = self._on_runner_state(owner, detail, event)
                    if asyncio.iscoroutine(result):
                        await result
                continue
            if event.status == TrialJobStatus.WAITING:
                self._runner_waiting(detail, event.message)
                continue
            result = self._on_runner_state(owner, detail, event)
            if asyncio.iscoroutine(result):
                await result
        return await client.closed

    def _runner_waiting(self, detail: TrialJobDetail, why: str) -> None:
        """A runner says why a trial it took waits (e.g. for a free GPU)."""
        self._waiting(detail, why)

    def _waiting(self, detail: TrialJobDetail, why: str) -> None:
        """Say (once) why a WAITING trial waits."""
        if detail.status == TrialJobStatus.WAITING and detail.message != why:
            detail.message = why
            self._emit(StateEvent(detail.id, TrialJobStatus.WAITING, now_ms(), why))

    def _note_waiting(self, why: str) -> None:
        """Say why every backlog trial waits."""
        for trial_id in self._backlog:
            self._waiting(self._trials[trial_id], why)

    def _requeue(self, detail: TrialJobDetail, why: str) -> None:
        """The trial's runner was lost under it: SYS_CANCELED, and the manager runs its parameters again."""
        self._set_status(detail, TrialJobStatus.SYS_CANCELED, why, requeue=True)

    def _spawn(self, coro) -> asyncio.Task:
        """Run ``coro`` in the background; :meth:`stop` waits for it."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
