"""The logical plan of the CGO engine: which sampled models train together, and the merged module they train as.

A :class:`LogicalPlan` holds the models waiting to be trained. Each model is a graph whose input node reads
the data of its evaluator (:class:`InputNode`, keyed by the evaluator's dumped form: same dataloaders, same
training recipe). :class:`DedupInputOptimizer` (the only optimizer, as in NNI v2.5) merges input nodes with the
same key into one, so models sharing a dataset share one input: each batch is loaded and pre-processed once.
:meth:`LogicalPlan.assemble` then cuts each input's models into :class:`PhysicalTrial` s of at most
``max_models`` models, and :func:`merge_modules` builds a trial's module: one ``torch.fx`` graph whose
placeholders are the shared inputs, feeding every model's generated module, and whose output is the tuple
of their outputs.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import torch
import torch.fx

from ..graph import Model

__all__ = ['InputNode', 'LogicalPlan', 'DedupInputOptimizer', 'PhysicalTrial', 'merge_modules']


@dataclass
class InputNode:
    """The data input of one or more models: ``key`` identifies the input pipeline (the dumped evaluator)."""
    key: str
    models: List[Model] = field(default_factory=list)


@dataclass
class PhysicalTrial:
    """Models trained together in one trial, on one shared input."""
    models: List[Model]
    input: InputNode


class LogicalPlan:
    """Models waiting to be trained, each with its input node (one per model until an optimizer merges them)."""

    def __init__(self) -> None:
        self.inputs: List[InputNode] = []

    def add_model(self, model: Model, input_key: str) -> None:
        self.inputs.append(InputNode(input_key, [model]))

    @property
    def models(self) -> List[Model]:
        return [m for node in self.inputs for m in node.models]

    def assemble(self, max_models: int) -> List[PhysicalTrial]:
        """Cut each input's models, in order, into trials of at most ``max_models`` models."""
        if max_models < 1:
            raise ValueError(f'max_models: expected a positive int, got {max_models!r}')
        return [PhysicalTrial(node.models[i:i + max_models], node)
                for node in self.inputs for i in range(0, len(node.models), max_models)]


class DedupInputOptimizer:
    """Merges the input nodes that read the same data (equal keys) into one, keeping the models' order."""

    def convert(self, plan: LogicalPlan) -> None:
        merged: Dict[str, InputNode] = {}
        for node in plan.inputs:
            if node.key in merged:
                merged[node.key].models.extend(node.models)
            else:
                merged[node.key] = InputNode(node.key, list(node.models))
        plan.inputs = list(merged.values())


def input_key(evaluator_tree: Any) -> str:
    """The key of an input pipeline: the evaluator's dumped JSON tree, canonically encoded."""
    return json.dumps(evaluator_tree, sort_keys=True)


def merge_modules(modules: List[torch.nn.Module], num_models_attr: str = 'cgo_num_models') -> torch.fx.GraphModule:
    """One module running ``modules`` on shared inputs: ``forward(*inputs) -> (out_0, out_1, ...)``.

    Each module is a submodule ``model_<i>``; the inputs are the placeholders of the first module (every module
    must take the same number). The result has ``<num_models_attr> = len(modules)``.
    """
    if not modules:
        raise ValueError('merge_modules: no module to merge')
    placeholder_lists = [_placeholders(m) for m in modules]
    names = placeholder_lists[0]
    for i, other in enumerate(placeholder_lists[1:], 1):
        if names is not None and other is not None and len(other) != len(names):
            raise ValueError(f'merge_modules: model {i} takes {len(other)} inputs, model 0 takes {len(names)}; '
                             f'only models with the same inputs share them')
    graph = torch.fx.Graph()
    inputs = [graph.placeholder(name) for name in (names or ['x'])]
    root = torch.nn.Module()
    outputs = []
    for i, module in enumerate(modules):
        root.add_module(f'model_{i}', module)
        outputs.append(graph.call_module(f'model_{i}', tuple(inputs)))
    graph.output(tuple(outputs))
    graph.lint()
    merged = torch.fx.GraphModule(root, graph, class_name='CGOMergedModel')
    setattr(merged, num_models_attr, len(modules))
    return merged


def _placeholders(module: torch.nn.Module) -> Optional[List[str]]:
    if isinstance(module, torch.fx.GraphModule):
        return [str(n.target) for n in module.graph.nodes if n.op == 'placeholder']
    return None
