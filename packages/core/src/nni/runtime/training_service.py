"""The interface between the experiment manager and a training platform.

A Python port of NNI's ``TrainingService`` (``trainingService.ts``): the manager submits trials,
cancels them, asks for their details, and reads one async feed of events (a trial changed
state, a trial reported a metric record). Platform packages (``nni.training_services.<name>``)
subclass :class:`TrainingService` and register it under the entry-point group
``nni.training_services``; core ships the contract tests every implementation runs
(:mod:`nni.testing.training_service`).

Lifecycle, as the manager drives it::

    ts = TsClass(platform_config, ExperimentContext(...))
    ts.check_request(gpu_number)          # fail fast: can this request ever be met?
    await ts.start()                      # background loops (status polling, metric tailing)
    detail = await ts.submit(TrialSpec(...))
    async for event in ts.events(): ...   # StateEvent / MetricEvent, in order per trial
    await ts.send_parameter(trial_id, line)  # multi-phase: the next set a trial asked for
    await ts.cancel(trial_id, early_stopped=True)
    await ts.stop()                       # cancel what runs, free resources (cleanUp)

A platform that loses a trial for a reason outside the trial (its machine went down, its
connection dropped) ends it with ``StateEvent(..., SYS_CANCELED, message=<why>, requeue=True)``:
the manager records the trial SYS_CANCELED with that message, does not count it toward
``maxTrialNumber`` and runs its parameters again as a new trial (unless it had already reported
its final result, which is then kept). :meth:`TrainingService.capacity` tells a hybrid service
how many trials a platform runs at once.

Nothing here imports the server; the manager imports this module, never the reverse.
"""
from __future__ import annotations

import abc
import asyncio
import time
from dataclasses import asdict, dataclass, field
from typing import Any, AsyncIterator, Optional, Union

# The states are defined once in nni.runtime.states; re-exported here, where platforms look for them.
from .states import ACTIVE_STATES, FINAL_STATES, TrialJobStatus  # noqa: F401


def now_ms() -> int:
    """Epoch milliseconds, the time unit of every NNI timestamp."""
    return int(time.time() * 1000)


@dataclass(frozen=True)
class ExperimentContext:
    """What a training service knows about the experiment it serves.

    Args:
        experiment_id: the 8-character experiment id (``NNI_EXP_ID``).
        experiment_dir: ``<experimentWorkingDirectory>/<experiment_id>``; trials live under
            ``trials/<trial_id>/`` there.
        trial_command: ``trialCommand`` of the config.
        trial_code_directory: absolute ``trialCodeDirectory``.
        trial_gpu_number: ``trialGpuNumber`` (``None``: not GPU-scheduled).
        max_trial_duration: seconds after which a running trial is stopped, or ``None``.
        debug: the config's ``debug``.
        shared_storage: the canonical ``sharedStorage`` mapping of the config, or ``None``
            (platforms that support it mount it and put trial folders there).
        nni_manager_ip: the experiment's ``nniManagerIp`` (the address workers started
            elsewhere connect back to), or ``None``.
        trial_concurrency: ``trialConcurrency`` when the experiment started, or ``None``
            (platforms that start workers ahead of the first trial start this many).
    """

    experiment_id: str
    experiment_dir: str
    trial_command: str
    trial_code_directory: str
    trial_gpu_number: Optional[int] = None
    max_trial_duration: Optional[float] = None
    debug: bool = False
    shared_storage: Optional[dict] = None
    nni_manager_ip: Optional[str] = None
    trial_concurrency: Optional[int] = None


