"""The network graph of the NetworkMorphism tuner and its JSON form (the docs' intermediate
representation).

Nodes are tensors (shapes channel-last, without the batch axis, e.g. ``[32, 32, 3]``), layers
are edges. Every shape-dependent layer argument (a conv's ``input_channel``, a batch-norm's
feature count, a dense layer's ``input_units``) is re-derived from the input tensor's shape
after each morph, so a morph only changes what it means to change (a conv's ``filters``, a new
layer) and the rest of the graph follows.

JSON (``graph_to_json`` / ``json_to_graph``), as the docs describe it: ``input_shape``,
``weighted`` (always ``false``: the JSON carries no weights, the trial trains the network from
scratch), ``operation_history``, ``layer_id_to_input_node_ids``,
``layer_id_to_output_node_ids``, ``adj_list``, ``reverse_adj_list``, ``node_list``
(``[id, shape]``) and ``layer_list`` (``[id, [StubType, input id(s), output id, args...]]``).
"""
from __future__ import annotations

import copy
import json
import random
from typing import Any

__all__ = ["Graph", "StubLayer", "json_to_graph", "graph_to_json", "LAYER_ARGS"]

# Argument names after (input id(s), output id), per layer kind (dimension suffix removed).
LAYER_ARGS: dict[str, tuple[str, ...]] = {
    "StubConv": ("input_channel", "filters", "kernel_size", "stride", "padding"),
    "StubDense": ("input_units", "units"),
    "StubBatchNormalization": ("num_features",),
    "StubDropout": ("rate",),
    "StubPooling": ("kernel_size", "stride", "padding"),
    "StubGlobalPooling": (),
    "StubReLU": (),
    "StubSoftmax": (),
    "StubFlatten": (),
    "StubAdd": (),
    "StubConcatenate": (),
}
_MERGE = ("StubAdd", "StubConcatenate")


def _kind(type_name: str) -> tuple[str, int]:
    """``'StubConv2d'`` -> ``('StubConv', 2)``; kinds without a dimension -> ``(name, 0)``."""
    if type_name[-2:] in ("1d", "2d", "3d"):
        return type_name[:-2], int(type_name[-2])
    return type_name, 0


