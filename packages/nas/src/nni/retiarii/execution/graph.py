"""The graph-based execution engine (``execution_engine='base'``).

The model space is converted to the graph IR (:func:`nni.retiarii.converter.convert_to_graph`); its
inline choices become graph mutators (:func:`~nni.retiarii.converter.inline_mutators`) and run
before the user's mutators. For each submitted model, code generation
(:func:`nni.retiarii.codegen.model_to_pytorch_module`) builds the module; the trial receives it as
its generated ``forward`` source (``code``, readable in the web UI) plus the pickled
``torch.fx.GraphModule`` (whose pickle is that code and the submodules), and runs the evaluator on it.
"""
from __future__ import annotations

import base64
from typing import Any, Dict, Optional, Tuple

import torch

from ..graph import Model
from .python import ManagerExecutionEngine

__all__ = ['GraphExecutionEngine', 'architecture_of']


def architecture_of(model: Model) -> Dict[str, Any]:
    """The architecture dict of a graph model: the inline choices (``label -> value``, what ``fixed_arch``
    takes) plus, for each user mutator, ``label`` (or ``<MutatorClass>_<i>``) -> its choice (a list if several)."""
    result = dict(model.sample)
    from ..converter import InlineGraphMutator
    for i, mutation in enumerate(model.history):
        if isinstance(mutation.mutator, InlineGraphMutator):
            continue
        key = mutation.mutator.label or f'{type(mutation.mutator).__name__}_{i}'
        samples = [getattr(s, 'type', s) if hasattr(s, 'parameters') else s for s in mutation.samples]
        result[key] = samples[0] if len(samples) == 1 else samples
    return result


class GraphExecutionEngine(ManagerExecutionEngine):
    """``execution_engine='base'``: mutators work on the graph IR; the trial receives generated code."""

    engine_name = 'base'

    def preprocess(self, base_model: Any, applied_mutators: Optional[list]) -> Tuple[Model, list]:
        from ..converter import convert_to_graph, inline_mutators
        if isinstance(base_model, Model):
            model = base_model
        else:
            model = convert_to_graph(base_model)
        inline = inline_mutators(model)
        if inline and applied_mutators:
            raise ValueError('applied_mutators: the model space has inline mutations (LayerChoice, ValueChoice ...); '
                             'mixing them with Mutator subclasses is not supported; use one of the two')
        return model, list(inline) + list(applied_mutators or [])

    def trial_parameters(self, model: Model) -> dict:
        from .. import serializer
        from ..codegen import model_to_pytorch_module
        module = model_to_pytorch_module(model)
        pickled = serializer._cloudpickle().dumps(module)  # the GraphModule pickles as its code + submodules
        return {
            'engine': self.engine_name,
            'sample': _jsonable(architecture_of(model)),
            'code': module.code,
            'module': base64.b64encode(pickled).decode('ascii'),
            'evaluator': self._evaluator_tree(model.evaluator),
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return repr(value)
