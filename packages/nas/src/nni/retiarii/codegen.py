"""Code generation: turn a (mutated) graph-IR :class:`Model` back into a runnable PyTorch module.

Works on models made by :func:`nni.retiarii.converter.convert_to_graph`. The traced torch.fx template
gives the data flow; every module node is rebuilt from its current operation: an unchanged operation
reuses (a deep copy of) the original module, a replaced one is instantiated as
``resolve_operation_type(type)(**parameters)``. Mutators may replace operations and relabel nodes (the
docs' ``node.update_operation(type, params)`` pattern); adding or removing nodes or edges is refused with
a one-line error, since the template could not express it.
"""
from __future__ import annotations

import copy
import functools
from typing import Dict, List, Tuple

import torch
import torch.fx

from .converter import resolve_operation_type
from .graph import Graph, Model

__all__ = ['model_to_pytorch_module']


def _edge_signature(graph: Graph) -> List[Tuple[str, object, str, object]]:
    return sorted((e.head.name, e.head_slot, e.tail.name, e.tail_slot) for e in graph.edges)  # type: ignore[arg-type]


def _check_topology(model: Model, template_model: Model) -> None:
    graph, original = model.root_graph, template_model.root_graph
    assert graph is not None and original is not None
    if sorted(n.name for n in graph.hidden_nodes) != sorted(n.name for n in original.hidden_nodes) or \
            _edge_signature(graph) != _edge_signature(original):
        raise ValueError(f'code generation: the nodes or edges of graph {graph.name!r} were changed; only operations '
                         f'can be replaced (Node.update_operation) in models converted with torch.fx')


def model_to_pytorch_module(model: Model) -> torch.nn.Module:
    """Build the module that ``model`` (a converted, possibly mutated Model) describes.

    The result is a ``torch.fx.GraphModule``; its ``code`` attribute is the generated ``forward`` source.
    """
    template = model.template
    if not isinstance(template, torch.fx.GraphModule) or model.root_graph is None:
        raise ValueError('code generation: the model was not made by convert_to_graph (it has no torch.fx template)')
    base = model.history[0].from_model if model.history else model
    _check_topology(model, base)
    graph = copy.deepcopy(template.graph)
    root = torch.nn.Module()
    names: Dict[str, str] = {}
    for fx_node in graph.nodes:
        if fx_node.op != 'call_module':
            continue
        ir_node = model.root_graph.get_node_by_name(fx_node.name)
        assert ir_node is not None
        operation = ir_node.operation
        original = operation.attributes.get('module')
        if original is not None:
            module = copy.deepcopy(original)
        else:
            cls = resolve_operation_type(operation.type)
            try:
                module = cls(**operation.parameters)
            except TypeError as err:
                raise ValueError(f'code generation: node {ir_node.name!r}: {operation.type}(**{operation.parameters}) failed: {err}') from None
        # flat names: the template's dotted targets (body.0) would need the parent containers
        flat = fx_node.name
        names[str(fx_node.target)] = flat
        root.add_module(flat, module)
        fx_node.target = flat
    for fx_node in graph.nodes:
        if fx_node.op == 'get_attr':
            target = str(fx_node.target)
            flat = target.replace('.', '_')
            value = functools.reduce(getattr, target.split('.'), template)
            setattr(root, flat, copy.deepcopy(value))
            fx_node.target = flat
    graph.lint()
    return torch.fx.GraphModule(root, graph, class_name=f'{template.__class__.__name__}_generated')
