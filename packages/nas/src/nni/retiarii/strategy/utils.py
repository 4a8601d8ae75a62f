"""Shared pieces of the built-in strategies: the dry-run choice space, fixed/random samplers, and the
"submit while there is room" loop.

A *choice space* is the flat list of ``choice`` calls the applied mutators make (found with
``Mutator.dry_run``, mutator by mutator, in order). A point of it is a tuple of candidate indices, one
per call; :meth:`ChoiceSpace.build` turns it into a new frozen model by replaying it through the mutators.
"""
from __future__ import annotations

import logging
import math
import random
import time
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple

from .. import execution
from ..graph import Model, ModelStatus
from ..mutator import Mutator, Sampler

__all__ = ['POLL_INTERVAL', 'ChoiceSpace', 'FixedSampler', 'RandomSampler', 'ModelTracker', 'apply_all', 'metric_of']

_logger = logging.getLogger(__name__)

#: the longest pause (seconds) between two looks at the engine while a strategy waits for a free slot
POLL_INTERVAL = 0.1


class RandomSampler(Sampler):
    """Answers every ``choice`` with a uniformly random candidate."""

    def __init__(self, rng: Optional[random.Random] = None):
        self.rng = rng or random.Random()

    def choice(self, candidates: List[Any], mutator: Mutator, model: Model, index: int) -> Any:
        return self.rng.choice(candidates)


class FixedSampler(Sampler):
    """Replays given candidate indices: the ``index``-th choice of the mutator gets ``indices[index]``."""

    def __init__(self, indices: Sequence[int], counts: Sequence[int]):
        self.indices = list(indices)
        self.counts = list(counts)

    def choice(self, candidates: List[Any], mutator: Mutator, model: Model, index: int) -> Any:
        if index >= len(self.indices) or len(candidates) != self.counts[index]:
            raise ValueError(f'{mutator!r} asked choice #{index} over {len(candidates)} candidates, but its dry run made '
                             f'{len(self.counts)} choices with counts {self.counts}: the search space is not fixed '
                             f'(use Random(variational=True) for spaces whose choices depend on earlier choices)')
        return candidates[self.indices[index]]


class ChoiceSpace:
    """The choices ``mutators`` make on ``base_model``, from their dry runs (in order).

    Attributes:
        candidates: one candidate list per choice call, over all mutators.
        names: a unique readable name per choice call (the mutator label, ``/<k>`` for its k-th call).
        counts: ``len`` of each candidate list; ``size`` is their product.
    """

    def __init__(self, base_model: Model, mutators: Sequence[Mutator]):
        self.mutators = list(mutators)
        self.candidates: List[List[Any]] = []
        self.names: List[str] = []
        self._slices: List[Tuple[int, int]] = []
        model = base_model
        for position, mutator in enumerate(self.mutators):
            recorded, model = mutator.dry_run(model)
            start = len(self.candidates)
            label = mutator.label if mutator.label is not None else f'mutator_{position}'
            for k, cands in enumerate(recorded):
                name = label if len(recorded) == 1 else f'{label}/{k}'
                while name in self.names:
                    name = f'{name}_{position}'
                self.names.append(name)
                self.candidates.append(list(cands))
            self._slices.append((start, len(self.candidates)))
        self.counts = [len(c) for c in self.candidates]
        self.size = math.prod(self.counts)

    def __len__(self) -> int:
        return len(self.candidates)

    def build(self, base_model: Model, indices: Sequence[int]) -> Model:
        """A new frozen model with the candidates at ``indices`` (may raise ``InvalidMutation``)."""
        model = base_model
        for mutator, (start, end) in zip(self.mutators, self._slices):
            mutator.bind_sampler(FixedSampler(indices[start:end], self.counts[start:end]))
            model = mutator.apply(model)
        return model

    def random(self, rng: random.Random) -> Tuple[int, ...]:
        return tuple(rng.randrange(n) for n in self.counts)

    def encode(self, indices: Sequence[int]) -> int:
        """The point's rank in the (mixed-radix) enumeration of the space."""
        code = 0
        for i, n in zip(indices, self.counts):
            code = code * n + i
        return code

    def decode(self, code: int) -> Tuple[int, ...]:
        out = []
        for n in reversed(self.counts):
            code, i = divmod(code, n)
            out.append(i)
        return tuple(reversed(out))

    def random_unseen(self, seen: set, rng: random.Random) -> Optional[Tuple[int, ...]]:
        """A uniformly random point whose code is not in ``seen`` (``None`` once every point is)."""
        if len(seen) >= self.size:
            return None
        if len(seen) * 2 < self.size:  # rejection sampling: at least half the draws hit
            while True:
                code = rng.randrange(self.size)
                if code not in seen:
                    return self.decode(code)
        # seen covers most of a (necessarily small) space: draw from what is left
        rest = [code for code in range(self.size) if code not in seen]
        return self.decode(rng.choice(rest))