@dataclass
class TrialSpec:
    """A trial to run (NNI's ``TrialJobApplicationForm`` plus what the manager decided).

    Args:
        trial_id: 5-character id chosen by the manager (``NNI_TRIAL_JOB_ID``).
        sequence_id: 0-based submission order (``NNI_TRIAL_SEQ_ID``).
        parameter: the exact string the dispatcher sent in ``TR`` (written to ``parameter.cfg``).
        command: shell command; defaults to the experiment's ``trialCommand``.
        code_directory: working directory; defaults to ``trialCodeDirectory``.
        env: extra environment variables for this trial.
        gpu_number: GPUs to reserve; defaults to ``trialGpuNumber``.
    """

    trial_id: str
    sequence_id: int
    parameter: str
    command: Optional[str] = None
    code_directory: Optional[str] = None
    env: dict = field(default_factory=dict)
    gpu_number: Optional[int] = None


@dataclass
class TrialJobDetail:
    """A trial as its training service sees it (NNI's ``TrialJobDetail``).

    ``message`` says why a WAITING trial waits and, for a FAILED one, holds the tail of its
    stderr. Times are epoch milliseconds.
    """

    id: str
    status: TrialJobStatus
    sequence_id: int
    submit_time: int
    working_directory: str
    start_time: Optional[int] = None
    end_time: Optional[int] = None
    url: Optional[str] = None
    message: str = ""
    exit_code: Optional[int] = None
    is_early_stopped: bool = False
    gpu_indices: Optional[list] = None
    pid: Optional[int] = None
    #: The platform that runs the trial (a hybrid service sets it; ``""``: the service's own).
    platform: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["status"] = self.status.value
        return d


@dataclass(frozen=True)
class StateEvent:
    """A trial entered ``status`` at ``time`` (ms). ``message``: waiting reason or error tail.

    A WAITING event may repeat for the same trial when the reason it waits changes.
    ``requeue`` (with SYS_CANCELED only): the platform lost the trial through no fault of the
    trial (machine down, connection dropped; ``message`` says which); the manager runs its
    parameters again and does not count it toward ``maxTrialNumber``."""

    trial_id: str
    status: TrialJobStatus
    time: int
    message: str = ""
    exit_code: Optional[int] = None
    requeue: bool = False


@dataclass(frozen=True)
class MetricEvent:
    """One metric record a trial reported (the dict of :mod:`nni.runtime.trial_metrics`:
    ``parameter_id, trial_job_id, type, sequence, value``); ``time`` is when it was read (ms)."""

    trial_id: str
    record: dict
    time: int


TrainingServiceEvent = Union[StateEvent, MetricEvent]


class RequestNeverSatisfiable(ValueError):
    """A trial request that this platform can never run (e.g. more GPUs than exist)."""


