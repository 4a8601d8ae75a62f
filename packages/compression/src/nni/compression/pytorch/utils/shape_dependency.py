"""Channel and group dependencies between layers, found on the torch.fx graph.

* :class:`ChannelDependency`: conv layers whose outputs meet in an element-wise op
  (``add``/``sub``/``mul``/``div``, through BN/activations/pooling) or a ``cat`` form one set;
  their filters must be pruned together.
* :class:`GroupDependency`: for every conv, the number its filter count must stay divisible by.
* :func:`not_safe_to_prune`: layers whose output reaches a ``view``/``reshape``.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn

from . import _graph as g

__all__ = ["ChannelDependency", "GroupDependency", "not_safe_to_prune"]


class _UnionFind:
    def __init__(self):
        self.parent: dict[Any, Any] = {}

    def find(self, item: Any) -> Any:
        self.parent.setdefault(item, item)
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: Any, b: Any) -> None:
        self.parent[self.find(a)] = self.find(b)


class _Topology:
    """Tensors that carry the same channels (one class per channel space) on a traced graph."""

    def __init__(self, model: nn.Module, dummy_input: Any, traced: fx.GraphModule | None = None,
                 join_cat: bool = True):
        was_training = model.training
        model.eval()
        try:
            if traced is None:
                traced = g.trace(model, dummy_input)
            elif any(g.shape_of(n) is None for n in traced.graph.nodes if n.op == "placeholder"):
                from torch.fx.passes.shape_prop import ShapeProp
                ShapeProp(traced).propagate(*g.as_tuple(dummy_input))
        finally:
            model.train(was_training)
        self.gm = traced
        self.modules = dict(model.named_modules())
        self.nodes = list(traced.graph.nodes)
        self.classes = _UnionFind()
        for node in self.nodes:
            kind = g.node_kind(node, self.modules)
            ins = g.tensor_inputs(node)
            if kind in ("channelwise", "reduce") and ins:
                self.classes.union(node, ins[0])
            elif kind == "binary":
                for i in ins:
                    if g.shape_of(i) == g.shape_of(node):
                        self.classes.union(node, i)
            elif kind == "cat" and join_cat:
                for i in ins[1:]:
                    self.classes.union(i, ins[0])
        self.convs = [n for n in self.nodes if n.op == "call_module" and isinstance(self.modules[n.target], g.CONV_TYPES)]

    def layer_nodes(self, types: tuple) -> list[fx.Node]:
        return [n for n in self.nodes if n.op == "call_module" and isinstance(self.modules[n.target], types)]


class ChannelDependency:
    """Sets of conv layers whose output channels must be pruned together.

    Args:
        model: the model to analyse.
        dummy_input: a tensor or tuple of tensors to trace with.
        traced_model: an already traced ``torch.fx.GraphModule`` of ``model`` (optional).
        prune_type: ``'Filter'`` (output channels meet in add/cat) or ``'Channel'`` (layers that
            read the same channels, so pruning their input channels must agree).

    Example:
        >>> ChannelDependency(net, torch.ones(1, 3, 224, 224)).export('dependency.csv')
    """

    def __init__(self, model: nn.Module, dummy_input: Any, traced_model: fx.GraphModule | None = None,
                 prune_type: str = "Filter"):
        if prune_type not in ("Filter", "Channel"):
            raise ValueError(f"prune_type: {prune_type!r} is not supported; allowed: 'Filter', 'Channel'")
        self.prune_type = prune_type
        self._topology = _Topology(model, dummy_input, traced_model)
        self.dependency: dict[str, set[str]] = {}
        self.build_dependency()

    def build_dependency(self) -> dict[str, set[str]]:
        """Maps every conv layer name to the set of layers (itself included) it depends on."""
        topo = self._topology
        by_class: dict[Any, list[str]] = {}
        for node in topo.convs:
            anchor = node if self.prune_type == "Filter" else g.tensor_inputs(node)[0]
            members = by_class.setdefault(topo.classes.find(anchor), [])
            if node.target not in members:
                members.append(node.target)
        self.dependency = {}
        for members in by_class.values():
            for name in members:
                self.dependency.setdefault(name, set()).update(members)
        return self.dependency

    @property
    def dependency_sets(self) -> list[set[str]]:
        """The dependency sets, each conv in exactly one, e.g. ``[{'conv1', 'conv2'}, {'conv3'}]``."""
        sets: list[set[str]] = []
        for name, members in self.dependency.items():
            if not any(name in s for s in sets):
                sets.append(set(members))
        return sets

    def export(self, filepath: str | Path) -> None:
        """Writes ``Dependency Set,Convolutional Layers`` then one ``Set i,layer,...`` row per set."""
        with open(filepath, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["Dependency Set", "Convolutional Layers"])
            for index, members in enumerate(self.dependency_sets, start=1):
                writer.writerow([f"Set {index}", *sorted(members)])


def _group_count(conv: nn.Module) -> int:
    """Groups that constrain the filter count (depth-wise convs lose whole groups: no constraint)."""
    return 1 if conv.groups == conv.in_channels else conv.groups


class GroupDependency:
    """For each conv, the number its filter count must remain divisible by.

    The count is the least common multiple of the conv's own ``groups`` and the ``groups`` of
    every conv reading its output (e.g. conv1(groups=2) feeding conv2(groups=4) gives 4).
    Depth-wise convs (``groups == in_channels``) add no constraint: pruning removes whole groups.
    """

    def __init__(self, model: nn.Module, dummy_input: Any, traced_model: fx.GraphModule | None = None):
        self._topology = _Topology(model, dummy_input, traced_model, join_cat=False)
        self.dependency: dict[str, int] = {}
        self.build_dependency()

    def build_dependency(self) -> dict[str, int]:
        """Returns (and stores in ``self.dependency``) ``{conv name: minimum divisor}``."""
        topo = self._topology
        readers: dict[Any, list[int]] = {}
        for node in topo.convs:
            ins = g.tensor_inputs(node)
            if ins:
                readers.setdefault(topo.classes.find(ins[0]), []).append(_group_count(topo.modules[node.target]))
        self.dependency = {}
        for node in topo.convs:
            counts = [_group_count(topo.modules[node.target])] + readers.get(topo.classes.find(node), [])
            self.dependency[node.target] = math.lcm(self.dependency.get(node.target, 1), *counts)
        return self.dependency

    def export(self, filepath: str | Path) -> None:
        """Writes ``Conv layer, Groups`` then one ``name, count`` row per conv."""
        with open(filepath, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["Conv layer", "Groups"])
            for name, count in self.dependency.items():
                writer.writerow([name, count])


def not_safe_to_prune(model: nn.Module, dummy_input: Any) -> list[str]:
    """Names of Conv/Linear layers whose output reaches a ``view``/``reshape`` (a shape-constraint op).

    Pruning them may break a hard-coded shape after speedup; exclude them if speedup fails.
    """
    topo = _Topology(model, dummy_input, join_cat=False)
    constrained = set()
    for node in topo.nodes:
        is_reshape = (node.op == "call_method" and node.target in ("view", "reshape")) or (
            node.op == "call_function" and node.target is torch.reshape)
        if is_reshape:
            ins = g.tensor_inputs(node)
            if ins:
                constrained.add(topo.classes.find(ins[0]))
    found = []
    for node in topo.layer_nodes(g.CONV_TYPES + (nn.Linear,)):
        if topo.classes.find(node) in constrained and node.target not in found:
            found.append(node.target)
    return found
