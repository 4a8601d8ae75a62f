"""Convert a PyTorch module to the graph IR with ``torch.fx`` (for user-written mutators).

We trace with ``torch.fx`` rather than TorchScript: fx keeps Python-level calls, needs no type
annotations, and its graph maps one-to-one onto our IR. Limits are fx's: data-dependent control flow in
``forward`` must live inside a basic unit (decorate that module with ``@basic_unit``).

Mapping: every ``forward`` input is an input name of the root graph; every leaf module call is a node
named after the fx node (``body_0`` for ``self.body[0]``) whose operation type is the class name for
``torch.nn`` / ``nni.retiarii.nn.pytorch`` classes (``'Conv2d'``) and ``'module.QualName'`` otherwise,
with the recorded init arguments as parameters (basic units only) and its ``label`` (Placeholder and the
inline primitives); function and method calls become nodes of type ``'function.<name>'`` /
``'method.<name>'``. Edge tail slots are input positions; head slots are ``None`` (one output per node;
tuple outputs go through ``function.getitem`` nodes as in fx).

Leaf modules: ``torch.nn`` modules (fx's default), basic units, ``Placeholder`` and the primitives
(``LayerChoice``, ``InputChoice``, ``ValueChoice``, ``Repeat``, ``ChosenInputs``).
"""
from __future__ import annotations

import importlib
import inspect
from typing import Any, Dict, List, Optional

import torch
import torch.fx

from .graph import Graph, Model, Operation
from .mutator import Mutator
from .nn import pytorch as nas_nn
from .nn.pytorch import api, component
from .space import MutableInfo, extract_mutables
from .wrapper import get_init_args, is_basic_unit

__all__ = ['convert_to_graph', 'inline_mutators', 'InlineGraphMutator', 'operation_type_of', 'resolve_operation_type']

_LEAF_TYPES = (api.Placeholder, api.LayerChoice, api.InputChoice, api.ValueChoice, api.ChosenInputs, component.Repeat)


class _Tracer(torch.fx.Tracer):
    def is_leaf_module(self, m: torch.nn.Module, module_qualified_name: str) -> bool:
        if isinstance(m, _LEAF_TYPES) or is_basic_unit(m):
            return True
        return super().is_leaf_module(m, module_qualified_name)


def operation_type_of(cls: type) -> str:
    """The operation type of a module class: ``'Conv2d'`` for torch.nn classes, else ``'module.QualName'``."""
    public = getattr(nas_nn, cls.__name__, None)
    if public is cls or (isinstance(public, type) and getattr(public, '_nni_basic_unit', False) and public.__bases__ == (cls,)):
        return cls.__name__
    return f'{cls.__module__}.{cls.__qualname__}'


def resolve_operation_type(type_name: str) -> type:
    """The module class of an operation type (inverse of :func:`operation_type_of`)."""
    if '.' not in type_name:
        cls = getattr(nas_nn, type_name, None)
        if isinstance(cls, type):
            return cls
        raise ValueError(f'operation type {type_name!r} is not a module of nni.retiarii.nn.pytorch; '
                         f'use a torch.nn class name or a full path such as "mypackage.ops.MyOp"')
    module_name, _, qualname = type_name.rpartition('.')
    while module_name:
        try:
            obj: Any = importlib.import_module(module_name)
            break
        except ImportError:
            module_name, _, head = module_name.rpartition('.')
            qualname = f'{head}.{qualname}'
    else:
        raise ValueError(f'operation type {type_name!r}: no importable module in the path')
    for part in qualname.split('.'):
        obj = getattr(obj, part, None)
    if not isinstance(obj, type):
        raise ValueError(f'operation type {type_name!r} does not name a class')
    return obj


def _parameters_of(module: torch.nn.Module) -> Dict[str, Any]:
    if isinstance(module, api.Placeholder):
        return dict(module.related_info)
    init = get_init_args(module)
    if init is None:
        return {}
    args, kwargs = init
    try:
        bound = inspect.signature(type(module).__init__).bind(None, *args, **kwargs)
    except TypeError:
        return {}
    params = dict(bound.arguments)
    params.pop(next(iter(params)))  # self
    for name, param in inspect.signature(type(module).__init__).parameters.items():
        if name in params and param.kind == param.VAR_KEYWORD:
            params.update(params.pop(name))
        elif name in params and param.kind == param.VAR_POSITIONAL:
            return {}  # not expressible as keyword parameters; codegen reuses the module itself
    return params


def _operation_for(fx_node: torch.fx.Node, root: torch.nn.Module) -> tuple[Operation, Optional[str]]:
    if fx_node.op == 'call_module':
        module = root.get_submodule(str(fx_node.target))
        operation = Operation.new(operation_type_of(type(module)), _parameters_of(module), attributes={'module': module})
        label = getattr(module, 'label', None)
        return operation, label if isinstance(label, str) else None
    if fx_node.op == 'call_function':
        name = getattr(fx_node.target, '__name__', str(fx_node.target))
        return Operation.new(f'function.{name}', attributes={'fx_target': fx_node.target}), None
    if fx_node.op == 'call_method':
        return Operation.new(f'method.{fx_node.target}'), None
    return Operation.new('get_attr', {'target': str(fx_node.target)}), None