class TrainingService(abc.ABC):
    """Base class of every training service.

    Subclasses implement the abstract methods and call :meth:`_emit` for every state change
    and metric record; the base class keeps the event queue and the trial table.

    Args:
        config: the canonical ``trainingService`` mapping of the experiment config (camelCase).
        context: the experiment this service runs trials for.
    """

    #: The ``platform`` value this class serves (``local``, ``remote`` ...).
    platform: str = ""
    #: Whether a trial may ask for more than one parameter set (multi-phase).
    is_multi_phase_job_supported: bool = False

    def __init__(self, config: dict, context: ExperimentContext) -> None:
        self.config = dict(config or {})
        self.context = context
        self._events: asyncio.Queue[TrainingServiceEvent] | None = None
        self._trials: dict[str, TrialJobDetail] = {}
        self._pending: list[TrainingServiceEvent] = []

    # ----- the interface the manager calls -----

    def check_request(self, gpu_number: Optional[int]) -> None:
        """Raise :class:`RequestNeverSatisfiable` (one line) if a trial asking for
        ``gpu_number`` GPUs can never run here. Called before the experiment starts."""

    def capacity(self) -> Optional[int]:
        """How many trials this platform runs at once (e.g. GPU slots), or ``None``: no fixed
        limit (``trialConcurrency`` decides). A hybrid service shares trials by it."""
        return None

    @abc.abstractmethod
    async def start(self) -> None:
        """Start background work (``run()`` in NNI's interface). Returns at once."""

    @abc.abstractmethod
    async def submit(self, spec: TrialSpec) -> TrialJobDetail:
        """Accept a trial; it starts when resources allow. Returns its detail (WAITING or RUNNING)."""

    @abc.abstractmethod
    async def cancel(self, trial_id: str, early_stopped: bool = False, status: Optional[TrialJobStatus] = None) -> None:
        """Stop a trial. Its final state is EARLY_STOPPED when ``early_stopped``, else ``status``
        (default USER_CANCELED). Cancelling a finished trial does nothing."""

    @abc.abstractmethod
    async def send_parameter(self, trial_id: str, parameter: str) -> None:
        """Hand trial ``trial_id`` one more parameter set (NNI's ``updateTrialJob``).

        ``parameter`` is the dispatcher's ``SP`` payload, a JSON object with
        ``parameter_index``; a multi-phase trial waiting in ``nni.get_next_parameter()`` for
        that index receives it (``"parameters": null`` there means no more). Delivered through
        the platform's trial channel, never by the manager writing into the trial's folder.
        ``KeyError`` for an unknown trial; a finished trial ignores it."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Cancel every unfinished trial (SYS_CANCELED unless already cancelling) and free
        resources (``cleanUp()``). The event feed ends after the last event."""

    def get_trial_job(self, trial_id: str) -> TrialJobDetail:
        """The detail of one trial; ``KeyError`` if unknown."""
        return self._trials[trial_id]

    def list_trial_jobs(self) -> list[TrialJobDetail]:
        """Every trial this service was given, in submission order."""
        return list(self._trials.values())

    async def events(self) -> AsyncIterator[TrainingServiceEvent]:
        """State and metric events, in the order they happened for each trial.

        Ends (after the remaining events) once :meth:`stop` has finished.
        """
        queue = self._queue()
        while True:
            event = await queue.get()
            if event is _END:
                return
            yield event

    def get_nowait(self) -> list[TrainingServiceEvent]:
        """Events that are ready now, without waiting (for batch consumers)."""
        queue = self._queue()
        out = []
        while not queue.empty():
            event = queue.get_nowait()
            if event is _END:
                queue.put_nowait(_END)
                break
            out.append(event)
        return out

    def set_cluster_metadata(self, key: str, value: Any) -> None:
        """Platform settings given after construction (NNI's ``setClusterMetadata``)."""
        self.config[key] = value

    def get_cluster_metadata(self, key: str) -> Any:
        return self.config.get(key)

    # ----- helpers for subclasses -----

    def _queue(self) -> asyncio.Queue:
        if self._events is None:
            self._events = asyncio.Queue()
            for e in self._pending:
                self._events.put_nowait(e)
            self._pending.clear()
        return self._events

    def _emit(self, event: TrainingServiceEvent | object) -> None:
        """Queue an event for the manager. Safe to call from the event-loop thread only."""
        if self._events is None:
            self._pending.append(event)  # type: ignore[arg-type]
        else:
            self._events.put_nowait(event)  # type: ignore[arg-type]

    def _end_events(self) -> None:
        self._emit(_END)

    def _set_status(self, detail: TrialJobDetail, status: TrialJobStatus, message: str = "", exit_code: Optional[int] = None, when: Optional[int] = None, requeue: bool = False) -> None:
        """Move ``detail`` to ``status`` and emit the :class:`StateEvent` (once per state);
        ``requeue``: see :class:`StateEvent`."""
        if detail.status == status or detail.status.is_final:
            return
        t = when or now_ms()
        detail.status = status
        if message:
            detail.message = message
        if exit_code is not None:
            detail.exit_code = exit_code
        if status == TrialJobStatus.RUNNING:
            detail.start_time = t
        elif status.is_final:
            detail.end_time = t
            if detail.start_time is None:
                detail.start_time = t
            detail.is_early_stopped = status == TrialJobStatus.EARLY_STOPPED
        self._emit(StateEvent(detail.id, status, t, message, exit_code, requeue))


_END = object()
