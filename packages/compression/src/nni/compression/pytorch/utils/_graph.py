"""torch.fx tracing shared by ModelSpeedup, ChannelDependency and the mask-conflict tools.

torch.fx (not TorchScript) is used because its graph names every ``call_module`` node with the
module's qualified name (what masks are keyed by), keeps ``operator.add`` / ``torch.cat`` /
``view`` as readable nodes, and needs no scripting support from user code.
"""
from __future__ import annotations

import operator
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)

# modules applied channel by channel (output channel c depends only on input channel c)
CHANNELWISE_MODULES = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU,
    nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Mish,
    nn.Softplus, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
)
F = nn.functional
CHANNELWISE_FUNCTIONS = {
    F.relu, F.relu6, F.leaky_relu, F.elu, F.selu, F.gelu, F.silu, F.hardtanh, F.hardswish,
    F.hardsigmoid, F.mish, F.softplus, F.dropout, F.dropout1d, F.dropout2d,
    torch.relu, torch.sigmoid, torch.tanh, F.sigmoid, F.tanh,
    F.max_pool1d, F.max_pool2d, F.max_pool3d, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d,
    F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d,
    F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d,
}
CHANNELWISE_METHODS = {"relu", "sigmoid", "tanh", "contiguous", "clone", "detach"}
# element-wise binary ops: tensors meeting here must keep the same channels
BINARY_FUNCTIONS = {operator.add, operator.sub, operator.mul, operator.truediv, operator.iadd,
                    operator.isub, operator.imul, torch.add, torch.sub, torch.mul, torch.div}
BINARY_METHODS = {"add", "sub", "mul", "div", "add_", "sub_", "mul_", "div_"}
RESHAPE_METHODS = {"view", "reshape", "flatten"}
RESHAPE_FUNCTIONS = {torch.flatten, torch.reshape}
REDUCE_METHODS = {"mean", "sum", "amax"}
# shape ops that keep (N, C) in front, e.g. x.unsqueeze(-1), x.flatten(2), x.view(n, c, -1)
KEEP_NC_METHODS = {"unsqueeze", "squeeze", "flatten", "view", "reshape"}
KEEP_NC_FUNCTIONS = {torch.unsqueeze, torch.squeeze, torch.flatten, torch.reshape}
REDUCE_FUNCTIONS = {torch.mean, torch.sum, torch.amax}


def as_tuple(dummy_input: Any) -> tuple:
    """Normalises a tensor / tuple / list dummy input to a tuple of positional arguments."""
    if isinstance(dummy_input, torch.Tensor):
        return (dummy_input,)
    if isinstance(dummy_input, (tuple, list)):
        return tuple(dummy_input)
    raise ValueError(f"dummy_input: expected a tensor or a tuple/list of tensors, got {type(dummy_input).__name__}")


def trace(model: nn.Module, dummy_input: Any) -> fx.GraphModule:
    """Symbolically traces ``model`` and records every node's output in ``node.meta['tensor_meta']``.

    Raises:
        ValueError: (one line) when torch.fx cannot trace the model.
    """
    try:
        gm = fx.symbolic_trace(model)
    except Exception as err:  # noqa: BLE001 - any tracing failure is reported the same way
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"model: torch.fx cannot trace {type(model).__name__} ({first}); "
                         "data-dependent control flow is not supported") from None
    was_training = gm.training
    gm.eval()
    with torch.no_grad():
        ShapeProp(gm).propagate(*as_tuple(dummy_input))
    gm.train(was_training)
    return gm


def shape_of(node: Any) -> tuple | None:
    """The output shape of a traced node, or None when it is not a single tensor."""
    if not isinstance(node, fx.Node):
        return None
    meta = node.meta.get("tensor_meta")
    if meta is None or not hasattr(meta, "shape"):
        return None
    return tuple(meta.shape)


def tensor_inputs(node: fx.Node) -> list[fx.Node]:
    """Input nodes of ``node`` that carry a tensor (positional and keyword, flattened)."""
    found: list[fx.Node] = []
    fx.node.map_arg((node.args, node.kwargs), lambda n: found.append(n) if shape_of(n) is not None else None)
    return found


def describe(node: fx.Node) -> str:
    """A short name of what a node does, for error messages."""
    if node.op == "call_module":
        return f"module {node.target!r}"
    if node.op == "call_method":
        return f"method .{node.target}()"
    return f"function {getattr(node.target, '__name__', node.target)}"


