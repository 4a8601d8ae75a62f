"""The base class of multi-trial exploration strategies."""
from __future__ import annotations

import abc
from typing import List

from ..graph import Model
from ..mutator import Mutator

__all__ = ['BaseStrategy']


class BaseStrategy(abc.ABC):
    """A multi-trial exploration strategy: samples models from a model space and submits them.

    Subclasses implement :meth:`run`, which uses only the engine API of :mod:`nni.retiarii.execution`
    (``query_available_resources``, ``submit_models``, ``wait_models``, ``is_stopped_exec``,
    ``budget_exhausted``, ``list_models``) and the Mutator/Sampler API::

        class MyStrategy(BaseStrategy):
            def run(self, base_model, applied_mutators):
                while not budget_exhausted():
                    if query_available_resources() > 0:
                        model = base_model
                        for mutator in applied_mutators:
                            model = mutator.bind_sampler(my_sampler).apply(model)
                        submit_models(model)
                    else:
                        time.sleep(1)
    """

    @abc.abstractmethod
    def run(self, base_model: Model, applied_mutators: List[Mutator]) -> None:
        """Explore the space that ``applied_mutators`` (applied in order) define on the frozen ``base_model``.

        Returns when the strategy is done or the engine's budget is exhausted.
        """
