"""PyTorch -> ONNX export, and QuantizeLinear/DequantizeLinear (QDQ) insertion from layer plans.

The QDQ nodes are written here from the calibration config's ranges rather than through
``onnxruntime.quantization.quantize_static``: that tool wants calibration data and recomputes
ranges from it, while the point of the config is that the quantizer (QAT, Observer) already
fixed the ranges the model was trained / calibrated with. Writing the nodes keeps those ranges
exactly, and ONNX Runtime's graph optimiser then fuses ``DQ -> Conv/Gemm -> Q`` into
QLinearConv / QGemm and folds Relu / MaxPool / Reshape between quantized tensors.

Scheme (the same formulas as NNI's quantizers): activations uint8 affine over
``[min(lo, 0), max(hi, 0)]``, ``scale = range / 255``, ``zero_point = round(-lo / scale)``;
weights symmetric ``[-127, 127]`` with ``scale = max|w| / 127``, per tensor where the weights sit
on such a grid already (a quantizer's export; it is kept exactly), else per output channel;
bias int32 with scale ``input_scale * weight_scale``. The weights are stored as uint8 with zero
point 128 (the same 255 values): on x86 CPUs without VNNI, ONNX Runtime's uint8 x int8 kernels
sum pairs of products in int16 and saturate (off by tens of steps here), uint8 x uint8 do not.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .calibration import LayerPlan

OPSET = 17
# see the module docstring: uint8 x uint8 kernels do not saturate on AVX2
WEIGHT_UINT8 = True
_WEIGHTED_OPS = ("Conv", "Gemm", "MatMul")


def export_onnx(model: nn.Module, input_shape: Sequence[int], path: str, input_names: Sequence[str],
                output_names: Sequence[str], dynamic_batch: bool = True) -> None:
    """Exports ``model`` (eval mode) on a random input of ``input_shape``; with ``dynamic_batch``
    the first dimension of the input and outputs is left free."""
    was_training = model.training
    model.eval()
    dummy = torch.randn(*input_shape, device=next(iter(model.parameters()), torch.empty(0)).device)
    axes = {n: {0: "batch"} for n in list(input_names) + list(output_names)} if dynamic_batch else None
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # the TorchScript exporter: ~10x faster than the dynamo one on small models and its
            # node names carry the module path ('/layer1/conv1/Conv'), which maps nodes to modules.
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (dummy,), path, input_names=list(input_names),
                              output_names=list(output_names), dynamic_axes=axes, opset_version=OPSET,
                              do_constant_folding=True, dynamo=False)
    finally:
        model.train(was_training)


def _module_of_node(model: nn.Module, node_name: str) -> str | None:
    """The module a TorchScript-exported node comes from, by its scope ``/a/a.0/conv1/Conv``.

    Each scope part is a child's attribute name, written ``parent.index`` for children of a
    Sequential / ModuleList (``a.0``); ModuleDict levels do not appear (``d['x']`` -> ``/x``).
    """
    parts = [p for p in node_name.split("/") if p][:-1]
    if not parts:
        return None
    path, module = [], model
    for part in parts:
        local = part.rsplit(".", 1)[-1] if "." in part else part
        children = dict(module.named_children())
        if local in children:
            path.append(local)
            module = children[local]
            continue
        holders = [(n, c) for n, c in children.items() if isinstance(c, nn.ModuleDict) and local in c]
        if len(holders) != 1:
            return None
        path += [holders[0][0], local]
        module = holders[0][1][local]
    return ".".join(path)


def map_nodes(graph, model: nn.Module, names: Sequence[str]) -> dict[str, object]:
    """``{module name: ONNX node}`` for ``names``: weighted layers by their weight initializer
    (``conv1.weight``), others (and weights renamed by the exporter) by the node's scope path."""
    initializers = {init.name for init in graph.initializer}
    by_weight = {}
    for node in graph.node:
        if node.op_type in _WEIGHTED_OPS and len(node.input) > 1 and node.input[1] in initializers:
            by_weight.setdefault(node.input[1], node)
    by_scope: dict[str, object] = {}
    for node in graph.node:
        module = _module_of_node(model, node.name)
        if module is not None:
            by_scope.setdefault(module, node)
    found = {}
    for name in names:
        node = by_weight.get(f"{name}.weight")
        if node is None:
            node = by_scope.get(name)
        if node is None:
            raise ValueError(f"config[{name!r}]: module {name!r} has no node in the exported ONNX graph "
                             "(is it called in forward?)")
        found[name] = node
    return found


def _act_qparams(lo: float, hi: float) -> tuple[np.float32, np.uint8]:
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255.0 if hi > lo else 1.0
    zero_point = int(np.clip(round(-lo / scale), 0, 255))
    return np.float32(scale), np.uint8(zero_point)


