"""Execution engines and the module-level API multi-trial strategies use.

Strategies call only these functions (the engine is set by ``RetiariiExperiment`` before the strategy
runs, or by a test): :func:`submit_models`, :func:`query_available_resources`, :func:`wait_models`,
:func:`budget_exhausted`, :func:`is_stopped_exec`, :func:`list_models`.
"""
from __future__ import annotations

from typing import List, Optional

from ..graph import Model
from .base import AbstractExecutionEngine, is_finished

_engine: Optional[AbstractExecutionEngine] = None


def set_execution_engine(engine: Optional[AbstractExecutionEngine]) -> None:
    global _engine
    _engine = engine


def get_execution_engine() -> AbstractExecutionEngine:
    if _engine is None:
        raise RuntimeError('no execution engine is set: strategies run inside RetiariiExperiment.run() '
                           '(or call nni.retiarii.execution.set_execution_engine in a test)')
    return _engine


def submit_models(*models: Model) -> None:
    get_execution_engine().submit_models(*models)


def query_available_resources() -> int:
    return get_execution_engine().query_available_resource()


def wait_models(*models: Model) -> None:
    get_execution_engine().wait_models(*models)


def budget_exhausted() -> bool:
    return get_execution_engine().budget_exhausted()


def is_stopped_exec(model: Model) -> bool:
    """True once the model finished training, successfully or not."""
    return is_finished(model)


def list_models() -> List[Model]:
    return list(get_execution_engine().list_models())




def __getattr__(name: str):
    # lazy: inprocess pulls in threading machinery and the serializer, which the strategies' API does not need
    if name == 'InProcessExecutionEngine':
        from .inprocess import InProcessExecutionEngine
        return InProcessExecutionEngine
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


__all__ = ['AbstractExecutionEngine', 'InProcessExecutionEngine', 'set_execution_engine', 'get_execution_engine', 'submit_models',
           'query_available_resources', 'wait_models', 'budget_exhausted', 'is_stopped_exec', 'list_models']
