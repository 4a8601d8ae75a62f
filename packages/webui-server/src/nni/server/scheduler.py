"""The experiment engine: keeps ``trialConcurrency`` trials running and routes their results.

One :class:`TrialScheduler` per manager process, all on one asyncio loop. It is the thin
coordinator of four parts, each in its own module:

* :mod:`nni.server.budget` -- limits, the trial table and the experiment status machine
  (INITIALIZED -> RUNNING -> NO_MORE_TRIAL -> DONE; STOPPING -> STOPPED; ERROR);
* :mod:`nni.server.routing` -- the dispatcher (tuner / assessor / advisor) process: commands
  in and out, bounded requests, liveness warnings;
* the store (:mod:`nni.server.store`) -- every state change and metric is committed before it
  is acted on; the scheduler calls ``create_experiment``, ``experiment_row``,
  ``update_experiment``, ``set_status``, ``update_config``, ``add_trial``, ``update_trial``,
  ``trial_state``, ``trial_rows``, ``add_metrics``, ``add_event``, ``next_sequence_id``,
  ``add_imported_data`` and nothing else (a test holds it to this list);
* :mod:`nni.server.resume` -- what a resumed experiment replays and re-queues;

and the training service, through its contract (:mod:`nni.runtime.training_service`) only:
the scheduler never touches a trial's folder (multi-phase parameters go through
``TrainingService.send_parameter``), so every platform works the same.

When the dispatcher dies the experiment is ERROR; trials still running when it is then stopped
become SYS_CANCELED with the reason, do not count toward ``maxTrialNumber`` and are re-queued
by ``resume``, as after a manager crash. Running trials of an ERROR experiment are left to
finish so their results are stored.

A trial its platform lost (``StateEvent.requeue``: machine down, connection dropped) is
SYS_CANCELED with the platform's reason, not counted, and its parameter string is queued again
at once (same ``parameter_id``; the tuner gets no ``EN`` for it and waits for the re-run's
result). Its ``REQUEUE`` event is stored before, its ``REQUEUED`` event when the re-run is
created, so a resume in between runs it (once). Each trial row records its ``platform``.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import string
from pathlib import Path
from typing import Any, Optional

from nni.runtime.ids import random_id
from nni.runtime.protocol import CommandType
from nni.runtime.states import ACTIVE_STATES, ENDED_STATES, FINAL_STATES, HALTED_STATES, SCHEDULING_STATES, ExperimentStatus
from nni.runtime.training_service import (
    ExperimentContext,
    MetricEvent,
    RequestNeverSatisfiable,
    StateEvent,
    TrainingService,
    TrialJobStatus,
    TrialSpec,
    now_ms,
)

from .budget import Budget, TrialRecord
from .dispatcher_client import DispatcherClient
from .dispatcher_launch import EarlyDispatcher, dispatcher_env
from .resume import REQUEUE_EVENT, REQUEUED_EVENT, recover_interrupted_trials, replay_data
from .routing import REQUEST_BATCH, DispatcherRouter, dispatcher_timeout
from .store import ExperimentStore, ExperimentsRegistry

_logger = logging.getLogger("nni.server.scheduler")

# Defined once in nni.runtime.states; the short names stay for this module and its importers.
ACTIVE = ACTIVE_STATES
FINAL = FINAL_STATES
_ID_CHARS = string.ascii_letters + string.digits


def new_trial_id(taken: set[str]) -> str:
    while True:
        tid = random_id(5, _ID_CHARS)
        if tid not in taken:
            return tid


class EngineError(ValueError):
    """A request the engine refuses (REST answers 400 with the message)."""


def _search_space(config: dict) -> Any:
    space = config.get("searchSpace")
    if space is None and config.get("searchSpaceFile"):
        space = json.loads(Path(config["searchSpaceFile"]).read_text(encoding="utf-8"))
    return space if space is not None else {}


class TrialScheduler:
    """Runs one experiment.

    Args:
        experiment_id: the id.
        experiment_dir: ``<experimentWorkingDirectory>/<id>``.
        config: canonical config (camelCase); for a resume, the stored one.
        store: the opened store.
        training_service: the platform (not started yet).
        registry: the machine-wide registry to keep up to date.
        resume: continue an experiment whose store already has trials.
        early_dispatcher: a dispatcher started before the manager (adopted, not restarted).
    """

    def __init__(
        self,
        experiment_id: str,
        experiment_dir: str,
        config: dict,
        store: ExperimentStore,
        training_service: TrainingService,
        registry: Optional[ExperimentsRegistry] = None,
        resume: bool = False,
        early_dispatcher: Optional[EarlyDispatcher] = None,
    ) -> None:
        self.early_dispatcher = early_dispatcher
        self.experiment_id = experiment_id
        self.experiment_dir = str(experiment_dir)
        self.log_dir = os.path.join(self.experiment_dir, "log")
        self.config = config
        self.store = store
        self.ts = training_service
        self.registry = registry
        self.resume = resume
        self.status = "INITIALIZED"
        self.budget = Budget(lambda: self.config)
        self.router = DispatcherRouter(self)
        self.generation = 0
        self.stopped = asyncio.Event()
        self._events_task: Optional[asyncio.Task] = None
        self._timer_task: Optional[asyncio.Task] = None
        self._watch_task: Optional[asyncio.Task] = None
        self._initialized = asyncio.Event()
        self._stop_lock = asyncio.Lock()
        self._requeue: list[str] = []  # parameter strings of trials interrupted by a crash
        self._space_problem: Optional[str] = None  # why the stored search space was not sent
        self._interrupted: dict[str, str] = {}  # trial id -> why the manager cancels it (not counted)
        self._rerun_of: dict[str, list[str]] = {}  # parameter string -> ids of lost trials to re-run

    @property
    def dispatcher(self) -> Optional[DispatcherClient]:
        return self.router.client

    @property
    def warnings(self) -> list[str]:
        """Transient problems (check-status ``warnings``), e.g. a stuck dispatcher."""
        return self.router.warnings

    @property
    def trials(self) -> dict[str, TrialRecord]:
        return self.budget.trials

    def exec_duration(self) -> float:
        return self.budget.exec_duration()

    # ----- lifecycle -----

    async def start(self) -> None:
        """Open everything and start the first trials. Raises on a config the platform rejects."""
        gpu = self.config.get("trialGpuNumber")
        self.ts.check_request(gpu)  # a request that can never be met fails before anything runs
        if self.resume:
            self._load_for_resume()
        else:
            self.store.create_experiment(self.experiment_id, self.config, self.experiment_dir, now_ms(), "INITIALIZED")
        self._update_registry(status="INITIALIZED")
        await self.ts.start()
        loop = asyncio.get_running_loop()
        self._events_task = loop.create_task(self._consume_events())
        env = dispatcher_env(self.config, self.experiment_dir)
        self.router.client = DispatcherClient(self.config, self.log_dir, self.router.on_command, self._on_dispatcher_failure, env, self.early_dispatcher)
        await self.router.client.start()
        space, self._space_problem = self._checked_search_space()
        if self._space_problem is None:
            self.router.send(CommandType.Initialize, json.dumps(space))
        else:
            # A stored space that is no longer valid (older version, edited store) is reported,
            # not fatal: the manager serves the experiment and a valid update starts the run.
            self.set_status("ERROR", error=self._space_problem)
        self._timer_task = loop.create_task(self._timer())
        self._watch_task = loop.create_task(self.router.watch(dispatcher_timeout()))

    def _checked_search_space(self) -> tuple[Any, Optional[str]]:
        """``(space, None)``, or ``(None, one-line problem)`` for a stored space the owner rejects.

        Only a resumed experiment is checked: a new one comes from the config loader, which
        ran the same check (and a custom tuner's module is not imported twice)."""
        try:
            space = _search_space(self.config)
            if self.resume:
                # imported here: nni.experiment's config package costs a new experiment's first
                # trial ~0.1 s of start-up, and only a resume checks the stored space
                from nni.experiment.config.search_space import check_search_space

                check_search_space(self.config, space, "searchSpace")
        except (OSError, ValueError) as err:
            return None, f"{err} (the stored search space is invalid; fix it with nnictl update searchspace)"
        return space, None

    def _load_for_resume(self) -> None:
        row = self.store.experiment_row()
        self.generation = row.resume_count + 1
        self.budget.exec_base = float(row.exec_duration or 0)
        self.store.update_experiment(resume_count=self.generation, end_time=None, errors=[])
        self._requeue = recover_interrupted_trials(self.store, _logger)
        for r in self.store.trial_rows():
            self.budget.track(TrialRecord(r.trial_id, r.sequence_id, r.status, r.parameter, r.parameter_id, r.counted))

    def set_status(self, status: str, error: Optional[str] = None) -> None:
        """Move the experiment to ``status`` (stored, logged, in the registry)."""
        if status == self.status and not error:
            return
        self.budget.status_changed(self.status, status)
        end = now_ms() if status in ENDED_STATES else None
        self.store.set_status(status, end_time=end, error=error)
        if status == "RUNNING":
            self.store.update_experiment(end_time=None)
        self.store.update_experiment(exec_duration=int(self.exec_duration()))
        _logger.info("Experiment status %s -> %s%s", self.status, status, f": {error}" if error else "")
        self.status = status
        fields: dict[str, Any] = {"status": status}
        if end is not None:
            fields["end_time"] = end
        self._update_registry(**fields)

    def _update_registry(self, **fields: Any) -> None:
        if self.registry is None:
            return
        try:
            self.registry.upsert(self.experiment_id, **fields)
        except Exception as err:  # the registry is a convenience; never let it stop the run
            _logger.warning("Cannot update the experiments registry: %s", err)

    async def _timer(self) -> None:
        """Check the duration budget and keep execDuration in the store up to date."""
        while True:
            await asyncio.sleep(1.0)
            if self.status == "RUNNING":
                self.store.update_experiment(exec_duration=int(self.exec_duration()))
                self._refill()

    # ----- what the router asks (RouteTarget) -----

    async def on_initialized(self) -> None:
        if self.resume:
            data = replay_data(self.store)
            if data:
                self.router.send(CommandType.ImportData, json.dumps(data))
            for parameter in self._requeue:
                try:
                    params = json.loads(parameter).get("parameters")
                except (ValueError, AttributeError):
                    continue
                self.router.add_customized(params)
            self._requeue = []
        self.set_status("RUNNING")
        self._initialized.set()
        self._refill()

    def accepts_trials(self) -> bool:
        return self.status not in HALTED_STATES

    def on_trials_changed(self) -> None:
        self._refill()

    async def on_kill_requested(self, trial_id: str) -> None:
        t = self.trials.get(trial_id)
        if t is not None and t.final_reported:
            # it already reported its final result: the kill would only throw the result away
            _logger.info("Assessor asked to stop trial %s after its final result; ignored", trial_id)
        elif t is not None and t.status in ACTIVE:
            self.store.add_event(trial_id, "EARLY_STOP_REQUESTED", now_ms(), "assessor")
            await self.ts.cancel(trial_id, early_stopped=True)

    async def on_parameter(self, trial_id: str, payload: str) -> None:
        if trial_id not in self.trials:
            return
        try:
            await self.ts.send_parameter(trial_id, payload)
        except KeyError:  # submitted, but the platform has not registered it (yet): nothing waits
            _logger.warning("Trial %s is unknown to the training service; its next parameters are dropped", trial_id)
            return
        self.store.add_event(trial_id, "ADD_HYPERPARAMETER", now_ms(), payload)

    # ----- creating trials -----

    def _refill(self) -> None:
        """Start ready trials and ask the tuner for more, within concurrency and budgets."""
        if self.status not in SCHEDULING_STATES or not self._initialized.is_set():
            return
        router, budget = self.router, self.budget
        while router.ready and budget.may_start():
            parameter, source = router.ready.pop(0)
            self._create_trial(parameter, source)
        budget_closed = budget.closed()
        if not budget_closed and not router.tuner_exhausted:
            want = budget.to_request(router.in_flight(), REQUEST_BATCH)
            if want > 0:
                router.request_trials(want)
        if self.status in SCHEDULING_STATES:
            no_more = router.tuner_exhausted and not router.ready and router.pending_custom == 0
            status = budget.next_status(self.status, budget_closed, no_more, router.pending_custom > 0)
            if status is not None:
                self.set_status(status)

    def _create_trial(self, parameter: str, source: str) -> None:
        try:
            packed = json.loads(parameter)
        except ValueError:
            packed = {}
        tid = new_trial_id(set(self.trials))
        seq = self.store.next_sequence_id()
        trial_dir = os.path.join(self.experiment_dir, "trials", tid)
        submit = now_ms()
        parameter_id = packed.get("parameter_id") if isinstance(packed, dict) else None
        self.store.add_trial(tid, seq, parameter, parameter_id, submit, trial_dir, "WAITING", source, self.generation)
        if source == "requeued" and self._rerun_of.get(parameter):
            lost = self._rerun_of[parameter].pop(0)
            self.store.add_event(lost, REQUEUED_EVENT, submit, tid)  # re-run: resume must not queue it again
        self.budget.track(TrialRecord(tid, seq, "WAITING", parameter, None if parameter_id is None else str(parameter_id)))
        # multi-phase (v1 multiPhase): the trial asks for more parameters with REQUEST_PARAMETER
        env = {"MULTI_PHASE": "true"} if self.config.get("multiPhase") else {}
        spec = TrialSpec(trial_id=tid, sequence_id=seq, parameter=parameter, env=env)
        asyncio.get_running_loop().create_task(self._submit(spec))

    async def _submit(self, spec: TrialSpec) -> None:
        try:
            detail = await self.ts.submit(spec)
        except Exception as err:  # the platform refused: the trial failed, the experiment goes on
            if self.status in (ExperimentStatus.STOPPING, ExperimentStatus.STOPPED):
                await self._apply_state(StateEvent(spec.trial_id, TrialJobStatus.USER_CANCELED, now_ms(), "experiment stopped"))
                return
            _logger.exception("Cannot submit trial %s", spec.trial_id)
            await self._apply_state(StateEvent(spec.trial_id, TrialJobStatus.FAILED, now_ms(), f"cannot submit: {err}"))
            return
        if detail.message and detail.status == TrialJobStatus.WAITING:
            self.store.update_trial(spec.trial_id, message=detail.message)

    # ----- training-service events -----

    async def _consume_events(self) -> None:
        try:
            async for event in self.ts.events():
                batch = [event] + self.ts.get_nowait()
                await self._apply_batch(batch)
        except Exception:
            _logger.exception("Training-service event loop failed")
            await self._fail("training service failed; see nnimanager.log")

    async def _apply_batch(self, batch: list) -> None:
        # Metrics first, in one transaction, then the states in order; all committed before
        # anything is sent to the dispatcher.
        metric_rows = []
        to_dispatch = []
        for ev in batch:
            if isinstance(ev, MetricEvent):
                rec = ev.record
                t = self.trials.get(ev.trial_id)
                rec.setdefault("trial_job_id", ev.trial_id)
                if rec.get("type") == "REQUEST_PARAMETER":
                    to_dispatch.append(("ME", rec))
                    continue
                pid = rec.get("parameter_id")
                metric_rows.append(
                    {
                        "trial_id": ev.trial_id,
                        "parameter_id": None if pid is None else str(pid),
                        "type": rec.get("type", "PERIODICAL"),
                        "sequence": int(rec.get("sequence") or 0),
                        "data": rec.get("value") if isinstance(rec.get("value"), str) else json.dumps(rec.get("value")),
                        "timestamp": ev.time,
                    }
                )
                if rec.get("type") == "FINAL" and t is not None:
                    if t.final_reported:
                        continue
                    t.final_reported = True
                to_dispatch.append(("ME", rec))
            else:
                to_dispatch.append(("STATE", ev))
        if metric_rows:
            self.store.add_metrics(metric_rows)
        for kind, item in to_dispatch:
            if kind == "ME":
                if self._dispatcher_open():
                    self.router.send(CommandType.ReportMetricData, json.dumps(item))
            else:
                await self._apply_state(item)

    def _dispatcher_open(self) -> bool:
        """Results still go to the dispatcher (not after an error or the stop)."""
        return self.dispatcher is not None and self.status not in (ExperimentStatus.ERROR, ExperimentStatus.STOPPED)

    async def _apply_state(self, ev: StateEvent) -> None:
        t = self.trials.get(ev.trial_id)
        if t is None or t.status in FINAL:
            return
        status = ev.status.value
        if status == "WAITING":  # a (new) reason why the trial waits
            if ev.message:
                self.store.update_trial(ev.trial_id, message=ev.message)
            return
        fields: dict[str, Any] = {}
        detail = None
        try:
            detail = self.ts.get_trial_job(ev.trial_id)
        except KeyError:
            pass
        if detail is not None and status == "RUNNING":
            fields["pid"] = detail.pid
            fields["gpu_indices"] = ",".join(map(str, detail.gpu_indices)) if detail.gpu_indices else None
        if detail is not None and (status == "RUNNING" or status in FINAL):
            fields["platform"] = detail.platform or self.ts.platform
        message = ev.message if (ev.message or status == "RUNNING") else None
        rerun = False
        if status == "SYS_CANCELED" and t.id in self._interrupted:
            message = self._interrupted[t.id]
            if not t.final_reported and t.counted:
                fields["counted"] = False
                self.budget.uncount(t)
        elif status == "SYS_CANCELED" and ev.requeue:
            message, rerun = self._lost_by_platform(t, ev.message, ev.time)
            if rerun:
                fields["counted"] = False
        self.store.trial_state(ev.trial_id, status, ev.time, message, ev.exit_code, **fields)
        was_waiting = self.budget.set_trial_status(t, status)
        if was_waiting and status not in FINAL:  # it started: the platform may take more now
            self._refill()
        if rerun:
            # Same parameter string, so the same parameter_id: the tuner is told nothing (no EN);
            # to it the parameter is still running, and the re-run reports its result.
            self._rerun_of.setdefault(t.parameter, []).append(t.id)
            self.router.ready.insert(0, (t.parameter, "requeued"))
            self._refill()
        elif status in FINAL:
            if self._dispatcher_open():
                self.router.send(
                    CommandType.TrialEnd, json.dumps({"trial_job_id": t.id, "event": status, "hyper_params": t.parameter})
                )
            self._refill()

    def _lost_by_platform(self, t: TrialRecord, reason: str, when: int) -> tuple[str, bool]:
        """A trial the platform lost (``requeue``): ``(message, re-run it)``. Its REQUEUE event is
        stored first, so a manager crash before the re-run is created leaves it to resume."""
        reason = reason or "the training platform lost the trial"
        if t.final_reported:
            return reason + "; its final result is kept", False
        message = reason + "; not counted toward maxTrialNumber, its parameters were re-queued"
        self.store.add_event(t.id, REQUEUE_EVENT, when, message)
        self.budget.uncount(t)
        return message, True

    # ----- requests from the REST API -----

    async def _on_dispatcher_failure(self, message: str) -> None:
        self.router.on_death(message)
        await self._fail(message)

    async def _fail(self, message: str) -> None:
        """ERROR with ``message`` (shown by check-status and the web UI). The manager and its
        REST API stay up; no trial is created any more, but running trials are left to finish so
        their results are stored (``nnictl resume`` gives them to the fixed tuner);
        ``nnictl stop`` cancels them."""
        if self.status in HALTED_STATES and not (self.status == "ERROR" and self._space_problem is not None):
            return  # (while ERROR waits for a fixed search space, a later failure is reported too)
        _logger.error("Experiment failed: %s", message)
        self.set_status("ERROR", error=message)

    def _check_writable(self) -> None:
        if self.status in (ExperimentStatus.STOPPING, ExperimentStatus.STOPPED):
            raise EngineError(f"the experiment is {self.status}")

    # The limits are the config loader's (nni.experiment.config.limits): one check on every path.

    def update_trial_concurrency(self, value: Any) -> None:
        from nni.experiment.config.limits import check_trial_concurrency

        self._check_writable()
        try:
            value = check_trial_concurrency(value)
        except ValueError as err:
            raise EngineError(str(err)) from None
        self._update_config("trialConcurrency", value)

    def update_max_trial_number(self, value: Any) -> None:
        from nni.experiment.config.limits import check_max_trial_number

        self._check_writable()
        try:
            value = check_max_trial_number(value)
        except ValueError as err:
            raise EngineError(str(err)) from None
        self._update_config("maxTrialNumber", value)

    def update_max_duration(self, seconds: Any) -> None:
        from nni.experiment.config.limits import check_duration

        self._check_writable()
        try:
            seconds = check_duration(seconds)
        except ValueError as err:
            raise EngineError(str(err)) from None
        self._update_config("maxExperimentDuration", seconds)

    def update_search_space(self, space: Any) -> None:
        self._check_writable()
        # The format is determined by the tuner: the standard check for built-in algorithms,
        # the class's own hook (if any) for custom ones, which get any JSON value as written.
        from nni.experiment.config.search_space import check_search_space

        try:
            check_search_space(self.config, space, "searchSpace")
        except ValueError as err:
            raise EngineError(str(err)) from None
        self._update_config("searchSpace", space)
        if self.dispatcher is None:
            return
        if self._space_problem is not None:
            # resumed with a bad stored space: the dispatcher still waits for its first space
            _logger.info("Search space fixed; starting the dispatcher's run: %s", self._space_problem)
            self._space_problem = None
            self.router.send(CommandType.Initialize, json.dumps(space))
        else:
            self.router.send(CommandType.UpdateSearchSpace, json.dumps(space))

    def _update_config(self, key: str, value: Any) -> None:
        self.config = dict(self.config)
        self.config[key] = value
        if key == "searchSpace":
            self.config.pop("searchSpaceFile", None)
        self.store.update_config(self.config)
        # a search space may be 50 MB: never repr it whole into the log
        shown = repr(value) if key != "searchSpace" else f"a space of {len(value) if isinstance(value, (dict, list)) else 1} entries"
        _logger.info("Successfully update %s to %s", key, shown)
        if self.status in SCHEDULING_STATES:
            self._refill()

    def add_customized_trial(self, parameters: dict) -> int:
        self._check_writable()
        if self.status == "ERROR":
            raise EngineError("the experiment is in ERROR; no trial can be added")
        left = self.budget.left()
        if left is not None and left - self.router.in_flight() <= 0:
            raise EngineError(f"maxTrialNumber ({self.budget.max_trial_number}) reached; raise it to add a trial")
        self.router.add_customized(parameters)
        return self.store.experiment_row().next_sequence_id + len(self.router.ready) + self.router.pending_custom - 1

    async def cancel_trial(self, trial_id: str) -> None:
        t = self.trials.get(trial_id)
        if t is None:
            raise KeyError(trial_id)
        if t.status not in ACTIVE:
            return
        self.store.add_event(trial_id, "USER_TO_CANCEL", now_ms())
        await self.ts.cancel(trial_id, status=TrialJobStatus.USER_CANCELED)

    def import_data(self, data: list) -> None:
        self._check_writable()
        self.store.add_imported_data(data, now_ms())
        self.router.send(CommandType.ImportData, json.dumps(data))

    async def stop(self) -> None:
        """Stop trials (USER_CANCELED), the dispatcher and the training service; STOPPED."""
        async with self._stop_lock:
            if self.stopped.is_set():
                return
            if self.status != "ERROR":
                self.set_status("STOPPING")
            for t in list(self.trials.values()):
                if t.status not in ACTIVE:
                    continue
                if self.router.death is not None:
                    # stopped because the experiment lost its dispatcher, not by the user's choice:
                    # like a manager crash, the trial is re-run by resume (unless its result is in)
                    reason = f"dispatcher died ({self.router.death}); stopped with the experiment"
                    if t.final_reported:
                        reason += "; its final result is kept"
                    else:
                        reason += "; not counted toward maxTrialNumber, re-queued by nnictl resume"
                        self.store.add_event(t.id, REQUEUE_EVENT, now_ms(), reason)
                    self._interrupted[t.id] = reason
                    await self.ts.cancel(t.id, status=TrialJobStatus.SYS_CANCELED)
                else:
                    await self.ts.cancel(t.id, status=TrialJobStatus.USER_CANCELED)
            await self.ts.stop()
            if self._events_task is not None:
                try:
                    await asyncio.wait_for(self._events_task, 30)
                except (asyncio.TimeoutError, Exception):
                    _logger.warning("Training-service events did not drain in time")
            if self._timer_task is not None:
                self._timer_task.cancel()
            if self._watch_task is not None:
                self._watch_task.cancel()
            if self.dispatcher is not None:
                await self.dispatcher.terminate()
            if self.status == "ERROR":
                self.store.update_experiment(exec_duration=int(self.exec_duration()))
            else:
                self.set_status("STOPPED")
            self.stopped.set()


def make_context(experiment_id: str, experiment_dir: str, config: dict) -> ExperimentContext:
    """What the training service of this experiment is told about it."""
    return ExperimentContext(
        experiment_id=experiment_id,
        experiment_dir=str(experiment_dir),
        trial_command=config["trialCommand"],
        trial_code_directory=str(config.get("trialCodeDirectory") or "."),
        trial_gpu_number=config.get("trialGpuNumber"),
        max_trial_duration=config.get("maxTrialDuration"),
        debug=bool(config.get("debug")),
        shared_storage=config.get("sharedStorage"),
        nni_manager_ip=config.get("nniManagerIp"),
        trial_concurrency=config.get("trialConcurrency"),
    )


__all__ = ["TrialScheduler", "EngineError", "RequestNeverSatisfiable", "make_context", "new_trial_id", "REQUEST_BATCH"]
