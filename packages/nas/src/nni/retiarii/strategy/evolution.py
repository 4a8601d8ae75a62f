"""Regularized (aging) evolution, Real et al., "Regularized Evolution for Image Classifier Architecture Search", Algorithm 1."""
from __future__ import annotations

import collections
import logging
import random
from typing import Deque, Dict, List, NamedTuple, Optional, Tuple

from ..graph import Model
from ..mutator import InvalidMutation, Mutator
from .base import BaseStrategy
from .utils import ChoiceSpace, ModelTracker, metric_of

__all__ = ['RegularizedEvolution', 'Individual']

_logger = logging.getLogger(__name__)


class Individual(NamedTuple):
    """A trained member of the population: its candidate ``indices``, its ``metric`` (``±inf`` for a failure
    recorded with ``on_failure='worst'``) and the ``model``."""

    indices: Tuple[int, ...]
    metric: float
    model: Model


#: Mutations tried before a child that duplicates a known architecture is accepted anyway (small spaces).
MAX_DUPLICATE_DRAWS = 50
#: Draws at each distance from the parent (one mutation, then two, ...) before a child is allowed further away.
DRAWS_PER_DISTANCE = 10


class RegularizedEvolution(BaseStrategy):
    """Regularized evolution (aging evolution), following "Algorithm 1" of Real et al.

    The first ``population_size`` models are random; once they are all trained, each new model is a mutation of
    the best of ``sample_size`` individuals drawn at random from the population, and every trained model joins the
    population while the oldest leaves it (so the population keeps ``population_size`` individuals). With several
    trials at a time, new children are generated whenever a slot is free, from the population as it is then.

    Args:
        optimize_mode: ``'maximize'`` or ``'minimize'`` the metric.
        population_size: individuals kept in the population.
        cycles: models to train in total (the strategy stops after that many, waiting for the running ones).
        sample_size: individuals in each tournament.
        mutation_prob: probability that each choice is re-drawn (to a different candidate). When no choice was
            re-drawn, one random choice is, so a child always differs from its parent (as in the paper). A child
            that was already trained (or is training) is drawn again from the same parent (mutated twice once ten
            draws found only known neighbours, and so on), up to ``MAX_DUPLICATE_DRAWS`` times, so the trial
            budget goes to new architectures rather than to re-measuring known ones.
        on_failure: ``'ignore'``: a failed model (or one without a numeric metric) does not enter the population
            and does not count towards ``cycles`` (another model is tried instead); ``'worst'``: it enters the
            population with metric ``-inf`` (``+inf`` when minimizing) and counts.
        seed: seed of the random choices (``None``: not reproducible). Not in NNI v2.5.

    Attributes:
        population: the current population (oldest first) of :class:`Individual`.
    """

    def __init__(self, optimize_mode: str = 'maximize', population_size: int = 100, sample_size: int = 25,
                 cycles: int = 20000, mutation_prob: float = 0.05, on_failure: str = 'ignore', seed: Optional[int] = None):
        if optimize_mode not in ('maximize', 'minimize'):
            raise ValueError(f"RegularizedEvolution: optimize_mode must be 'maximize' or 'minimize', got {optimize_mode!r}")
        if on_failure not in ('ignore', 'worst'):
            raise ValueError(f"RegularizedEvolution: on_failure must be 'ignore' or 'worst', got {on_failure!r}")
        for name, value in (('population_size', population_size), ('sample_size', sample_size), ('cycles', cycles)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f'RegularizedEvolution: {name} must be an int >= 1, got {value!r}')
        if sample_size > population_size:
            raise ValueError(f'RegularizedEvolution: sample_size ({sample_size}) must not exceed population_size ({population_size})')
        if not 0 <= mutation_prob <= 1:
            raise ValueError(f'RegularizedEvolution: mutation_prob must be in [0, 1], got {mutation_prob!r}')
        self.optimize_mode = optimize_mode
        self.population_size = population_size
        self.sample_size = sample_size
        self.cycles = cycles
        self.mutation_prob = mutation_prob
        self.on_failure = on_failure
        self.rng = random.Random(seed)
        self.population: Deque[Individual] = collections.deque()

    def _better(self, a: Individual, b: Individual) -> bool:
        return a.metric > b.metric if self.optimize_mode == 'maximize' else a.metric < b.metric

    def _mutate(self, parent: Tuple[int, ...], counts: List[int]) -> Tuple[int, ...]:
        child = list(parent)
        mutable = [i for i, n in enumerate(counts) if n > 1]
        changed = False
        for i in mutable:
            if self.rng.random() < self.mutation_prob:
                child[i] = self.rng.choice([v for v in range(counts[i]) if v != parent[i]])
                changed = True
        if not changed and mutable:
            i = self.rng.choice(mutable)
            child[i] = self.rng.choice([v for v in range(counts[i]) if v != parent[i]])
        return tuple(child)

    def _child(self, parent: Tuple[int, ...], counts: List[int], seen: set) -> Tuple[int, ...]:
        """A mutation of ``parent`` that is not in ``seen``, as close to the parent as the known models allow.

        Every draw starts from the parent: draws ``0..9`` mutate it once, draws ``10..19`` twice (a mutation of a
        mutation), and so on, so a child is only moved further away once the parent's closer neighbours turned out
        to be known. (Walking on from the last rejected draw instead drifts several choices away from the parent
        after a few draws, and the children of a good parent are then hardly its neighbours.)"""
        child = parent
        for attempt in range(MAX_DUPLICATE_DRAWS):
            child = parent
            for _ in range(1 + attempt // DRAWS_PER_DISTANCE):
                child = self._mutate(child, counts)
            if child not in seen:
                return child
        return child

    def run(self, base_model: Model, applied_mutators: List[Mutator]) -> None:
        space = ChoiceSpace(base_model, applied_mutators)
        self.population = collections.deque()
        indices_of: Dict[int, Tuple[int, ...]] = {}
        counted = 0        # models that count towards cycles (submitted, minus failures ignored)
        initialized = False
        pending_random = 0  # random initial models still training

        def on_finished(model: Model) -> None:
            nonlocal counted, initialized, pending_random
            indices = indices_of.pop(model.model_id)
            if not initialized:
                pending_random -= 1
            metric = metric_of(model)
            if metric is None:
                if self.on_failure == 'ignore':
                    counted -= 1
                    _logger.info('RegularizedEvolution: model %d failed; ignored', model.model_id)
                    return
                metric = float('-inf') if self.optimize_mode == 'maximize' else float('inf')
            self.population.append(Individual(indices, metric, model))
            if len(self.population) > self.population_size:
                self.population.popleft()  # aging: the oldest leaves, whatever its fitness
            if len(self.population) >= self.population_size:
                initialized = True

        tracker = ModelTracker()
        seen: set = set()  # every architecture submitted so far
        invalid = 0
        while True:
            while counted < self.cycles and tracker.next_slot(on_finished):
                if not initialized:
                    if len(self.population) + pending_random >= self.population_size:
                        tracker.wait(on_finished)  # the initial population is still training
                        continue
                    indices = space.random(self.rng)
                    for _ in range(MAX_DUPLICATE_DRAWS):
                        if indices not in seen:
                            break
                        indices = space.random(self.rng)
                else:
                    tournament = self.rng.sample(list(self.population), min(self.sample_size, len(self.population)))
                    parent = tournament[0]
                    for candidate in tournament[1:]:
                        if self._better(candidate, parent):
                            parent = candidate
                    indices = self._child(parent.indices, space.counts, seen)
                try:
                    model = space.build(base_model, indices)
                except InvalidMutation as err:
                    invalid += 1
                    if invalid >= 1000:
                        _logger.warning('RegularizedEvolution: 1000 consecutive invalid samples; stopping')
                        return
                    _logger.debug('RegularizedEvolution: invalid sample (%s); sampling again', err)
                    continue
                invalid = 0
                seen.add(indices)
                indices_of[model.model_id] = indices
                if not initialized:
                    pending_random += 1
                counted += 1
                tracker.submit(model)
            if counted < self.cycles:
                return  # the engine's budget is exhausted
            # cycles reached: wait for the running models; failures ignored among them re-open cycles
            tracker.wait_all(on_finished)
            if counted >= self.cycles:
                return
