"""Random search and grid search."""
from __future__ import annotations

import itertools
import logging
import random
from typing import Callable, List, Optional

from ..graph import Model
from ..mutator import InvalidMutation, Mutator
from .base import BaseStrategy
from .utils import ChoiceSpace, ModelTracker, RandomSampler, apply_all

__all__ = ['Random', 'GridSearch']

_logger = logging.getLogger(__name__)


class Random(BaseStrategy):
    """Random search on the search space.

    Args:
        variational: do not dry-run to get the full search space; every ``choice`` is answered at random
            when the model is built. For spaces whose size or candidates vary. Deduplication is not
            done in this mode (``dedup`` is ignored).
        dedup: do not try the same configuration twice. The strategy stops, after waiting for its running
            models, once every configuration has been tried (or filtered out).
        model_filter: ``model_filter(model) -> bool``; only models for which it returns True are submitted
            (e.g. :class:`~nni.retiarii.strategy.LatencyFilter`). A configuration it rejects counts as tried.
        seed: seed of the sampler (``None``: not reproducible). Not in NNI v2.5.

    The search also stops after ``max_rejections`` (1000) consecutive samples were rejected by
    ``model_filter`` or invalid (``InvalidMutation``): the filter admits (almost) nothing.
    """

    max_rejections = 1000

    def __init__(self, variational: bool = False, dedup: bool = True, model_filter: Optional[Callable[[Model], bool]] = None,
                 seed: Optional[int] = None):
        if model_filter is not None and not callable(model_filter):
            raise ValueError(f'Random: model_filter must be a callable model -> bool, got {type(model_filter).__name__}')
        self.variational = variational
        self.dedup = dedup
        self.model_filter = model_filter
        self.rng = random.Random(seed)

    def run(self, base_model: Model, applied_mutators: List[Mutator]) -> None:
        space = None if self.variational else ChoiceSpace(base_model, applied_mutators)
        sampler = RandomSampler(self.rng)
        tracker = ModelTracker()
        seen: set = set()
        rejected = 0
        while tracker.next_slot():
            if rejected >= self.max_rejections:
                _logger.warning('Random: %d consecutive samples were invalid or rejected by model_filter; stopping', rejected)
                return
            try:
                if space is None:
                    model = apply_all(base_model, applied_mutators, sampler)
                else:
                    if self.dedup:
                        indices = space.random_unseen(seen, self.rng)
                        if indices is None:
                            _logger.info('Random: all %d configurations tried; waiting for the running models', space.size)
                            tracker.wait_all()
                            return
                        seen.add(space.encode(indices))
                    else:
                        indices = space.random(self.rng)
                    model = space.build(base_model, indices)
            except InvalidMutation as err:
                _logger.debug('Random: invalid sample (%s); sampling again', err)
                rejected += 1
                continue
            if self.model_filter is not None and not self.model_filter(model):
                _logger.debug('Random: model_filter rejected %r', model.sample or model)
                rejected += 1
                continue
            rejected = 0
            tracker.submit(model)


class GridSearch(BaseStrategy):
    """Traverse the search space and try all the possible combinations one by one.

    The strategy stops, after waiting for its running models, when every combination has been submitted
    (combinations the mutators reject with ``InvalidMutation`` are skipped).

    Args:
        shuffle: shuffle the order in each candidate list, so that values are tried in a random order
            (the combinations are still enumerated odometer-style over the shuffled lists).
        seed: seed of the shuffle (``None``: not reproducible). Not in NNI v2.5.
    """

    def __init__(self, shuffle: bool = True, seed: Optional[int] = None):
        self.shuffle = shuffle
        self.rng = random.Random(seed)

    def run(self, base_model: Model, applied_mutators: List[Mutator]) -> None:
        space = ChoiceSpace(base_model, applied_mutators)
        orders = []
        for count in space.counts:
            order = list(range(count))
            if self.shuffle:
                self.rng.shuffle(order)
            orders.append(order)
        tracker = ModelTracker()
        for indices in itertools.product(*orders):
            if not tracker.next_slot():
                return
            try:
                model = space.build(base_model, indices)
            except InvalidMutation as err:
                _logger.debug('GridSearch: skipping an invalid combination (%s)', err)
                continue
            tracker.submit(model)
        _logger.info('GridSearch: all %d combinations submitted; waiting for the running models', space.size)
        tracker.wait_all()