def convert_to_graph(module: torch.nn.Module) -> Model:
    """Trace ``module`` with torch.fx and return a frozen :class:`Model` whose root graph mirrors it.

    The model keeps the traced template for :func:`nni.retiarii.codegen.model_to_pytorch_module`.
    """
    try:
        fx_graph = _Tracer().trace(module)
    except Exception as err:  # fx raises many types; the user needs the module name and the fix
        raise ValueError(f'{type(module).__name__} cannot be traced with torch.fx ({type(err).__name__}: {err}); '
                         f'move dynamic code in forward into a module decorated with @basic_unit') from err
    template = torch.fx.GraphModule(module, fx_graph, class_name=type(module).__name__)
    model = Model(_internal=True)
    model.python_class = type(module)
    init = get_init_args(module)
    if init is not None:
        model.python_init_args, model.python_init_params = init
    model.template = template
    graph = Graph.new(model, '_model')
    inputs = [n for n in template.graph.nodes if n.op == 'placeholder']
    graph.input_names = [str(n.target) for n in inputs]
    nodes = {n.name: (graph.input_node, i) for i, n in enumerate(inputs)}
    for fx_node in template.graph.nodes:
        if fx_node.op in ('placeholder', 'output'):
            continue
        operation, label = _operation_for(fx_node, module)
        nodes[fx_node.name] = (graph.add_node(fx_node.name, operation, label=label), None)
    for fx_node in template.graph.nodes:
        if fx_node.op == 'placeholder':
            continue
        tail = graph.output_node if fx_node.op == 'output' else nodes[fx_node.name][0]
        inputs_of = fx_node.all_input_nodes
        for slot, source in enumerate(inputs_of):
            head, head_slot = nodes[source.name]
            graph.add_edge((head, head_slot), (tail, slot if len(inputs_of) > 1 else None))
    graph.output_names = ['output']
    return model.freeze()


def _value_choice_labels(obj: Any, found: set) -> None:
    if isinstance(obj, api.ValueChoice):
        if not obj.fixed:
            found.add(obj.label)
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            _value_choice_labels(item, found)
    elif isinstance(obj, dict):
        for item in obj.values():
            _value_choice_labels(item, found)


def _substitute(obj: Any, label: str, value: Any) -> Any:
    if isinstance(obj, api.ValueChoice) and obj.label == label:
        return value
    if isinstance(obj, list):
        return [_substitute(x, label, value) for x in obj]
    if isinstance(obj, tuple):
        return tuple(_substitute(x, label, value) for x in obj)
    if isinstance(obj, dict):
        return {k: _substitute(v, label, value) for k, v in obj.items()}
    return obj


def _fixed_operation(module: torch.nn.Module, value: Any) -> Operation:
    """The operation a primitive node becomes once its choice is ``value``."""
    from .fixed import FixedArchitecture

    if isinstance(module, api.LayerChoice):
        chosen = module[value]
        return Operation.new(operation_type_of(type(chosen)), _parameters_of(chosen), attributes={'module': chosen})
    if isinstance(module, api.InputChoice):
        return Operation.new('ChosenInputs', {'chosen': list(value), 'reduction': module.reduction})
    if isinstance(module, api.ValueChoice):
        frozen = api.ValueChoice.create_fixed_module(FixedArchitecture({module.label: value}), module.label, module.candidates)
        return Operation.new('ValueChoice', {'value': value}, attributes={'module': frozen})
    assert isinstance(module, component.Repeat)
    return Operation.new('Sequential', {}, attributes={'module': torch.nn.Sequential(*module.blocks[:value])})


class InlineGraphMutator(Mutator):
    """Applies one label of the inline primitives to a converted model (graph-based engine).

    One ``choice`` over the label's candidates; the chosen value is also written to ``model.sample``, so a
    graph model carries the same architecture dict as a pure-python one.
    """

    def __init__(self, info: MutableInfo):
        super().__init__(label=info.label)
        self.mutable = info

    def mutate(self, model: Model) -> None:
        value = self.choice(self.mutable.candidates)
        model.sample[self.mutable.label] = value
        for node in model.get_nodes():
            module = node.operation.attributes.get('module')
            if node.label == self.label and isinstance(module, _CHOICE_TYPES):
                node.update_operation(_fixed_operation(module, value))
                continue
            found: set = set()
            _value_choice_labels(node.operation.parameters, found)
            if self.label in found:
                # drop the module: code generation re-creates the basic unit from the new parameters
                node.update_operation(node.operation.type, _substitute(node.operation.parameters, self.label, value))

    def __repr__(self) -> str:
        return f'InlineGraphMutator(label={self.label!r}, candidates={self.mutable.candidates!r})'


_CHOICE_TYPES = (api.LayerChoice, api.InputChoice, api.ValueChoice, component.Repeat)


def inline_mutators(model: Model) -> List[InlineGraphMutator]:
    """The mutators that realise the inline primitives of a converted model, one per label.

    Only choices that are graph nodes (a primitive called in ``forward``) or init arguments of a basic-unit
    node are supported; a choice nested inside a LayerChoice candidate or a Repeat block raises a one-line
    ValueError (use the pure-python engine for such spaces).
    """
    if not isinstance(model.template, torch.fx.GraphModule):
        raise ValueError('inline_mutators: the model was not made by convert_to_graph')
    mutables = extract_mutables(model.template)
    for node in model.get_nodes():
        module = node.operation.attributes.get('module')
        if module is None:
            continue
        for child in module.children():
            nested = extract_mutables(child)
            if nested:
                raise ValueError(f'label {next(iter(nested))!r} is nested inside node {node.name!r} (a LayerChoice candidate, a '
                                 f'Repeat block or a basic unit\'s submodule); the graph-based engine supports a choice only as a '
                                 f'node or as an init argument of a basic unit; use the pure-python engine')
    return [InlineGraphMutator(info) for info in mutables.values()]