class StubLayer:
    """One layer: its type name (``StubConv2d`` ...), input node id(s), output node id, arguments."""

    def __init__(self, type_name: str, inputs: list[int], output: int, **args: Any):
        kind, _ = _kind(type_name)
        if kind not in LAYER_ARGS:
            raise ValueError(f"graph JSON: unknown layer type {type_name!r}; known: "
                             + ", ".join(sorted(LAYER_ARGS)) + " (with 1d/2d/3d where they have a dimension)")
        self.type_name = type_name
        self.inputs = list(inputs)
        self.output = output
        self.args = dict(args)

    @property
    def kind(self) -> str:
        return _kind(self.type_name)[0]

    @property
    def dim(self) -> int:
        return _kind(self.type_name)[1]

    def to_list(self) -> list:
        ins: Any = self.inputs if self.kind in _MERGE or len(self.inputs) > 1 else self.inputs[0]
        return [self.type_name, ins, self.output] + [self.args[a] for a in LAYER_ARGS[self.kind]]

    @classmethod
    def from_list(cls, spec: list) -> "StubLayer":
        if not isinstance(spec, list) or len(spec) < 3 or not isinstance(spec[0], str):
            raise ValueError(f"graph JSON: a layer must be [StubType, input id(s), output id, args...], got {spec!r}")
        kind, _ = _kind(spec[0])
        names = LAYER_ARGS.get(kind, ())
        values = spec[3:]
        args: dict[str, Any] = dict(zip(names, values))
        if kind == "StubConv":  # the docs' example omits stride and padding: 1 and "same"
            args.setdefault("stride", 1)
            args.setdefault("padding", int(args.get("kernel_size", 3)) // 2)
        if kind == "StubPooling":
            args.setdefault("stride", args.get("kernel_size", 2))
            args.setdefault("padding", 0)
        missing = [n for n in names if n not in args]
        if missing:
            raise ValueError(f"graph JSON: layer {spec[0]} lacks {', '.join(missing)} (format: input id(s), output id, {', '.join(names)})")
        ins = spec[1] if isinstance(spec[1], list) else [spec[1]]
        return cls(spec[0], [int(i) for i in ins], int(spec[2]), **args)

    def output_shape(self, shapes: list[list[int]]) -> list[int]:
        """Derive the shape-dependent arguments from the input shapes; return the output shape."""
        kind, shape = self.kind, list(shapes[0])
        if kind == "StubConv":
            self.args["input_channel"] = shape[-1]
            k, s, p = (int(self.args[a]) for a in ("kernel_size", "stride", "padding"))
            return [(x + 2 * p - k) // s + 1 for x in shape[:-1]] + [int(self.args["filters"])]
        if kind == "StubPooling":
            k, s, p = (int(self.args[a]) for a in ("kernel_size", "stride", "padding"))
            return [(x + 2 * p - k) // s + 1 for x in shape[:-1]] + [shape[-1]]
        if kind == "StubBatchNormalization":
            self.args["num_features"] = shape[-1]
        elif kind == "StubDense":
            self.args["input_units"] = shape[-1]
            return [int(self.args["units"])]
        elif kind == "StubGlobalPooling":
            return [shape[-1]]
        elif kind == "StubFlatten":
            n = 1
            for x in shape:
                n *= x
            return [n]
        elif kind == "StubAdd":
            if any(list(s) != shape for s in shapes):
                raise ValueError(f"add of tensors with different shapes {shapes}")
        elif kind == "StubConcatenate":
            if any(list(s[:-1]) != shape[:-1] for s in shapes):
                raise ValueError(f"concatenation of tensors with different spatial shapes {shapes}")
            return shape[:-1] + [sum(s[-1] for s in shapes)]
        return shape

    def n_params(self) -> int:
        kind, a = self.kind, self.args
        if kind == "StubConv":
            return (int(a["kernel_size"]) ** max(self.dim, 1) * int(a["input_channel"]) + 1) * int(a["filters"])
        if kind == "StubDense":
            return (int(a["input_units"]) + 1) * int(a["units"])
        if kind == "StubBatchNormalization":
            return 2 * int(a["num_features"])
        return 0


class Graph:
    """A network as a DAG of tensors (nodes) and layers (edges), with the three morphs.

    Args:
        input_shape: the input tensor's shape, channel-last, without the batch axis.
    """

    def __init__(self, input_shape: list[int] | tuple[int, ...]):
        self.input_shape = [int(x) for x in input_shape]
        self.weighted = False
        self.operation_history: list[list] = []
        self.node_list: list[list[int]] = [list(self.input_shape)]
        self.layer_list: list[StubLayer] = []

    # ------------------------------------------------------------------ construction
    def add_layer(self, layer_type: str, inputs: int | list[int], **args: Any) -> int:
        """Append a layer reading ``inputs``; return its (new) output node id."""
        ins = inputs if isinstance(inputs, list) else [inputs]
        out = len(self.node_list)
        self.node_list.append([])
        layer = StubLayer(layer_type, ins, out, **args)
        self.layer_list.append(layer)
        self.node_list[out] = layer.output_shape([self.node_list[i] for i in ins])
        return out

    @property
    def n_nodes(self) -> int:
        return len(self.node_list)

    def _consumers(self, node: int) -> list[int]:
        return [i for i, layer in enumerate(self.layer_list) if node in layer.inputs]

    def topological_layers(self) -> list[int]:
        """Layer ids in an order where every layer comes after the producers of its inputs."""
        waiting: dict[int, list[int]] = {}
        missing = []
        for i, layer in enumerate(self.layer_list):
            ins = layer.inputs if len(layer.inputs) == 1 else set(layer.inputs)
            missing.append(len(ins))
            for n in ins:
                waiting.setdefault(n, []).append(i)
        order: list[int] = []
        ready = [0]
        while ready:
            node = ready.pop()
            for i in waiting.get(node, ()):
                missing[i] -= 1
                if missing[i] == 0:
                    order.append(i)
                    ready.append(self.layer_list[i].output)
        if len(order) != len(self.layer_list):
            raise ValueError("graph JSON: the layers do not form a DAG fed by node 0")
        return order

    def copy(self) -> "Graph":
        """An independent copy (cheaper than ``copy.deepcopy``)."""
        new = Graph.__new__(Graph)
        new.input_shape = list(self.input_shape)
        new.weighted = self.weighted
        new.operation_history = [list(op) for op in self.operation_history]
        new.node_list = [list(shape) for shape in self.node_list]
        new.layer_list = [StubLayer(lay.type_name, lay.inputs, lay.output, **lay.args) for lay in self.layer_list]
        return new

    def output_node(self) -> int:
        used = {n for layer in self.layer_list for n in layer.inputs}
        outs = [layer.output for layer in self.layer_list if layer.output not in used]
        if len(outs) != 1:
            raise ValueError(f"graph JSON: the network must have exactly one output tensor, found {len(outs)}")
        return outs[0]

    def infer_shapes(self) -> None:
        """Recompute every node shape (and shape-derived layer argument) from the input shape."""
        self.node_list[0] = list(self.input_shape)
        for i in self.topological_layers():
            layer = self.layer_list[i]
            shape = layer.output_shape([self.node_list[n] for n in layer.inputs])
            if any(x < 1 for x in shape):
                raise ValueError(f"layer {i} ({layer.type_name}) gives the empty shape {shape}")
            self.node_list[layer.output] = shape

    def n_params(self) -> int:
        return sum(layer.n_params() for layer in self.layer_list)

    # ------------------------------------------------------------------ morph helpers
    def _spatial_nodes(self) -> list[int]:
        """Nodes with a spatial shape that are outputs of a batch-norm or merge layer (block ends)."""
        return [layer.output for layer in self.layer_list
                if layer.kind in ("StubBatchNormalization", "StubAdd", "StubConcatenate")
                and len(self.node_list[layer.output]) > 1]

    def _insert_after(self, node: int, chain: list[tuple[str, dict]]) -> int:
        """Re-route ``node``'s consumers to the end of a new chain of layers starting at ``node``."""
        consumers = self._consumers(node)
        cur = node
        for layer_type, args in chain:
            cur = self.add_layer(layer_type, cur, **args)
        for i in consumers:
            layer = self.layer_list[i]
            layer.inputs = [cur if n == node else n for n in layer.inputs]
        return cur

    def _conv_type(self, node: int, base: str) -> str:
        return f"{base}{len(self.node_list[node]) - 1}d"

    # ------------------------------------------------------------------ morphs
    def to_deeper_graph(self, node: int, kernel_size: int = 3) -> None:
        """Insert ReLU -> Conv (same width, ``kernel_size``) -> BatchNorm after tensor ``node``
        (or ReLU -> Dense of the same width after a vector node)."""
        shape = self.node_list[node]
        if len(shape) > 1:
            chain = [("StubReLU", {}),
                     (self._conv_type(node, "StubConv"), {"input_channel": shape[-1], "filters": shape[-1],
                                                          "kernel_size": kernel_size, "stride": 1, "padding": kernel_size // 2}),
                     (self._conv_type(node, "StubBatchNormalization"), {"num_features": shape[-1]})]
        else:
            chain = [("StubDense", {"input_units": shape[0], "units": shape[0]}), ("StubReLU", {})]
        self._insert_after(node, chain)
        self.infer_shapes()
        self.operation_history.append(["to_deeper_model", node, kernel_size])

    def to_wider_graph(self, layer_id: int, n_add: int) -> None:
        """Give conv or hidden dense layer ``layer_id`` ``n_add`` more filters / units; the layers
        after it follow (raises ``ValueError`` when an add-merge downstream makes it impossible)."""
        layer = self.layer_list[layer_id]
        key = "filters" if layer.kind == "StubConv" else "units"
        before = layer.args[key]
        layer.args[key] = int(before) + int(n_add)
        try:
            self.infer_shapes()
        except ValueError:
            layer.args[key] = before
            self.infer_shapes()
            raise
        self.operation_history.append(["to_wider_model", layer_id, n_add])

    def to_skip_graph(self, start: int, end: int, merge: str = "add") -> None:
        """Connect tensor ``start`` to the later tensor ``end``: pooling to ``end``'s spatial
        size if needed, ReLU, 1x1 conv, batch-norm, then add to (or concatenate with) ``end``."""
        s_shape, e_shape = self.node_list[start], self.node_list[end]
        if len(s_shape) != len(e_shape) or len(s_shape) < 2:
            raise ValueError("a skip connection needs two spatial tensors of the same rank")
        ratio = s_shape[0] // e_shape[0]
        if any(a != b * ratio for a, b in zip(s_shape[:-1], e_shape[:-1])):
            raise ValueError(f"cannot connect shape {s_shape} to shape {e_shape}")
        consumers = self._consumers(end)
        cur = start
        if ratio > 1:
            cur = self.add_layer(self._conv_type(start, "StubPooling"), cur, kernel_size=ratio, stride=ratio, padding=0)
        cur = self.add_layer("StubReLU", cur)
        filters = e_shape[-1] if merge == "add" else max(1, e_shape[-1] // 2)
        cur = self.add_layer(self._conv_type(start, "StubConv"), cur, input_channel=s_shape[-1], filters=filters,
                             kernel_size=1, stride=1, padding=0)
        cur = self.add_layer(self._conv_type(start, "StubBatchNormalization"), cur, num_features=filters)
        merged = self.add_layer("StubAdd" if merge == "add" else "StubConcatenate", [end, cur])
        for i in consumers:
            lay = self.layer_list[i]
            lay.inputs = [merged if n == end else n for n in lay.inputs]
        self.infer_shapes()
        self.operation_history.append(["to_add_skip_model" if merge == "add" else "to_concat_skip_model", start, end])

    def _ancestors(self) -> dict[int, set[int]]:
        """For every node, the set of nodes it depends on."""
        anc: dict[int, set[int]] = {0: set()}
        for i in self.topological_layers():
            layer = self.layer_list[i]
            deps: set[int] = set()
            for n in layer.inputs:
                deps |= anc[n]
                deps.add(n)
            anc[layer.output] = deps
        return anc

    def random_morph(self, rng: random.Random) -> "Graph":
        """A copy of this graph with one random feasible morph (deeper, wider or skip) applied."""
        for _ in range(20):
            child = self.copy()
            op = rng.choice(("deeper", "wider", "skip"))
            try:
                if op == "deeper":
                    blocks = child._spatial_nodes()
                    if not blocks:
                        continue
                    child.to_deeper_graph(rng.choice(blocks), rng.choice((1, 3, 5)))
                elif op == "wider":
                    out = child.output_node()
                    widen = [i for i, lay in enumerate(child.layer_list)
                             if lay.kind == "StubConv" or (lay.kind == "StubDense" and lay.output != out)]
                    if not widen:
                        continue
                    i = rng.choice(widen)
                    key = "filters" if child.layer_list[i].kind == "StubConv" else "units"
                    n = int(child.layer_list[i].args[key])
                    child.to_wider_graph(i, max(1, n // 2))
                else:
                    blocks = child._spatial_nodes()
                    anc = child._ancestors()
                    pairs = [(a, b) for a in blocks for b in blocks if a != b and a in anc.get(b, ())]
                    if not pairs:
                        continue
                    a, b = rng.choice(pairs)
                    child.to_skip_graph(a, b, rng.choice(("add", "concat")))
            except ValueError:
                continue  # infeasible here (e.g. an add downstream of a widened conv): try another
            return child
        raise ValueError("no feasible morph of this graph")

    # ------------------------------------------------------------------ identity for the search
    def signature(self) -> str:
        """Canonical string of the architecture (layers in topological order, ids relabelled)."""
        relabel = {0: 0}
        parts = []
        for i in self.topological_layers():
            layer = self.layer_list[i]
            relabel[layer.output] = len(relabel)
            args = [layer.args[a] for a in LAYER_ARGS[layer.kind]]
            parts.append(f"{layer.type_name}({','.join(str(relabel[n]) for n in layer.inputs)};{args})")
        return "|".join(parts)

    def layer_widths(self) -> list[tuple[str, int]]:
        """``(kind, width)`` of the conv/dense layers in topological order (for the edit distance)."""
        return [(lay.kind, int(lay.args["filters" if lay.kind == "StubConv" else "units"]))
                for lay in (self.layer_list[i] for i in self.topological_layers())
                if lay.kind in ("StubConv", "StubDense")]

    def skip_connections(self) -> list[tuple[int, int, str]]:
        """``(start depth, end depth, kind)`` of each merge layer, depths counted in conv layers."""
        depth: dict[int, int] = {0: 0}
        out = []
        for i in self.topological_layers():
            lay = self.layer_list[i]
            d = max(depth[n] for n in lay.inputs) + (1 if lay.kind in ("StubConv", "StubDense") else 0)
            depth[lay.output] = d
            if lay.kind in _MERGE:
                out.append((min(depth[n] for n in lay.inputs), d, lay.kind))
        return out

    # ------------------------------------------------------------------ torch
    def produce_torch_model(self):
        """A trainable ``torch.nn.Module`` of this graph (input ``(N, C, H, W)``; see
        :func:`nni.algorithms.hpo.networkmorphism_tuner.torch_model.graph_to_torch_model`)."""
        from .torch_model import graph_to_torch_model

        return graph_to_torch_model(self)


def graph_to_json(graph: Graph, json_model_path: str | None = None) -> dict:
    """The docs' JSON representation of ``graph`` (a dict); also written to ``json_model_path``."""
    adj: dict[str, list] = {str(n): [] for n in range(graph.n_nodes)}
    radj: dict[str, list] = {str(n): [] for n in range(graph.n_nodes)}
    for i, layer in enumerate(graph.layer_list):
        for n in layer.inputs:
            adj[str(n)].append([layer.output, i])
            radj[str(layer.output)].append([n, i])
    out = {
        "input_shape": list(graph.input_shape),
        "weighted": False,
        "operation_history": copy.deepcopy(graph.operation_history),
        "layer_id_to_input_node_ids": {str(i): list(layer.inputs) for i, layer in enumerate(graph.layer_list)},
        "layer_id_to_output_node_ids": {str(i): [layer.output] for i, layer in enumerate(graph.layer_list)},
        "adj_list": adj,
        "reverse_adj_list": radj,
        "node_list": [[n, list(shape)] for n, shape in enumerate(graph.node_list)],
        "layer_list": [[i, layer.to_list()] for i, layer in enumerate(graph.layer_list)],
    }
    if json_model_path:
        with open(json_model_path, "w", encoding="utf-8") as f:
            json.dump(out, f)
    return out


def json_to_graph(ir_model_json: str | dict) -> Graph:
    """Build a :class:`Graph` from the docs' JSON representation (a JSON string or its dict)."""
    data = json.loads(ir_model_json) if isinstance(ir_model_json, (str, bytes)) else ir_model_json
    if not isinstance(data, dict) or "input_shape" not in data or "layer_list" not in data:
        raise ValueError("graph JSON: expected an object with 'input_shape' and 'layer_list' "
                         "(the representation the NetworkMorphism tuner sends)")
    graph = Graph(data["input_shape"])
    n_nodes = max([int(n) for n, _ in data.get("node_list", [])] + [0]) + 1
    layers = sorted(data["layer_list"], key=lambda item: int(item[0]))
    graph.layer_list = [StubLayer.from_list(spec) for _, spec in layers]
    n_nodes = max([n_nodes] + [max(lay.inputs + [lay.output]) + 1 for lay in graph.layer_list])
    graph.node_list = [[] for _ in range(n_nodes)]
    graph.operation_history = list(data.get("operation_history", []))
    graph.infer_shapes()
    graph.output_node()
    return graph