def node_kind(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    """Classifies a node for channel analysis.

    One of ``'conv'``, ``'linear'``, ``'channelwise'``, ``'binary'``, ``'cat'``, ``'flatten'``,
    ``'reduce'`` (spatial reduction or reshape keeping dims 0 and 1), ``'placeholder'``, ``'output'``,
    ``'shape'`` (no tensor output) or ``'other'``.
    """
    if node.op == "placeholder":
        return "placeholder"
    if node.op == "output":
        return "output"
    if node.op == "get_attr" or shape_of(node) is None:
        return "shape" if node.op != "get_attr" else "other"
    out_shape = shape_of(node)
    ins = tensor_inputs(node)
    if node.op == "call_module":
        mod = modules[node.target]
        if isinstance(mod, CONV_TYPES) and isinstance(mod.padding, (tuple, int, str)):
            return "conv"
        if isinstance(mod, nn.Linear):
            return "linear"
        if isinstance(mod, CHANNELWISE_MODULES):
            return "channelwise"
        if isinstance(mod, nn.Flatten):
            return "flatten" if _is_flatten(ins, out_shape) else "other"
        return "other"
    target = node.target
    if node.op == "call_function":
        if target in CHANNELWISE_FUNCTIONS and len(ins) == 1:
            return "channelwise"
        if target in BINARY_FUNCTIONS:
            return "binary"
        if target is torch.cat:
            dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
            return "cat" if dim in (1, -len(out_shape) + 1) and len(out_shape) >= 2 else "other"
        if target in RESHAPE_FUNCTIONS and _is_flatten(ins, out_shape):
            return "flatten"
        if target in KEEP_NC_FUNCTIONS and len(ins) == 1 and _keeps_nc(ins[0], out_shape):
            return "reduce"
        if target in REDUCE_FUNCTIONS and len(ins) == 1:
            return "reduce" if _is_spatial_reduce(ins[0], out_shape) else "other"
        return "other"
    if node.op == "call_method":
        if target in CHANNELWISE_METHODS and len(ins) == 1:
            return "channelwise"
        if target in BINARY_METHODS:
            return "binary"
        if target in RESHAPE_METHODS and _is_flatten(ins[:1], out_shape):
            return "flatten"
        if target in KEEP_NC_METHODS and ins and _keeps_nc(ins[0], out_shape):
            return "reduce"
        if target in REDUCE_METHODS and len(ins) == 1:
            return "reduce" if _is_spatial_reduce(ins[0], out_shape) else "other"
    return "other"


def _is_flatten(ins: list[fx.Node], out_shape: tuple) -> bool:
    """True when the op maps (N, C, *S) to (N, C*prod(S)) keeping the batch dim."""
    if len(ins) != 1:
        return False
    in_shape = shape_of(ins[0])
    if in_shape is None or len(in_shape) < 2 or len(out_shape) != 2:
        return False
    return out_shape[0] == in_shape[0] and out_shape[1] == int(torch.tensor(in_shape[1:]).prod())


def _keeps_nc(inp: fx.Node, out_shape: tuple) -> bool:
    """True when a shape op keeps (N, C) as the leading dims and only regroups the rest."""
    in_shape = shape_of(inp)
    return in_shape is not None and len(in_shape) >= 2 and len(out_shape) >= 2 and out_shape[:2] == in_shape[:2]


def _is_spatial_reduce(inp: fx.Node, out_shape: tuple) -> bool:
    """True when a reduction keeps (N, C) as the leading dims (e.g. ``x.mean((2, 3))``)."""
    in_shape = shape_of(inp)
    return in_shape is not None and len(in_shape) >= 3 and len(out_shape) >= 2 and out_shape[:2] == in_shape[:2]


def conv_connectivity(mod: nn.Module, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense (out, in) matrices of a conv/linear: kernel-summed weights and "any weight non-zero"."""
    if weight.dim() == 2:
        return weight.clone(), weight != 0
    groups = mod.groups
    out_c, in_per_group = weight.shape[0], weight.shape[1]
    in_c = in_per_group * groups
    out_per_group = out_c // groups
    flat = weight.reshape(out_c, in_per_group, -1)
    summed = torch.zeros(out_c, in_c, dtype=weight.dtype)
    nonzero = torch.zeros(out_c, in_c, dtype=torch.bool)
    for g in range(groups):
        rows = slice(g * out_per_group, (g + 1) * out_per_group)
        cols = slice(g * in_per_group, (g + 1) * in_per_group)
        summed[rows, cols] = flat[rows].sum(-1)
        nonzero[rows, cols] = (flat[rows] != 0).any(-1)
    return summed, nonzero
