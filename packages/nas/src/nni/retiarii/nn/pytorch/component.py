"""Composite primitives: ``Repeat``, ``Cell`` and ``NasBench201Cell``."""
from __future__ import annotations

import copy
import inspect
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn

from ...fixed import MISSING, FixedArchitecture, current_fixed_arch
from ...utils import generate_label
from .api import InputChoice, LayerChoice, Mutable, ValueChoice, _chosen_name

__all__ = ['Repeat', 'Cell', 'NasBench101Cell', 'NasBench201Cell']

BlockSpec = Union[Callable[..., nn.Module], List[Callable[..., nn.Module]], nn.Module, List[nn.Module]]


def _call_factory(factory: Callable[..., nn.Module], index: int) -> nn.Module:
    """Call ``factory(index)`` if it has a required positional parameter, else ``factory()``."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return factory()
    required = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    return factory(index) if required else factory()


def _depth_range(depth: Any, where: str) -> Tuple[int, int]:
    if isinstance(depth, int) and not isinstance(depth, bool):
        low = high = depth
    elif isinstance(depth, (tuple, list)) and len(depth) == 2 and all(isinstance(d, int) and not isinstance(d, bool) for d in depth):
        low, high = depth
    else:
        raise ValueError(f'{where}: depth must be an int or a (min, max) pair of ints, got {depth!r}')
    if not 1 <= low <= high:
        raise ValueError(f'{where}: depth {depth!r} is invalid; need 1 <= min <= max')
    return low, high


def _build_blocks(blocks: BlockSpec, count: int, where: str) -> List[nn.Module]:
    if isinstance(blocks, (list, tuple)):
        if len(blocks) != count:
            raise ValueError(f'{where}: a list of blocks must have max depth = {count} entries, got {len(blocks)}')
        return [b if isinstance(b, nn.Module) else _call_factory(b, i) for i, b in enumerate(blocks)]
    if isinstance(blocks, nn.Module):
        return [copy.deepcopy(blocks) for _ in range(count)]
    if callable(blocks):
        return [_call_factory(blocks, i) for i in range(count)]
    raise ValueError(f'{where}: blocks must be a module, a callable returning one, or a list of those; got {type(blocks).__name__}')


class Repeat(Mutable):
    """Repeat a block a chosen number of times (applied in sequence).

    Args:
        blocks: a module (deep-copied for every repetition), a callable (called as ``block(index)`` if it has
            a required positional parameter, else ``block()``), or a list of ``max_depth`` modules/callables
            of which a prefix is used.
        depth: an int (fixed number of repetitions, not a choice) or ``(min, max)``.
        label: identifier of the depth choice.

    Export value: the depth (int). Fixed form: ``nn.Sequential`` of the first ``depth`` blocks. The choices
    inside blocks beyond the chosen depth may be left out of a ``fixed_arch`` dict.
    In the model space, ``forward`` applies the first ``min`` blocks.
    """

    kind = 'repeat'

    @classmethod
    def _split_label(cls, args: tuple, kwargs: Dict[str, Any]) -> Tuple[Optional[str], tuple, Dict[str, Any]]:
        kwargs = dict(kwargs)
        if len(args) > 2:
            return args[2], args[:2], kwargs
        return kwargs.pop('label', None), args, kwargs

    def __init__(self, blocks: BlockSpec, depth: Union[int, Tuple[int, int]], label: Optional[str] = None):
        super().__init__()
        self._take_label()
        self.min_depth, self.max_depth = _depth_range(depth, self._describe())
        self.blocks = nn.ModuleList(_build_blocks(blocks, self.max_depth, self._describe()))
        self._prior = None

    @classmethod
    def create_fixed_module(cls, arch: FixedArchitecture, label: str, blocks: BlockSpec,
                            depth: Union[int, Tuple[int, int]]) -> nn.Sequential:
        where = f'Repeat {label!r}'
        low, high = _depth_range(depth, where)
        chosen = low
        if low != high:
            value = arch.lookup(label, 'Repeat')
            if value is not MISSING:
                if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                    raise ValueError(f'fixed_arch: {where}: depth {value!r} is not allowed; give an int in [{low}, {high}]')
                chosen = value
        if isinstance(blocks, (list, tuple)):
            if len(blocks) != high:
                raise ValueError(f'{where}: a list of blocks must have max depth = {high} entries, got {len(blocks)}')
            kept = [b if isinstance(b, nn.Module) else _call_factory(b, i) for i, b in enumerate(blocks[:chosen])]
            with arch.lenient():
                [_call_factory(b, i) for i, b in enumerate(blocks) if i >= chosen and not isinstance(b, nn.Module)]
        elif isinstance(blocks, nn.Module):
            kept = [copy.deepcopy(blocks) for _ in range(chosen)]
        else:
            kept = _build_blocks(blocks, chosen, where)
            # build the dropped blocks too, so automatic labels after this Repeat match the model space
            with arch.lenient():
                [_call_factory(blocks, i) for i in range(chosen, high)]
        return nn.Sequential(*kept)

    @property
    def candidates(self) -> List[int]:
        return list(range(self.min_depth, self.max_depth + 1))

    def forward(self, x: Any) -> Any:
        for block in self.blocks[:self.min_depth]:
            x = block(x)
        return x

    def extra_repr(self) -> str:
        return f'depth=({self.min_depth}, {self.max_depth}), label={self.label!r}'


class Cell(nn.Module):
    """A NAS cell (Zoph & Le 2016; NASNet): ``num_nodes`` nodes, each the sum of ``num_ops_per_node`` ops.

    Every op of node ``i`` is a ``LayerChoice`` over ``op_candidates`` (label ``<label>/op_<i>_<k>``) applied to
    one input chosen by an ``InputChoice`` (label ``<label>/input_<i>_<k>``) among the cell inputs and the
    previous nodes (``num_predecessors + i`` candidates, predecessors first). The output concatenates all
    nodes along dim 1 (``merge_op='all'``, the only one supported). Cells with the same label share choices.

    Args:
        op_candidates: a list or dict of modules (deep-copied for every op), or a callable returning one.
        num_nodes: number of nodes.
        num_ops_per_node: ops summed per node.
        num_predecessors: number of cell inputs; ``forward`` takes a list of that many tensors (or one tensor if 1).
        merge_op: ``'all'``.
        label: prefix of the inner labels (automatic if ``None``).
    """

    def __init__(self, op_candidates: Union[Callable[[], Any], List[nn.Module], Dict[str, nn.Module]], num_nodes: int,
                 num_ops_per_node: int = 1, num_predecessors: int = 1, merge_op: str = 'all', label: Optional[str] = None):
        super().__init__()
        self.label = generate_label(label)
        where = f'Cell {self.label!r}'
        for name, value in (('num_nodes', num_nodes), ('num_ops_per_node', num_ops_per_node), ('num_predecessors', num_predecessors)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f'{where}: {name} must be a positive int, got {value!r}')
        if merge_op != 'all':
            raise ValueError(f"{where}: merge_op {merge_op!r} is not supported; only 'all' is")
        self.num_nodes = num_nodes
        self.num_ops_per_node = num_ops_per_node
        self.num_predecessors = num_predecessors
        self.merge_op = merge_op
        self.ops = nn.ModuleList()
        self.inputs = nn.ModuleList()
        for i in range(num_nodes):
            node_ops, node_inputs = nn.ModuleList(), nn.ModuleList()
            for k in range(num_ops_per_node):
                candidates = op_candidates() if callable(op_candidates) and not isinstance(op_candidates, nn.Module) \
                    else copy.deepcopy(op_candidates)
                node_ops.append(LayerChoice(candidates, label=f'{self.label}/op_{i}_{k}'))
                node_inputs.append(InputChoice(num_predecessors + i, 1, label=f'{self.label}/input_{i}_{k}'))
            self.ops.append(node_ops)
            self.inputs.append(node_inputs)

    def forward(self, x: Union[torch.Tensor, List[torch.Tensor]]) -> torch.Tensor:
        states = [x] if isinstance(x, torch.Tensor) else list(x)
        if len(states) != self.num_predecessors:
            raise ValueError(f'Cell {self.label!r}: forward got {len(states)} inputs, expected num_predecessors={self.num_predecessors}')
        for ops, inputs in zip(self.ops, self.inputs):
            outputs = [op(choice(states)) for op, choice in zip(ops, inputs)]
            node = outputs[0]
            for out in outputs[1:]:
                node = node + out
            states.append(node)
        return torch.cat(states[self.num_predecessors:], 1)


class NasBench201Cell(nn.Module):
    """The NAS-Bench-201 cell: a dense DAG over ``num_tensors`` tensors with one op choice per edge.

    Edge ``j -> i`` (``j < i``) is a ``LayerChoice`` labelled ``<label>/<j>_<i>`` whose candidates are built as
    ``factory(in_features, out_features)`` for edges leaving tensor 0 and ``factory(out_features, out_features)``
    otherwise. Tensor ``i`` is the sum of its incoming edges; the output is the last tensor. With the 5 ops of
    NAS-Bench-201 and 4 tensors the space has 5**6 = 15,625 cells.

    Args:
        op_candidates: a list or dict (name -> factory) of callables ``(in_features, out_features) -> Module``.
        in_features: channels of the input tensor.
        out_features: channels of every other tensor.
        num_tensors: number of tensors, the input included.
        label: prefix of the edge labels (automatic if ``None``).
    """

    def __init__(self, op_candidates: Union[List[Callable[[int, int], nn.Module]], Dict[str, Callable[[int, int], nn.Module]]],
                 in_features: int, out_features: int, num_tensors: int = 4, label: Optional[str] = None):
        super().__init__()
        self.label = generate_label(label)
        if not isinstance(num_tensors, int) or num_tensors < 2:
            raise ValueError(f'NasBench201Cell {self.label!r}: num_tensors must be an int >= 2, got {num_tensors!r}')
        if isinstance(op_candidates, dict):
            factories = OrderedDict(op_candidates)
        elif isinstance(op_candidates, (list, tuple)) and op_candidates:
            factories = OrderedDict((str(i), f) for i, f in enumerate(op_candidates))
        else:
            raise ValueError(f'NasBench201Cell {self.label!r}: op_candidates must be a non-empty list or dict of factories')
        self.num_tensors = num_tensors
        self.layers = nn.ModuleList([nn.ModuleList()])
        for i in range(1, num_tensors):
            incoming = nn.ModuleList()
            for j in range(i):
                width = in_features if j == 0 else out_features
                incoming.append(LayerChoice(OrderedDict((name, f(width, out_features)) for name, f in factories.items()),
                                            label=f'{self.label}/{j}_{i}'))
            self.layers.append(incoming)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tensors = [x]
        for incoming in self.layers[1:]:
            total = incoming[0](tensors[0])
            for j in range(1, len(incoming)):
                total = total + incoming[j](tensors[j])
            tensors.append(total)
        return tensors[-1]


def _nb101_prune(matrix: List[List[int]]) -> List[int]:
    """Vertices on some input -> output path (NAS-Bench-101's pruning); empty if the output is unreachable."""
    n = len(matrix)
    forward, stack = {0}, [0]
    while stack:
        v = stack.pop()
        for w in range(v + 1, n):
            if matrix[v][w] and w not in forward:
                forward.add(w)
                stack.append(w)
    backward, stack = {n - 1}, [n - 1]
    while stack:
        v = stack.pop()
        for u in range(v):
            if matrix[u][v] and u not in backward:
                backward.add(u)
                stack.append(u)
    if n - 1 not in forward:
        return []
    return sorted(forward & backward)


def _nb101_channels(in_features: int, out_features: int, matrix: List[List[int]]) -> List[int]:
    """Channels per vertex as in NAS-Bench-101: the output's channels are split among the vertices feeding it."""
    n = len(matrix)
    channels = [0] * n
    channels[0], channels[-1] = in_features, out_features
    if n == 2:
        return channels
    feeding = [v for v in range(1, n - 1) if matrix[v][n - 1]]
    share, extra = divmod(out_features, len(feeding))
    for v in feeding:
        channels[v] = share + (1 if extra > 0 else 0)
        extra -= 1
    for v in range(n - 2, 0, -1):
        if not matrix[v][n - 1]:
            channels[v] = max(channels[w] for w in range(v + 1, n - 1) if matrix[v][w])
    return channels


class NasBench101Cell(nn.Module):
    """The NAS-Bench-101 cell: a DAG of up to ``max_num_nodes`` vertices (input, hidden ops, output).

    Choices (``<label>`` is the cell's label):

    - ``<label>/num_nodes``: ValueChoice over ``2 .. max_num_nodes`` (prior proportional to ``2**n``: larger
      graphs are far more numerous);
    - ``<label>/op<i>``: LayerChoice over ``op_candidates`` for hidden vertex ``i`` (``1 .. max_num_nodes-2``);
    - ``<label>/input<i>``: InputChoice(``i``, n_chosen=None): the earlier vertices feeding vertex ``i``
      (``1 .. max_num_nodes-1``; vertex ``num_nodes-1`` is the output).

    The fixed cell follows NAS-Bench-101: vertices not on an input -> output path are pruned; the output's
    channels are split among the hidden vertices feeding it, whose outputs are concatenated; an input ->
    output edge adds ``projection(in_features, out_features)`` of the input; a hidden vertex sums the
    (channel-truncated) outputs of its hidden inputs and the projected input. A fixed architecture whose
    pruned graph has more than ``max_num_edges`` edges raises :class:`nni.retiarii.InvalidMutation`.
    In the model space (first candidates: two vertices) the cell is ``projection(x)``.

    Args:
        op_candidates: a list or dict (name -> factory) of callables ``(num_features) -> Module`` keeping the shape.
        in_features / out_features: channels of the input and of the output.
        projection: a callable ``(in_features, out_features) -> Module`` (e.g. conv1x1-BN-ReLU).
        max_num_nodes: at most 13 (InputChoice's limit for ``n_chosen=None``).
        max_num_edges: the edge budget (9 in NAS-Bench-101).
    """

    def __init__(self, op_candidates: Union[List[Callable[[int], nn.Module]], Dict[str, Callable[[int], nn.Module]]],
                 in_features: int, out_features: int, projection: Callable[[int, int], nn.Module],
                 max_num_nodes: int = 7, max_num_edges: int = 9, label: Optional[str] = None):
        super().__init__()
        self.label = generate_label(label)
        where = f'NasBench101Cell {self.label!r}'
        if not isinstance(max_num_nodes, int) or not 2 <= max_num_nodes <= 13:
            raise ValueError(f'{where}: max_num_nodes must be an int in [2, 13], got {max_num_nodes!r}')
        if isinstance(op_candidates, dict):
            self.op_factories = OrderedDict(op_candidates)
        elif isinstance(op_candidates, (list, tuple)) and op_candidates:
            self.op_factories = OrderedDict((str(i), f) for i, f in enumerate(op_candidates))
        else:
            raise ValueError(f'{where}: op_candidates must be a non-empty list or dict of factories')
        self.in_features, self.out_features = in_features, out_features
        self.max_num_nodes, self.max_num_edges = max_num_nodes, max_num_edges
        sizes = list(range(2, max_num_nodes + 1))
        weights = [2.0 ** n for n in sizes]
        prior = [w / sum(weights) for w in weights]
        arch = current_fixed_arch()
        if arch is not None:
            self._build_fixed(arch, projection, sizes, where)
            return
        self.fixed = False
        self.num_nodes = ValueChoice(sizes, prior=prior, label=f'{self.label}/num_nodes')
        self.ops = nn.ModuleList([
            LayerChoice(OrderedDict((name, f(out_features)) for name, f in self.op_factories.items()), label=f'{self.label}/op{i}')
            for i in range(1, max_num_nodes - 1)])
        self.inputs = nn.ModuleList([InputChoice(i, None, label=f'{self.label}/input{i}') for i in range(1, max_num_nodes)])
        self.projection = projection(in_features, out_features)

    def _build_fixed(self, arch: FixedArchitecture, projection: Callable[[int, int], nn.Module], sizes: List[int], where: str) -> None:
        from ...mutator import InvalidMutation

        self.fixed = True
        n = ValueChoice.create_fixed_module(arch, f'{self.label}/num_nodes', sizes).value
        matrix = [[0] * n for _ in range(n)]
        for v in range(1, n):
            for u in InputChoice.create_fixed_module(arch, f'{self.label}/input{v}', v, None).chosen:
                matrix[u][v] = 1
        names = list(self.op_factories)
        ops = {}
        for v in range(1, n - 1):
            value = arch.lookup(f'{self.label}/op{v}', 'LayerChoice')
            ops[v] = names[0] if value is MISSING else _chosen_name(value, names, f'fixed_arch: LayerChoice {self.label}/op{v!s}')
        keep = _nb101_prune(matrix)
        matrix = [[matrix[u][v] for v in keep] for u in keep]
        edges = sum(map(sum, matrix))
        if edges > self.max_num_edges:
            raise InvalidMutation(f'{where}: the architecture has {edges} edges after pruning, more than max_num_edges={self.max_num_edges}')
        self.matrix = matrix
        self.vertex_ops = [ops[v] for v in keep[1:-1]]
        self.channels = _nb101_channels(self.in_features, self.out_features, matrix)
        size = len(matrix)
        self.ops = nn.ModuleList([self.op_factories[name](self.channels[v]) for v, name in zip(range(1, size - 1), self.vertex_ops)])
        # one projection of the input per consumer that needs it (hidden vertices, then the output)
        self.projections = nn.ModuleDict({str(v): projection(self.in_features, self.channels[v])
                                          for v in range(1, size) if matrix[0][v]})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.fixed:
            return self.projection(x)
        matrix, size = self.matrix, len(self.matrix)
        tensors = [x]
        for v in range(1, size - 1):
            summed = [tensors[u][:, :self.channels[v]] for u in range(1, v) if matrix[u][v]]
            if matrix[0][v]:
                summed.append(self.projections[str(v)](x))
            total = summed[0]
            for t in summed[1:]:
                total = total + t
            tensors.append(self.ops[v - 1](total))
        feeding = [tensors[v] for v in range(1, size - 1) if matrix[v][size - 1]]
        if not feeding:
            return self.projections[str(size - 1)](x)
        out = torch.cat(feeding, 1) if len(feeding) > 1 else feeding[0]
        if matrix[0][size - 1]:
            out = out + self.projections[str(size - 1)](x)
        return out
