"""The execution-engine contract between multi-trial strategies and the engines that train models.

A strategy submits frozen :class:`~nni.retiarii.graph.Model` objects; the engine trains each one
(in a trial of the experiment, or in-process for tests) and updates it in place:
``model.status`` becomes ``Training`` on submission, then ``Trained`` (with ``model.metric`` set to the
final result, and ``model.intermediate_metrics`` the intermediate ones in order) or ``Failed``.
A final result given as a dict is reduced to its ``'default'`` key for ``model.metric``.
"""
from __future__ import annotations

import abc
from typing import Iterable

from ..graph import Model


class AbstractExecutionEngine(abc.ABC):
    """What a strategy may ask of an engine (see :mod:`nni.retiarii.execution` for the module-level API)."""

    @abc.abstractmethod
    def submit_models(self, *models: Model) -> None:
        """Start training the models (asynchronously); each becomes ``Training``."""

    @abc.abstractmethod
    def list_models(self) -> Iterable[Model]:
        """Every model submitted so far, in submission order."""

    @abc.abstractmethod
    def query_available_resource(self) -> int:
        """How many more models can train at once right now (0 when all slots are busy)."""

    @abc.abstractmethod
    def budget_exhausted(self) -> bool:
        """True once no more models will be trained (trial number or duration reached, experiment stopping)."""

    @abc.abstractmethod
    def wait_models(self, *models: Model) -> None:
        """Block until each model is ``Trained`` or ``Failed`` (or the budget is exhausted and it never will be)."""

    def shutdown(self) -> None:
        """Release what the engine holds; the default does nothing."""


def is_finished(model: Model) -> bool:
    from ..graph import ModelStatus
    return model.status in (ModelStatus.Trained, ModelStatus.Failed)


__all__ = ['AbstractExecutionEngine', 'is_finished']