def metric_of(model: Model) -> Optional[float]:
    """The model's final metric as a float; ``None`` if it failed or reported nothing numeric."""
    if model.status != ModelStatus.Trained:
        return None
    value = model.metric
    if isinstance(value, dict):
        value = value.get('default')
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)  # numpy scalars, 0-d tensors
        except (TypeError, ValueError):
            return None
    value = float(value)
    return None if math.isnan(value) else value


class ModelTracker:
    """Submits models and tells which of them finished: the loop every built-in strategy runs.

    ``while tracker.next_slot(on_finished): ... tracker.submit(model)`` waits (polling the engine) until a
    model can be submitted, calling ``on_finished(model)`` for each model that finished meanwhile; it returns
    ``False`` once the engine's budget is exhausted.
    """

    def __init__(self) -> None:
        self.running: List[Model] = []
        self.submitted: List[Model] = []

    def submit(self, model: Model) -> None:
        execution.submit_models(model)
        self.running.append(model)
        self.submitted.append(model)

    def pop_finished(self) -> List[Model]:
        done = [m for m in self.running if execution.is_stopped_exec(m)]
        if done:
            self.running = [m for m in self.running if not execution.is_stopped_exec(m)]
        return done

    def _deliver(self, on_finished: Optional[Callable[[Model], None]]) -> None:
        for model in self.pop_finished():
            if on_finished is not None:
                on_finished(model)

    def next_slot(self, on_finished: Optional[Callable[[Model], None]] = None) -> bool:
        """Wait for a free slot (True) or the end of the budget (False)."""
        delay = 0.001
        while True:
            self._deliver(on_finished)
            if execution.budget_exhausted():
                return False
            if execution.query_available_resources() > 0:
                return True
            # back off from 1 ms to POLL_INTERVAL: quick in-process models are not held up by the poll
            time.sleep(delay)
            delay = min(delay * 2, POLL_INTERVAL)

    def wait(self, on_finished: Optional[Callable[[Model], None]] = None) -> None:
        """Wait until a running model finished (or ``POLL_INTERVAL`` passed), delivering what finished."""
        delay, waited = 0.001, 0.0
        while waited < POLL_INTERVAL and self.running and not any(execution.is_stopped_exec(m) for m in self.running):
            time.sleep(delay)
            waited += delay
            delay = min(delay * 2, POLL_INTERVAL)
        self._deliver(on_finished)

    def wait_all(self, on_finished: Optional[Callable[[Model], None]] = None) -> None:
        """Block until every running model finished (or the engine says it never will), delivering them."""
        if self.running:
            execution.wait_models(*self.running)
        self._deliver(on_finished)
        # models the engine gave up on (budget over before they ran) are not delivered
        self.running = [m for m in self.running if not execution.is_stopped_exec(m)]


def apply_all(base_model: Model, mutators: Iterable[Mutator], sampler: Sampler) -> Model:
    """Apply each mutator in order with ``sampler`` bound; returns the new frozen model."""
    model = base_model
    for mutator in mutators:
        model = mutator.bind_sampler(sampler).apply(model)
    return model
