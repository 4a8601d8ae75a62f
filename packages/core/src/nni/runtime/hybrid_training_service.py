"""Hybrid mode: one experiment, several training platforms (``trainingService`` as a list).

:class:`HybridTrainingService` is a :class:`~nni.runtime.training_service.TrainingService` made
of one service per config entry. Each trial goes to one of them, chosen when it is submitted:
the platform with the fewest active trials relative to its :meth:`capacity`; a platform with
no fixed capacity (``None``) counts as large as the largest fixed one (as 1 when none has one),
so an unbounded local platform shares the work with a remote one instead of taking it all.
Full platforms (bounded ones at capacity) are passed over while another has room; ties go to
the earlier config entry.

Events of every platform are merged into one feed (per trial, in order); cancel and
``send_parameter`` go to the platform that owns the trial; every detail carries its
``platform``. The manager builds it for a list of more than one entry
(:func:`build_training_service`).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable, Optional, Sequence

from .training_service import (
    ACTIVE_STATES,
    ExperimentContext,
    RequestNeverSatisfiable,
    StateEvent,
    TrainingService,
    TrialJobDetail,
    TrialJobStatus,
    TrialSpec,
)

_logger = logging.getLogger("nni.runtime.hybrid")

__all__ = ["HybridTrainingService", "build_training_service"]


class HybridTrainingService(TrainingService):
    """Runs an experiment's trials on several platforms.

    Args:
        services: one (not started) service per ``trainingService`` entry, in config order.
        context: the experiment.
    """

    platform = "hybrid"

    def __init__(self, services: Sequence[TrainingService], context: ExperimentContext) -> None:
        if not services:
            raise ValueError("trainingService: a hybrid training service needs at least one platform")
        super().__init__({"platform": [s.platform for s in services]}, context)
        self.services = list(services)
        self._eligible = list(self.services)  # those that can run the experiment's request
        self._owner: dict[str, TrainingService] = {}
        self._active: dict[int, set[str]] = {id(s): set() for s in self.services}
        self._pumps: list[asyncio.Task] = []
        self._done_task: Optional[asyncio.Task] = None

    @property
    def is_multi_phase_job_supported(self) -> bool:  # type: ignore[override]
        return all(s.is_multi_phase_job_supported for s in self.services)

    # ----- checks and capacity -----

    def check_request(self, gpu_number: Optional[int]) -> None:
        """Passes when at least one platform can run the request; trials then only go to those."""
        eligible, reasons = [], []
        for s in self.services:
            try:
                s.check_request(gpu_number)
            except RequestNeverSatisfiable as err:
                reasons.append(f"{s.platform}: {err}")
            else:
                eligible.append(s)
        if not eligible:
            raise RequestNeverSatisfiable("no platform of the hybrid trainingService can run a trial: " + "; ".join(reasons))
        self._eligible = eligible

    def capacity(self) -> Optional[int]:
        caps = [s.capacity() for s in self._eligible]
        return None if any(c is None for c in caps) else sum(caps)  # type: ignore[arg-type]

    def _pick(self) -> TrainingService:
        caps = [s.capacity() for s in self._eligible]
        known = [c for c in caps if c is not None]
        default = max(known) if known else 1
        best, best_key = self._eligible[0], None
        for i, (s, cap) in enumerate(zip(self._eligible, caps)):
            active = len(self._active[id(s)])
            full = cap is not None and active >= cap  # an unbounded platform is never full
            key = (full, active / max(1, cap if cap is not None else default), i)  # room first, then the lightest load
            if best_key is None or key < best_key:
                best, best_key = s, key
        return best

    # ----- lifecycle -----

    async def start(self) -> None:
        self._queue()
        for s in self.services:
            await s.start()
        if not self._pumps:
            loop = asyncio.get_running_loop()
            self._pumps = [loop.create_task(self._pump(s)) for s in self.services]
            self._done_task = loop.create_task(self._end_when_pumped())

    async def _pump(self, service: TrainingService) -> None:
        active = self._active[id(service)]
        async for event in service.events():
            if isinstance(event, StateEvent) and event.status not in ACTIVE_STATES:
                active.discard(event.trial_id)
            self._emit(event)

    async def _end_when_pumped(self) -> None:
        results = await asyncio.gather(*self._pumps, return_exceptions=True)
        for s, r in zip(self.services, results):
            if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
                _logger.error("Events of the %s platform failed: %r", s.platform, r)
        self._end_events()

    async def stop(self) -> None:
        results = await asyncio.gather(*(s.stop() for s in self.services), return_exceptions=True)
        for pump, r in zip(self._pumps, results):
            if isinstance(r, Exception):  # its feed may never end: stop waiting for it
                pump.cancel()
        if self._done_task is not None:
            await self._done_task
        else:
            self._end_events()
        for s, r in zip(self.services, results):
            if isinstance(r, Exception):
                raise r

    # ----- trials -----

    async def submit(self, spec: TrialSpec) -> TrialJobDetail:
        service = self._pick()
        self._owner[spec.trial_id] = service
        self._active[id(service)].add(spec.trial_id)
        try:
            detail = await service.submit(spec)
        except Exception:
            self._active[id(service)].discard(spec.trial_id)
            del self._owner[spec.trial_id]
            raise
        detail.platform = service.platform
        _logger.debug("Trial %s goes to the %s platform", spec.trial_id, service.platform)
        return detail

    def _service_of(self, trial_id: str) -> TrainingService:
        return self._owner[trial_id]  # KeyError for an unknown trial, as the contract says

    async def cancel(self, trial_id: str, early_stopped: bool = False, status: Optional[TrialJobStatus] = None) -> None:
        await self._service_of(trial_id).cancel(trial_id, early_stopped=early_stopped, status=status)

    async def send_parameter(self, trial_id: str, parameter: str) -> None:
        await self._service_of(trial_id).send_parameter(trial_id, parameter)

    def get_trial_job(self, trial_id: str) -> TrialJobDetail:
        service = self._service_of(trial_id)
        detail = service.get_trial_job(trial_id)
        detail.platform = service.platform
        return detail

    def list_trial_jobs(self) -> list[TrialJobDetail]:
        return [self.get_trial_job(tid) for tid in self._owner]

    def platform_counts(self) -> dict[str, int]:
        """Trials submitted to each platform (by platform name)."""
        out: dict[str, int] = {}
        for s in self._owner.values():
            out[s.platform] = out.get(s.platform, 0) + 1
        return out


def build_training_service(
    configs: Sequence[dict],
    context: ExperimentContext,
    load_class: Callable[[str], type],
) -> TrainingService:
    """The service for canonical ``trainingService`` entries: the platform's own for one entry,
    a :class:`HybridTrainingService` for several. ``load_class(platform)`` returns the class
    (``KeyError`` with the reason for a platform that is not installed)."""
    services = [load_class(c.get("platform"))(c, context) for c in configs]
    if len(services) == 1:
        return services[0]
    return HybridTrainingService(services, context)
