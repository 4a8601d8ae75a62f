"""The experiment engine: keeps ``trialConcurrency`` trials running and routes their results.

One :class:`TrialScheduler` per manager process, all on one asyncio loop. It connects three
parts: the store (every state change and metric is committed before it is acted on), the
dispatcher child process (tuner / assessor / advisor), and a training service.

Experiment states: INITIALIZED -> RUNNING -> NO_MORE_TRIAL (budget reached or tuner exhausted,
running trials finish) -> DONE; STOPPING -> STOPPED on request; ERROR when the dispatcher or
the training service fails (the message is in check-status). Raising ``maxTrialNumber`` or
``maxExperimentDuration`` of a NO_MORE_TRIAL / DONE experiment makes it RUNNING again.

A dispatcher that leaves its commands unread for ``NNI_DISPATCHER_TIMEOUT`` seconds (default
60; stopped, deadlocked or stuck in the algorithm) does not change the state: check-status
gets a ``warnings`` entry (shown by the web UI) and the log a warning; both clear when it reads
again. When the dispatcher dies the experiment is ERROR; trials still running when it is then
stopped become SYS_CANCELED with the reason, do not count toward ``maxTrialNumber`` and are
re-queued by ``resume``, as after a manager crash.

Budgets follow the docs: ``maxTrialNumber`` counts created trials (trials re-queued after a
manager crash replace the interrupted ones and do not count twice); ``maxExperimentDuration``
counts time spent RUNNING. Reaching either stops the creation of trials; running trials go on.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import string
import time
from pathlib import Path
from typing import Any, Optional

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

from .dispatcher_client import DispatcherClient
from .dispatcher_launch import EarlyDispatcher, dispatcher_env
from .resume import REQUEUE_EVENT
from .store import ExperimentStore, ExperimentsRegistry

_logger = logging.getLogger("nni.server.scheduler")

# Defined once in nni.runtime.states; the short names stay for this module and its importers.
ACTIVE = ACTIVE_STATES
FINAL = FINAL_STATES
_ID_CHARS = string.ascii_letters + string.digits
#: Most trials asked of the tuner, waiting for a slot or waiting in the training service at once.
REQUEST_BATCH = 32
DISPATCHER_TIMEOUT_ENV = "NNI_DISPATCHER_TIMEOUT"
DEFAULT_DISPATCHER_TIMEOUT = 60.0


def dispatcher_timeout() -> float:
    """Seconds a dispatcher may leave its commands unread before it is reported (env var)."""
    raw = os.environ.get(DISPATCHER_TIMEOUT_ENV)
    if not raw:
        return DEFAULT_DISPATCHER_TIMEOUT
    try:
        value = float(raw)
        if value > 0 and value == value and value != float("inf"):
            return value
    except ValueError:
        pass
    _logger.warning("%s=%r: expected a positive number of seconds; using %g", DISPATCHER_TIMEOUT_ENV, raw, DEFAULT_DISPATCHER_TIMEOUT)
    return DEFAULT_DISPATCHER_TIMEOUT


def new_trial_id(taken: set[str]) -> str:
    while True:
        tid = "".join(random.choices(_ID_CHARS, k=5))
        if tid not in taken:
            return tid


class EngineError(ValueError):
    """A request the engine refuses (REST answers 400 with the message)."""


class _Trial:
    __slots__ = ("id", "sequence_id", "status", "parameter", "parameter_id", "counted", "final_reported")

    def __init__(self, tid: str, seq: int, status: str, parameter: str, parameter_id: Any, counted: bool = True) -> None:
        self.id = tid
        self.sequence_id = seq
        self.status = status
        self.parameter = parameter
        self.parameter_id = parameter_id
        self.counted = counted
        self.final_reported = False


def _platform_config(config: dict) -> dict:
    ts = config.get("trainingService")
    if isinstance(ts, list):
        ts = ts[0] if ts else {}
    return ts or {}


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
        port: the REST port (for the registry).
        resume: continue an experiment whose store already has trials.
    """

    def __init__(
        self,
        experiment_id: str,
        experiment_dir: str,
        config: dict,
        store: ExperimentStore,
        training_service: TrainingService,
        registry: Optional[ExperimentsRegistry] = None,
        port: Optional[int] = None,
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
        self.port = port
        self.resume = resume
        self.status = "INITIALIZED"
        self.trials: dict[str, _Trial] = {}
        self.ready: list[tuple[str, str]] = []  # (TR payload, source) waiting for a free slot
        self.pending_requests = 0  # trials asked of the tuner (GE) and not received yet
        self.pending_custom = 0  # AD sent, TR not received yet
        self.tuner_exhausted = False
        self.generation = 0
        self.dispatcher: Optional[DispatcherClient] = None
        self.stopped = asyncio.Event()
        self._events_task: Optional[asyncio.Task] = None
        self._timer_task: Optional[asyncio.Task] = None
        self._initialized = asyncio.Event()
        self._run_started: Optional[float] = None  # monotonic time RUNNING began
        self._exec_base = 0.0  # seconds RUNNING before _run_started
        self._stop_lock = asyncio.Lock()
        self._requeue: list[str] = []  # parameter strings of trials interrupted by a crash
        self._active_ids: set[str] = set()
        self._counted_n = 0
        self._waiting_ids: set[str] = set()  # submitted, not started by the training service yet
        self._space_problem: Optional[str] = None  # why the stored search space was not sent
        self.warnings: list[str] = []  # transient problems (check-status ``warnings``), e.g. a stuck dispatcher
        self._stall_warning: Optional[str] = None
        self._watch_task: Optional[asyncio.Task] = None
        self._dispatcher_death: Optional[str] = None  # first line of the failure, once the dispatcher died
        self._interrupted: dict[str, str] = {}  # trial id -> why the manager cancels it (not counted)

    # ----- config values -----

    @property
    def concurrency(self) -> int:
        return int(self.config.get("trialConcurrency") or 1)

    @property
    def max_trial_number(self) -> Optional[int]:
        v = self.config.get("maxTrialNumber")
        return None if v is None else int(v)

    @property
    def max_duration(self) -> Optional[float]:
        v = self.config.get("maxExperimentDuration")
        return None if v is None else float(v)

    def exec_duration(self) -> float:
        extra = time.monotonic() - self._run_started if self._run_started is not None else 0.0
        return self._exec_base + extra

    def _active(self) -> int:
        return len(self._active_ids)

    def _counted(self) -> int:
        return self._counted_n

    def _track(self, t: _Trial) -> None:
        """Keep the active set and the counted total in step with ``t`` (O(1) budget checks)."""
        self.trials[t.id] = t
        if t.status in ACTIVE:
            self._active_ids.add(t.id)
        if t.status == "WAITING":
            self._waiting_ids.add(t.id)
        if t.counted:
            self._counted_n += 1

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
        self._events_task = asyncio.get_running_loop().create_task(self._consume_events())
        env = dispatcher_env(self.config, self.experiment_dir)
        self.dispatcher = DispatcherClient(self.config, self.log_dir, self._on_command, self._on_dispatcher_failure, env, self.early_dispatcher)
        await self.dispatcher.start()
        space, self._space_problem = self._checked_search_space()
        if self._space_problem is None:
            self.dispatcher.send(CommandType.Initialize, json.dumps(space))
        else:
            # A stored space that is no longer valid (older version, edited store) is reported,
            # not fatal: the manager serves the experiment and a valid update starts the run.
            self._set_status("ERROR", error=self._space_problem)
        self._timer_task = asyncio.get_running_loop().create_task(self._timer())
        self._watch_task = asyncio.get_running_loop().create_task(self._watch_dispatcher(dispatcher_timeout()))

    async def _watch_dispatcher(self, timeout: float) -> None:
        """Report a dispatcher that stopped reading its commands; clear it when it reads again."""
        interval = max(0.1, min(5.0, timeout / 4))
        while True:
            await asyncio.sleep(interval)
            dispatcher = self.dispatcher
            if dispatcher is None:
                continue
            try:
                stalled = dispatcher.stalled_for()
            except Exception:  # the watch must never take the manager down
                _logger.exception("Cannot check the dispatcher's liveness")
                continue
            if stalled >= timeout and self._stall_warning is None:
                pid = dispatcher.process.pid if dispatcher.process is not None else "?"
                self._stall_warning = (
                    f"the dispatcher (tuner/assessor, pid {pid}) has not read its commands for more than {timeout:g} s:"
                    f" it is stopped, deadlocked or stuck in the algorithm; no new parameters come until it answers"
                    f" (see dispatcher.log; {DISPATCHER_TIMEOUT_ENV} sets this limit)"
                )
                self.warnings.append(self._stall_warning)
                _logger.warning("Dispatcher not answering: %s", self._stall_warning)
            elif stalled == 0 and self._stall_warning is not None:
                self.warnings.remove(self._stall_warning)
                self._stall_warning = None
                _logger.info("Dispatcher answers again")

    def _checked_search_space(self) -> tuple[Any, Optional[str]]:
        """``(space, None)``, or ``(None, one-line problem)`` for a stored space the owner rejects.

        Only a resumed experiment is checked: a new one comes from the config loader, which
        ran the same check (and a custom tuner's module is not imported twice)."""
        from nni.experiment.config.search_space import check_search_space

        try:
            space = _search_space(self.config)
            if self.resume:
                check_search_space(self.config, space, "searchSpace")
        except (OSError, ValueError) as err:
            return None, f"{err} (the stored search space is invalid; fix it with nnictl update searchspace)"
        return space, None

    def _load_for_resume(self) -> None:
        row = self.store.experiment_row()
        self.generation = row.resume_count + 1
        self._exec_base = float(row.exec_duration or 0)
        self.store.update_experiment(resume_count=self.generation, end_time=None, errors=[])
        from .resume import recover_interrupted_trials

        self._requeue = recover_interrupted_trials(self.store, _logger)
        for r in self.store.trial_rows():
            self._track(_Trial(r.trial_id, r.sequence_id, r.status, r.parameter, r.parameter_id, r.counted))

    async def _on_initialized(self) -> None:
        if self.resume:
            data = self._replay_data()
            if data:
                self.dispatcher.send(CommandType.ImportData, json.dumps(data))
            for parameter in self._requeue:
                try:
                    params = json.loads(parameter).get("parameters")
                except (ValueError, AttributeError):
                    continue
                self.pending_custom += 1
                self.dispatcher.send(CommandType.AddCustomizedTrialJob, json.dumps(params))
            self._requeue = []
        self._set_status("RUNNING")
        self._initialized.set()
        self._refill()

    def _replay_data(self) -> list[dict]:
        """Finished trials of earlier runs, as ``FD`` items (``parameter_id`` keeps ids unique)."""
        items = []
        finals = {}
        for rec in self.store.metric_data(metric_type="FINAL"):
            finals.setdefault(rec["trialJobId"], rec)
        for row in self.store.trial_rows():
            rec = finals.get(row.trial_id)
            if rec is None:
                continue
            try:
                packed = json.loads(row.parameter)
            except ValueError:
                continue
            try:
                value = json.loads(rec["data"])
            except ValueError:
                value = rec["data"]
            items.append({"parameter": packed.get("parameters"), "value": value, "parameter_id": packed.get("parameter_id"), "trial_job_id": row.trial_id})
        items.extend(self.store.imported_data())
        return items

    def _set_status(self, status: str, error: Optional[str] = None) -> None:
        if status == self.status and not error:
            return
        # execDuration counts RUNNING time only (it pauses under NO_MORE_TRIAL, as the docs say)
        if self.status == "RUNNING" and status != "RUNNING" and self._run_started is not None:
            self._exec_base += time.monotonic() - self._run_started
            self._run_started = None
        if status == "RUNNING" and self._run_started is None:
            self._run_started = time.monotonic()
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

    # ----- creating trials -----

    def _budget_left(self) -> Optional[int]:
        if self.max_trial_number is None:
            return None
        return self.max_trial_number - self._counted()

    def _duration_reached(self) -> bool:
        return self.max_duration is not None and self.exec_duration() >= self.max_duration

    def _refill(self) -> None:
        """Start ready trials and ask the tuner for more, within concurrency and budgets."""
        if self.status not in SCHEDULING_STATES or not self._initialized.is_set():
            return
        budget_closed = self._duration_reached() or (self._budget_left() is not None and self._budget_left() <= 0)
        while self.ready and self._active() < self.concurrency:
            left = self._budget_left()
            if self._duration_reached() or (left is not None and left <= 0):
                break
            parameter, source = self.ready.pop(0)
            self._create_trial(parameter, source)
        budget_closed = self._duration_reached() or (self._budget_left() is not None and self._budget_left() <= 0)
        if not budget_closed and not self.tuner_exhausted:
            in_flight = len(self.ready) + self.pending_requests + self.pending_custom
            want = self.concurrency - self._active() - in_flight
            left = self._budget_left()
            if left is not None:
                want = min(want, left - in_flight)
            # Ask only for what the platform can start now: at most REQUEST_BATCH trials asked,
            # queued or submitted-but-not-started at a time. A huge trialConcurrency then costs
            # nothing; the next batch is asked as soon as trials start (or end).
            want = min(want, REQUEST_BATCH - in_flight - len(self._waiting_ids))
            if want > 0:
                self.pending_requests += want
                self.dispatcher.send(CommandType.RequestTrialJobs, str(want))
        self._check_done(budget_closed)

    def _check_done(self, budget_closed: bool) -> None:
        if self.status not in SCHEDULING_STATES:
            return
        no_more = budget_closed or (self.tuner_exhausted and not self.ready and self.pending_custom == 0)
        if not no_more:
            if self.status != "RUNNING":
                self._set_status("RUNNING")
            return
        if self._active() == 0 and self.pending_custom == 0:
            if self.status != "DONE":
                self._set_status("DONE")
        elif self.status != "NO_MORE_TRIAL":
            self._set_status("NO_MORE_TRIAL")

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
        self._track(_Trial(tid, seq, "WAITING", parameter, None if parameter_id is None else str(parameter_id)))
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
                if self.dispatcher is not None and self.status not in (ExperimentStatus.ERROR, ExperimentStatus.STOPPED):
                    self.dispatcher.send(CommandType.ReportMetricData, json.dumps(item))
            else:
                await self._apply_state(item)

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
        message = ev.message if (ev.message or status == "RUNNING") else None
        if status == "SYS_CANCELED" and t.id in self._interrupted:
            message = self._interrupted[t.id]
            if not t.final_reported and t.counted:
                fields["counted"] = False
                t.counted = False
                self._counted_n -= 1
        self.store.trial_state(ev.trial_id, status, ev.time, message, ev.exit_code, **fields)
        t.status = status
        if status in FINAL:
            self._active_ids.discard(t.id)
        if t.id in self._waiting_ids:  # it started (or ended): the platform may take more now
            self._waiting_ids.discard(t.id)
            if status not in FINAL:
                self._refill()
        if status in FINAL:
            if self.dispatcher is not None and self.status not in (ExperimentStatus.ERROR, ExperimentStatus.STOPPED):
                self.dispatcher.send(
                    CommandType.TrialEnd, json.dumps({"trial_job_id": t.id, "event": status, "hyper_params": t.parameter})
                )
            self._refill()

    # ----- dispatcher commands -----

    async def _on_command(self, command: CommandType, payload: str) -> None:
        if command == CommandType.Initialized:
            await self._on_initialized()
        elif command == CommandType.NewTrialJob:
            try:
                source = json.loads(payload).get("parameter_source") or "algorithm"
            except (ValueError, AttributeError):
                source = "algorithm"
            if source == "customized" and self.pending_custom > 0:
                self.pending_custom -= 1
            elif self.pending_requests > 0:
                self.pending_requests -= 1
            if self.status in HALTED_STATES:
                return
            self.ready.append((payload, source))
            self._refill()
        elif command == CommandType.NoMoreTrialJobs:
            self.tuner_exhausted = True
            self.pending_requests = 0
            self._refill()
        elif command == CommandType.KillTrialJob:
            trial_id = json.loads(payload) if payload.startswith('"') else payload
            t = self.trials.get(trial_id)
            if t is not None and t.final_reported:
                # it already reported its final result: the kill would only throw the result away
                _logger.info("Assessor asked to stop trial %s after its final result; ignored", trial_id)
            elif t is not None and t.status in ACTIVE:
                self.store.add_event(trial_id, "EARLY_STOP_REQUESTED", now_ms(), "assessor")
                await self.ts.cancel(trial_id, early_stopped=True)
        elif command == CommandType.SendTrialJobParameter:
            # multi-phase: the trial waits for the line of its next parameter_index
            try:
                trial_id = json.loads(payload).get("trial_job_id")
            except (ValueError, AttributeError):
                trial_id = None
            if trial_id in self.trials:
                path = os.path.join(self.experiment_dir, "trials", trial_id, "parameter.cfg")
                with open(path, "a", encoding="utf-8") as f:
                    f.write(payload + "\n")
                self.store.add_event(trial_id, "ADD_HYPERPARAMETER", now_ms(), payload)
        else:
            _logger.warning("Unexpected dispatcher command %s", command.name)

    async def _on_dispatcher_failure(self, message: str) -> None:
        self._dispatcher_death = (message.strip().splitlines() or ["dispatcher failed"])[0]
        if self._stall_warning is not None:  # superseded by the error
            self.warnings.remove(self._stall_warning)
            self._stall_warning = None
        await self._fail(message)

    async def _fail(self, message: str) -> None:
        """ERROR with ``message`` (shown by check-status and the web UI). The manager and its
        REST API stay up; no trial is created any more, but running trials are left to finish so
        their results are stored (``nnictl resume`` gives them to the fixed tuner);
        ``nnictl stop`` cancels them."""
        if self.status in HALTED_STATES and not (self.status == "ERROR" and self._space_problem is not None):
            return  # (while ERROR waits for a fixed search space, a later failure is reported too)
        _logger.error("Experiment failed: %s", message)
        self._set_status("ERROR", error=message)

    # ----- requests from the REST API -----

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
            self.dispatcher.send(CommandType.Initialize, json.dumps(space))
        else:
            self.dispatcher.send(CommandType.UpdateSearchSpace, json.dumps(space))

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
            if key in ("maxTrialNumber", "maxExperimentDuration") and self.status == "DONE":
                self.tuner_exhausted = False if not self.tuner_exhausted else self.tuner_exhausted
            self._refill()

    def add_customized_trial(self, parameters: dict) -> int:
        self._check_writable()
        if self.status == "ERROR":
            raise EngineError("the experiment is in ERROR; no trial can be added")
        left = self._budget_left()
        if left is not None and left - len(self.ready) - self.pending_requests - self.pending_custom <= 0:
            raise EngineError(f"maxTrialNumber ({self.max_trial_number}) reached; raise it to add a trial")
        self.pending_custom += 1
        seq = self.store.experiment_row().next_sequence_id + len(self.ready) + self.pending_custom - 1
        self.dispatcher.send(CommandType.AddCustomizedTrialJob, json.dumps(parameters))
        return seq

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
        if self.dispatcher is not None:
            self.dispatcher.send(CommandType.ImportData, json.dumps(data))

    async def stop(self) -> None:
        """Stop trials (USER_CANCELED), the dispatcher and the training service; STOPPED."""
        async with self._stop_lock:
            if self.stopped.is_set():
                return
            if self.status != "ERROR":
                self._set_status("STOPPING")
            for t in list(self.trials.values()):
                if t.status not in ACTIVE:
                    continue
                if self._dispatcher_death is not None:
                    # stopped because the experiment lost its dispatcher, not by the user's choice:
                    # like a manager crash, the trial is re-run by resume (unless its result is in)
                    reason = f"dispatcher died ({self._dispatcher_death}); stopped with the experiment"
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
                self._set_status("STOPPED")
            self.stopped.set()

    def context(self) -> ExperimentContext:
        return make_context(self.experiment_id, self.experiment_dir, self.config)


def make_context(experiment_id: str, experiment_dir: str, config: dict) -> ExperimentContext:
    return ExperimentContext(
        experiment_id=experiment_id,
        experiment_dir=str(experiment_dir),
        trial_command=config["trialCommand"],
        trial_code_directory=str(config.get("trialCodeDirectory") or "."),
        trial_gpu_number=config.get("trialGpuNumber"),
        max_trial_duration=config.get("maxTrialDuration"),
        debug=bool(config.get("debug")),
    )


__all__ = ["TrialScheduler", "EngineError", "RequestNeverSatisfiable", "make_context", "new_trial_id"]