class _Graph:
    """Small helpers to add initializers and nodes with unique names."""

    def __init__(self, model):
        import onnx

        self.onnx = onnx
        self.graph = model.graph
        self.inits = {i.name: i for i in self.graph.initializer}
        self.count = 0

    def init(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.unique(name)
        tensor = numpy_helper.from_array(np.asarray(array), name)
        self.graph.initializer.append(tensor)
        self.inits[name] = tensor
        return name

    def unique(self, name: str) -> str:
        self.count += 1
        return f"{name}__qdq{self.count}"

    def node(self, op: str, inputs: list[str], outputs: list[str], **attrs):
        return self.onnx.helper.make_node(op, inputs, outputs, name=self.unique(op), **attrs)


def insert_qdq(onnx_model, plans: dict[str, LayerPlan], nodes: dict[str, object], per_channel: bool | None = None):
    """Rewrites ``onnx_model`` in place: int8 weights (+ int32 bias) for the int8 layers and a
    Q/DQ pair on every tensor that a plan gives a range for. Returns the tensor ranges used.

    ``per_channel``: one weight scale per output channel (True), one per tensor (False), or
    (None) per tensor where that reproduces the weights exactly, else per channel."""
    from onnx import numpy_helper

    g = _Graph(onnx_model)
    tensor_ranges: dict[str, tuple[float, float]] = {}

    def add_range(tensor, rng):
        if rng is None:
            return
        old = tensor_ranges.get(tensor)
        # two entries naming one tensor (relu1's output = conv2's input): cover both ranges
        tensor_ranges[tensor] = rng if old is None else (min(old[0], rng[0]), max(old[1], rng[1]))

    for name, plan in plans.items():
        node = nodes[name]
        if plan.input_range is not None:
            add_range(node.input[0], plan.input_range)
        if plan.output_range is not None:
            add_range(node.output[0], plan.output_range)

    _fuse_friendly(onnx_model.graph, tensor_ranges)
    replaced: set[str] = set()
    new_nodes = []
    for name, plan in plans.items():
        if not plan.int8_weight:
            continue
        node = nodes[name]
        if node.op_type not in _WEIGHTED_OPS:
            raise ValueError(f"config[{name!r}]: exported as ONNX {node.op_type}, not Conv/Gemm/MatMul; "
                             "cannot run its weight in int8")
        weight = numpy_helper.to_array(g.inits[node.input[1]]).astype(np.float32)
        if node.op_type == "Conv":
            axis = 0
        elif node.op_type == "Gemm":
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            axis = 0 if trans_b else 1
        else:
            axis = 1
        channel = per_channel
        if channel is None:
            # a quantizer's export leaves weights on its grid: keep that grid exactly
            w_q, w_scale, _ = _quantize_weight(weight, axis, False)
            error = np.abs(w_q * w_scale - weight).max()
            channel = bool(error > 1e-3 * w_scale.max())
        w_q, w_scale, _ = _quantize_weight(weight, axis, channel)
        w_scale = w_scale.reshape(-1)
        if not channel:
            w_scale = w_scale[:1].reshape(())
        if WEIGHT_UINT8:
            w_q, w_zp = (w_q + 128).astype(np.uint8), np.full(w_scale.shape, 128, dtype=np.uint8)
        else:
            w_q, w_zp = w_q.astype(np.int8), np.zeros(w_scale.shape, dtype=np.int8)
        w_name = g.unique(node.input[1] + "_dq")
        attrs = {"axis": axis} if channel else {}
        new_nodes.append(g.node("DequantizeLinear", [g.init(node.input[1] + "_int8", w_q), g.init(
            node.input[1] + "_scale", w_scale), g.init(node.input[1] + "_zp", w_zp)], [w_name], **attrs))
        replaced.add(node.input[1])
        node.input[1] = w_name
        if len(node.input) > 2 and node.input[2] in g.inits and plan.input_range is not None:
            bias = numpy_helper.to_array(g.inits[node.input[2]]).astype(np.float64)
            in_scale, _ = _act_qparams(*tensor_ranges[node.input[0]])
            b_scale = (np.float32(in_scale) * np.broadcast_to(w_scale, bias.shape)).astype(np.float32)
            b_q = np.clip(np.round(bias / b_scale), -2**31, 2**31 - 1).astype(np.int32)
            b_name = g.unique(node.input[2] + "_dq")
            b_scale_arg = b_scale if channel else b_scale[:1].reshape(())
            new_nodes.append(g.node("DequantizeLinear", [g.init(node.input[2] + "_int32", b_q), g.init(
                node.input[2] + "_scale", b_scale_arg), g.init(node.input[2] + "_zp", np.zeros(
                    b_scale_arg.shape, np.int32))], [b_name], **({"axis": 0} if channel else {})))
            replaced.add(node.input[2])
            node.input[2] = b_name

    producers = {out: n for n in onnx_model.graph.node for out in n.output}
    graph_inputs = {i.name for i in onnx_model.graph.input}
    for tensor, (lo, hi) in tensor_ranges.items():
        scale, zero_point = _act_qparams(lo, hi)
        s_name, zp_name = g.init(tensor + "_scale", scale), g.init(tensor + "_zp", zero_point)
        q_name = g.unique(tensor + "_q")
        if tensor in producers:
            # rename the producer's output, so the consumers (and a graph output) read the DQ result
            float_name = g.unique(tensor + "_float")
            out = producers[tensor].output
            out[list(out).index(tensor)] = float_name
            new_nodes.append(g.node("QuantizeLinear", [float_name, s_name, zp_name], [q_name]))
            new_nodes.append(g.node("DequantizeLinear", [q_name, s_name, zp_name], [tensor]))
        elif tensor in graph_inputs:
            dq_name = g.unique(tensor + "_dq")
            for n in onnx_model.graph.node:
                for i, inp in enumerate(n.input):
                    if inp == tensor:
                        n.input[i] = dq_name
            new_nodes.append(g.node("QuantizeLinear", [tensor, s_name, zp_name], [q_name]))
            new_nodes.append(g.node("DequantizeLinear", [q_name, s_name, zp_name], [dq_name]))
    _append_sorted(onnx_model.graph, new_nodes)
    used = {i for n in onnx_model.graph.node for i in n.input}
    for init in [i for i in onnx_model.graph.initializer if i.name in replaced and i.name not in used]:
        onnx_model.graph.initializer.remove(init)
    return tensor_ranges


# ops that move values without changing them: a range on either side holds on the other
_PASS_THROUGH = ("MaxPool", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze")


def _fuse_friendly(graph, ranges: dict[str, tuple[float, float]]) -> None:
    """Adjusts tensor ranges so ONNX Runtime can fuse into int8 kernels.

    * A range on a tensor read only by a Relu moves to the Relu's output, clipped at 0: the
      quantization then does the Relu (ORT drops it), so Conv/Gemm + Relu become one int8 kernel
      (what TensorRT does with the same ranges); values differ from quantizing before the Relu
      only by the finer scale of the non-negative part.
    * Two quantized tensors joined by MaxPool / Flatten / Reshape ... share one range (their
      union), so the int8 data passes through without a dequantize/quantize round trip.
    """
    consumers: dict[str, list] = {}
    for node in graph.node:
        for inp in node.input:
            consumers.setdefault(inp, []).append(node)
    outputs = {o.name for o in graph.output}
    for tensor in list(ranges):
        readers = consumers.get(tensor, [])
        if tensor not in outputs and len(readers) == 1 and readers[0].op_type == "Relu":
            lo, hi = ranges.pop(tensor)
            target, rng = readers[0].output[0], (max(lo, 0.0), max(hi, 0.0))
            old = ranges.get(target)
            ranges[target] = rng if old is None else (min(old[0], rng[0]), max(old[1], rng[1]))
    for tensor in list(ranges):
        chain, current = [tensor], tensor
        while current not in outputs:
            readers = consumers.get(current, [])
            if len(readers) != 1 or readers[0].op_type not in _PASS_THROUGH:
                break
            current = readers[0].output[0]
            chain.append(current)
            if current in ranges:
                joined = [ranges[t] for t in chain if t in ranges]
                union = (min(r[0] for r in joined), max(r[1] for r in joined))
                for t in chain:
                    if t in ranges:
                        ranges[t] = union
                break


def _quantize_weight(weight: np.ndarray, axis: int, per_channel: bool):
    """Symmetric int8 ``[-127, 127]``: (integer values as float, scale per channel, broadcast shape)."""
    if per_channel:
        absmax = np.abs(np.moveaxis(weight, axis, 0).reshape(weight.shape[axis], -1)).max(axis=1)
    else:
        absmax = np.full(weight.shape[axis], np.abs(weight).max())
    w_scale = np.where(absmax > 0, absmax / 127.0, 1.0).astype(np.float32)
    shape = [1] * weight.ndim
    shape[axis] = -1
    return np.clip(np.round(weight / w_scale.reshape(shape)), -127, 127), w_scale.reshape(shape), shape


def _append_sorted(graph, new_nodes) -> None:
    """Adds nodes and re-sorts topologically (ONNX requires producers before consumers)."""
    import onnx

    nodes = []
    for n in list(graph.node) + list(new_nodes):
        copy = onnx.NodeProto()
        copy.CopyFrom(n)
        nodes.append(copy)
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    ordered, pending = [], nodes
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise RuntimeError("QDQ insertion left a cycle or a dangling input in the ONNX graph")
        for n in ready:
            available.update(n.output)
        ordered += ready
        ready_ids = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in ready_ids]
    del graph.node[:]
    graph.node.extend(ordered)
