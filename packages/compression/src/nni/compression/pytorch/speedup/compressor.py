"""Mask propagation over a torch.fx graph and module replacement.

How it works (NNI docs §"Model Speedup", re-derived):

1. The masks are multiplied into the weights (the *masked model*), the model is put in eval mode
   and traced with torch.fx (see ``nni.compression.pytorch.utils._graph`` for why fx).
2. Value pass: for every tensor (channel dim 1, batch dim 0) each channel is either *live* or a
   known per-channel *constant* (a conv filter whose weights are all masked yields the constant
   bias, which BN / ReLU map to other constants). Constants are followed through channel-wise
   ops, pooling, element-wise ``add``/``sub``/``mul``, ``cat`` and flatten.
3. Need pass (fix point): a channel is physically kept where a consumer needs it: live
   channels and model outputs; tensors meeting in add/BN/activations keep the same channels;
   grouped / depth-wise convs keep the same number of channels in every active group.
4. Every Conv / Linear / BatchNorm is replaced by a smaller one; constants of removed input
   channels are folded into the consumer's bias, or, before a zero-padded conv (where the
   constant is smaller at the borders), added as a border-exact map by
   :class:`ConstantInputConv`; so the outputs equal the masked model's.

Linear layers on inputs with more than 2 dims (features on the last dim, e.g. the projections of
multi-head attention) are shrunk by :mod:`._last_dim`, and the shrunk model's outputs on
``dummy_input`` are checked against the masked model's before the swap is kept.

Ops outside the supported set are left untouched when every channel reaching them is live, and
raise a one-line error naming the node when a pruned channel would reach them.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn

from ..utils import _graph as g
from ._last_dim import LastDimAnalysis

_logger = logging.getLogger(__name__)

SUPPORTED = ("Conv1d/2d/3d (incl. grouped and depth-wise), Linear, BatchNorm1d/2d/3d, activations, "
             "dropout, pooling, add/sub/mul/div, cat(dim=1), flatten/view/reshape to (N, -1) or keeping (N, C), "
             "unsqueeze/squeeze keeping (N, C), mean/sum/amax over spatial dims")


def load_masks(masks_file: Any, map_location: Any = None) -> dict[str, dict[str, torch.Tensor]]:
    """Loads ``{module_name: {'weight': Tensor, 'bias': Tensor (optional)}}`` from a dict or a path."""
    if isinstance(masks_file, (str, Path)):
        path = Path(masks_file)
        if not path.is_file():
            raise ValueError(f"masks_file: no such file {str(path)!r}; pass a path saved with torch.save or a mask dict")
        masks = torch.load(path, map_location=map_location, weights_only=False)
    else:
        masks = masks_file
    if not isinstance(masks, dict):
        raise ValueError(f"masks_file: expected a dict {{module_name: {{'weight': Tensor, 'bias': Tensor}}}}, "
                         f"got {type(masks).__name__}")
    return masks


def _validate_masks(model: nn.Module, masks: dict) -> None:
    modules = dict(model.named_modules())
    for name, entry in masks.items():
        if name not in modules:
            raise ValueError(f"masks[{name!r}]: no module of that name in the model; keys must be module names "
                             "of the unwrapped model (e.g. 'features.0')")
        if isinstance(getattr(modules[name], "module", None), nn.Module) and hasattr(modules[name], "weight_mask"):
            raise ValueError(f"masks[{name!r}]: the model is still wrapped by a pruner; call "
                             "pruner._unwrap_model() (or pass the exported, unwrapped model) first")
        if not isinstance(entry, dict) or "weight" not in entry:
            raise ValueError(f"masks[{name!r}]: expected a dict with key 'weight' (and optionally 'bias')")
        for key in ("weight", "bias"):
            mask = entry.get(key)
            if mask is None:
                continue
            param = getattr(modules[name], key, None)
            if not isinstance(param, torch.Tensor):
                raise ValueError(f"masks[{name!r}][{key!r}]: module {type(modules[name]).__name__} has no {key}")
            if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != tuple(param.shape):
                shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
                raise ValueError(f"masks[{name!r}][{key!r}]: shape {shape} does not match the {key} "
                                 f"shape {tuple(param.shape)}")


def apply_compression_results(model: nn.Module, masks_file: Any, map_location: Any = None) -> None:
    """Multiplies each masked module's weight (and bias) by its mask, in place.

    Args:
        model: the unwrapped model the masks were computed on.
        masks_file: a mask dict or a path saved with ``torch.save``.
        map_location: passed to ``torch.load``.
    """
    masks = load_masks(masks_file, map_location)
    _validate_masks(model, masks)
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, entry in masks.items():
            for key in ("weight", "bias"):
                mask = entry.get(key)
                if mask is not None:
                    param = getattr(modules[name], key)
                    param.mul_(mask.to(device=param.device, dtype=param.dtype))


class _State:
    """Per-channel knowledge about one tensor: ``live[c]`` or else the constant ``const[c]``."""

    __slots__ = ("live", "const")

    def __init__(self, live: torch.Tensor, const: torch.Tensor):
        self.live = live
        self.const = torch.where(live, torch.zeros_like(const), const)

    @classmethod
    def all_live(cls, channels: int) -> "_State":
        return cls(torch.ones(channels, dtype=torch.bool), torch.zeros(channels))


class ModelSpeedup:
    """Replaces masked Conv / Linear / BatchNorm layers by physically smaller ones.

    Args:
        model: the unwrapped model (``pruner._unwrap_model()``); modified in place.
        dummy_input: a tensor or tuple/list of tensors, batch first, on the model's device.
        masks_file: a mask dict ``{name: {'weight': T, 'bias': T}}`` or a path saved with torch.save.
        map_location: passed to ``torch.load``.
        batch_dim: index of the batch dimension; only 0 is supported (channels are dim 1).
        confidence: kept for API compatibility; propagation here is exact, so it is not used
            as a sampling batch size.

    Example:
        >>> ModelSpeedup(model, torch.rand(8, 3, 32, 32), masks).speedup_model()
    """

    def __init__(self, model: nn.Module, dummy_input: Any, masks_file: Any, map_location: Any = None,
                 batch_dim: int = 0, confidence: int = 8):
        if batch_dim != 0:
            raise ValueError(f"batch_dim: {batch_dim!r} is not supported; only 0 (batch first, channels at dim 1)")
        if not isinstance(confidence, int) or confidence < 1:
            raise ValueError(f"confidence: expected an int >= 1, got {confidence!r}")
        self.model = model
        self.dummy_input = g.as_tuple(dummy_input)
        self.masks = load_masks(masks_file, map_location)
        _validate_masks(model, self.masks)
        self.batch_dim = batch_dim
        self.confidence = confidence

    def speedup_model(self) -> nn.Module:
        """Applies the masks, propagates them and swaps in the smaller modules. Returns the model."""
        model = self.model
        was_training = model.training
        apply_compression_results(model, self.masks)
        model.eval()
        try:
            with torch.no_grad():
                gm = g.trace(model, self.dummy_input)
                modules = dict(model.named_modules())
                analysis = _ChannelAnalysis(gm, modules)
                replacements = analysis.replacements()
                # Linear layers on >2-D inputs (features on the last dim, e.g. attention projections)
                try:
                    last_dim = LastDimAnalysis(gm, modules).replacements()
                except (RuntimeError, IndexError, TypeError) as err:
                    # a graph shape this analysis does not model: keep those layers as they are
                    _logger.warning("ModelSpeedup: Linear layers on >2-D inputs left as they are (%s)", err)
                    last_dim = {}
                clash = sorted(set(last_dim) & set(replacements))
                if clash:
                    raise ValueError(f"ModelSpeedup: module {clash[0]!r} is used on 2-D and on >2-D inputs with "
                                     "pruned features; give each use its own module")
                replacements.update(last_dim)
                expected = _tensors(model(*self.dummy_input))
                self._swap(replacements, expected)
        finally:
            model.train(was_training)
        return model

    def _swap(self, replacements: dict[str, nn.Module], expected: list[torch.Tensor]) -> None:
        old = {}
        for name, new in replacements.items():
            old[name] = _set_submodule(self.model, name, new)

        def restore():
            for name, mod in old.items():
                _set_submodule(self.model, name, mod)

        try:
            with torch.no_grad():
                got = _tensors(_run_naming_node(self.model, self.dummy_input))
        except Exception as err:  # noqa: BLE001 - restore, then report in one line
            restore()
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ValueError(f"ModelSpeedup: the shrunk model fails on dummy_input ({first}); a fixed-size "
                             "view/reshape or functional op probably follows a pruned layer: exclude the layers "
                             "returned by not_safe_to_prune(model, dummy_input)") from None
        # a shape computed from a shrunk tensor (e.g. x.size(-1) // num_heads) can run but compute
        # something else: the outputs must still equal the masked model's
        for want, have in zip(expected, got):
            scale = 1.0 + float(want.abs().max()) if want.numel() and want.is_floating_point() else 1.0
            if want.shape != have.shape or (want.is_floating_point() and not torch.allclose(
                    want, have, rtol=1e-4, atol=1e-4 * scale)):
                restore()
                raise ValueError("ModelSpeedup: the shrunk model's output differs from the masked model's on "
                                 "dummy_input; a size computed in forward() probably does not follow the pruned "
                                 "layers: exclude them from pruning")


def _tensors(value: Any) -> list[torch.Tensor]:
    """The tensors of a (nested tuple / list / dict) model output, in order."""
    if isinstance(value, torch.Tensor):
        return [value.detach()]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    return []


class _NamingInterpreter(fx.Interpreter):
    def run_node(self, n: fx.Node) -> Any:
        try:
            return super().run_node(n)
        except Exception as err:  # noqa: BLE001 - re-raised with the node named
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise RuntimeError(f"node {n.name!r} ({g.describe(n)}): {first}") from None


def _run_naming_node(model: nn.Module, inputs: tuple) -> Any:
    """Runs the model through a fresh fx trace so that a failure names the graph node."""
    try:
        gm = fx.symbolic_trace(model)
    except Exception:  # noqa: BLE001 - fall back to a plain call
        return model(*inputs)
    return _NamingInterpreter(gm).run(*inputs)


def _set_submodule(model: nn.Module, name: str, new: nn.Module) -> nn.Module:
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = getattr(parent, attr)
    setattr(parent, attr, new)
    return old


def _conv_foldable(mod: nn.Module) -> bool:
    """Whether a constant input channel can be folded into the bias (no zero padding at borders)."""
    if isinstance(mod, nn.Linear) or getattr(mod, "padding_mode", "zeros") != "zeros":
        return True
    padding = mod.padding
    if isinstance(padding, str):
        return padding == "valid" or all(k == 1 for k in mod.kernel_size)
    return all(p == 0 for p in padding)


def _pad_groups(need_out: torch.Tensor, need_in: torch.Tensor, groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Makes every active group keep the same number of output and of input channels (at least 1)."""
    out = need_out.reshape(groups, -1).clone()
    inp = need_in.reshape(groups, -1).clone()
    active = out.any(1) | inp.any(1)
    if not active.any():
        active[0] = True
    n_out = max(1, int(out[active].sum(1).max()))
    n_in = max(1, int(inp[active].sum(1).max()))
    for k in torch.nonzero(active).flatten().tolist():
        for row, count in ((out[k], n_out), (inp[k], n_in)):
            missing = count - int(row.sum())
            if missing > 0:
                free = torch.nonzero(~row).flatten()[:missing]
                row[free] = True
    return out.flatten(), inp.flatten()


class _ChannelAnalysis:
    """Value pass and need pass over a traced graph (see the module docstring)."""

    def __init__(self, gm: fx.GraphModule, modules: dict[str, nn.Module]):
        self.gm = gm
        self.modules = modules
        self.nodes = list(gm.graph.nodes)
        self.kind = {n: g.node_kind(n, modules) for n in self.nodes}
        self.state: dict[fx.Node, _State] = {}
        self._values()
        self.need: dict[fx.Node, torch.Tensor] = {
            n: torch.zeros(self.state[n].live.numel(), dtype=torch.bool) for n in self.state}
        self._needs()

    # -- value pass ---------------------------------------------------------------------------
    def _tracked(self, node: Any) -> bool:
        shape = g.shape_of(node)
        return shape is not None and len(shape) >= 2

    def _values(self) -> None:
        for node in self.nodes:
            if not self._tracked(node):
                continue
            channels = g.shape_of(node)[1]
            kind = self.kind[node]
            if kind == "output":
                continue
            ins = [i for i in g.tensor_inputs(node) if i in self.state]
            handler = getattr(self, f"_value_{kind}", None)
            state = handler(node, ins) if handler is not None and (ins or kind == "placeholder") else None
            if state is None:
                for i in ins:
                    if not self.state[i].live.all():
                        raise ValueError(f"ModelSpeedup: cannot propagate pruned channels through node "
                                         f"{node.name!r} ({g.describe(node)}); supported: {SUPPORTED}; "
                                         "exclude the layers feeding it from pruning")
                state = _State.all_live(channels)
            self.state[node] = state

    def _value_placeholder(self, node, ins):
        return _State.all_live(g.shape_of(node)[1])

    def _value_conv(self, node, ins):
        mod = self.modules[node.target]
        src = self.state[ins[0]]
        summed, nonzero = g.conv_connectivity(mod, mod.weight.detach().cpu())
        foldable = _conv_foldable(mod)
        blocking = src.live | (~torch.tensor(foldable) & (src.const != 0))
        live = nonzero[:, blocking].any(1)
        const = summed[:, ~src.live] @ src.const[~src.live]
        if mod.bias is not None:
            const = const + mod.bias.detach().cpu()
        return _State(live, const)

    def _value_linear(self, node, ins):
        if len(g.shape_of(ins[0])) != 2:
            return None
        return self._value_conv(node, ins)

    def _const_tensor(self, node: fx.Node, const: torch.Tensor) -> torch.Tensor:
        return const.reshape((1, -1) + (1,) * (len(g.shape_of(node)) - 2))

    def _value_channelwise(self, node, ins):
        src = self.state[ins[0]]
        name = node.target if node.op != "call_module" else type(self.modules[node.target]).__name__
        name = getattr(name, "__name__", str(name)).lower()
        if "pool" in name or "dropout" in name or name in ("identity", "contiguous", "clone", "detach"):
            live = src.live.clone()
            mod = self.modules.get(node.target) if node.op == "call_module" else None
            padding = getattr(mod, "padding", 0)
            if "avg" in name and getattr(mod, "count_include_pad", True) and padding not in (0, (0, 0), (0,)):
                live |= src.const != 0  # averaged with zero padding: no longer a constant at borders
            return _State(live, src.const.clone())
        x = self._const_tensor(ins[0], src.const)
        if node.op == "call_module":
            mod = self.modules[node.target]
            device = next((t.device for t in list(mod.parameters()) + list(mod.buffers())), x.device)
            out = mod(x.to(device)).cpu()
        elif node.op == "call_method":
            out = getattr(x, node.target)()
        else:
            args = fx.node.map_arg(node.args, lambda n: x if n is ins[0] else n)
            out = node.target(*args, **node.kwargs)
        return _State(src.live.clone(), out.reshape(-1))

    def _value_binary(self, node, ins):
        out_shape = g.shape_of(node)
        if any(g.shape_of(i) != out_shape for i in ins):
            return None if any(not self.state[i].live.all() for i in ins) else _State.all_live(out_shape[1])
        live = torch.zeros(out_shape[1], dtype=torch.bool)
        for i in ins:
            live |= self.state[i].live
        consts = {i: self._const_tensor(i, self.state[i].const) for i in ins}
        args = fx.node.map_arg(node.args, lambda n: consts.get(n, n))
        kwargs = fx.node.map_arg(node.kwargs, lambda n: consts.get(n, n))
        if any(isinstance(a, fx.Node) for a in list(args) + list(kwargs.values())):
            return None
        if node.op == "call_method":
            out = getattr(args[0], node.target.rstrip("_"))(*args[1:], **kwargs)
        else:
            out = node.target(*args, **kwargs)
        return _State(live, torch.as_tensor(out).reshape(-1).expand(out_shape[1]).clone())

    def _value_cat(self, node, ins):
        if not isinstance(node.args[0], (list, tuple)) or len(ins) != len(node.args[0]):
            return None
        return _State(torch.cat([self.state[i].live for i in ins]), torch.cat([self.state[i].const for i in ins]))

    def _value_flatten(self, node, ins):
        src = self.state[ins[0]]
        per = math.prod(g.shape_of(ins[0])[2:])
        return _State(src.live.repeat_interleave(per), src.const.repeat_interleave(per))

    def _value_reduce(self, node, ins):
        src = self.state[ins[0]]
        factor = 1.0
        if node.target in ("sum", torch.sum):
            factor = math.prod(g.shape_of(ins[0])[2:]) / max(1, math.prod(g.shape_of(node)[2:]))
        return _State(src.live.clone(), src.const * factor)

    # -- need pass ----------------------------------------------------------------------------
    def _needs(self) -> None:
        for node in self.nodes:
            if self.kind[node] == "placeholder" and node in self.need:
                self.need[node][:] = True
        changed = True
        while changed:
            changed = False
            for node in reversed(self.nodes):
                changed |= self._constrain(node)

    def _merge(self, node: fx.Node, value: torch.Tensor) -> bool:
        new = self.need[node] | value
        if torch.equal(new, self.need[node]):
            return False
        self.need[node] = new
        return True

    def _constrain(self, node: fx.Node) -> bool:
        kind = self.kind[node]
        ins = [i for i in g.tensor_inputs(node) if i in self.need]
        if kind == "output" or (node not in self.need and kind != "shape"):
            return any(self._merge(i, torch.ones_like(self.need[i])) for i in ins)
        if node not in self.need:
            return False
        changed = False
        if not self.need[node].any():
            self.need[node][0] = True  # a layer never loses all its channels
            changed = True
        handled = node in self.state and self._handled(node, ins)
        if not handled:
            changed |= self._merge(node, torch.ones_like(self.need[node]))
            for i in ins:
                changed |= self._merge(i, torch.ones_like(self.need[i]))
            return changed
        if kind in ("conv", "linear"):
            mod = self.modules[node.target]
            src = self.state[ins[0]]
            required = src.live  # constant inputs are folded into the bias / a border map
            out, inp = _pad_groups(self.need[node], self.need[ins[0]] | required, getattr(mod, "groups", 1))
            changed |= self._merge(node, out)
            changed |= self._merge(ins[0], inp)
        elif kind in ("channelwise", "binary", "reduce"):
            union = self.need[node].clone()
            for i in ins:
                union |= self.need[i]
            for n in [node] + ins:
                changed |= self._merge(n, union)
        elif kind == "cat":
            start = 0
            for i in ins:
                width = self.need[i].numel()
                piece = self.need[node][start:start + width]
                changed |= self._merge(i, piece)
                whole = self.need[node].clone()
                whole[start:start + width] |= self.need[i]
                changed |= self._merge(node, whole)
                start += width
        elif kind == "flatten":
            channels = self.need[ins[0]].numel()
            changed |= self._merge(ins[0], self.need[node].reshape(channels, -1).any(1))
            per = self.need[node].numel() // channels
            changed |= self._merge(node, self.need[ins[0]].repeat_interleave(per))
        return changed

    def _handled(self, node: fx.Node, ins: list[fx.Node]) -> bool:
        """Whether the value pass understood this node (else its channels are all kept)."""
        kind = self.kind[node]
        if kind in ("other", "shape", "placeholder") or not ins:
            return False
        if kind == "linear" and len(g.shape_of(ins[0])) != 2:
            return False
        if kind == "binary" and any(g.shape_of(i) != g.shape_of(node) for i in ins):
            return False
        if kind == "cat":
            return isinstance(node.args[0], (list, tuple)) and len(ins) == len(node.args[0])
        return True

    # -- replacement --------------------------------------------------------------------------
    def replacements(self) -> dict[str, nn.Module]:
        result: dict[str, nn.Module] = {}
        keeps: dict[str, tuple] = {}
        for node in self.nodes:
            if node.op != "call_module" or node not in self.need:
                continue
            kind = self.kind[node]
            ins = [i for i in g.tensor_inputs(node) if i in self.need]
            if not self._handled(node, ins):
                continue
            mod = self.modules[node.target]
            if kind == "flatten" and not self.need[ins[0]].all():
                continue
            keep_out = self.need[node]
            keep_in = self.need[ins[0]]
            key = (keep_in.tolist(), keep_out.tolist())
            if node.target in keeps and keeps[node.target] != key:
                raise ValueError(f"ModelSpeedup: module {node.target!r} is called several times with different "
                                 "pruned channels; give each call its own module")
            keeps[node.target] = key
            if keep_out.all() and keep_in.all():
                continue
            if kind in ("conv", "linear"):
                result[node.target] = self._shrink_conv(mod, self.state[ins[0]], keep_in, keep_out)
            elif isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
                result[node.target] = _shrink_bn(mod, keep_out)
        for node in self.nodes:
            self._check_fixed_reshape(node)
        return result

    def _check_fixed_reshape(self, node: fx.Node) -> None:
        is_reshape = (node.op == "call_method" and node.target in ("view", "reshape")) or (
            node.op == "call_function" and node.target is torch.reshape)
        if not is_reshape or self.kind[node] not in ("flatten", "reduce"):
            return
        ins = [i for i in g.tensor_inputs(node) if i in self.need]
        shape_args = node.args[1:]
        if len(shape_args) == 1 and isinstance(shape_args[0], (list, tuple)):
            shape_args = tuple(shape_args[0])
        # the size of dim 1 written as a literal cannot follow the pruned channel count
        fixed = len(shape_args) >= 2 and isinstance(shape_args[1], int) and shape_args[1] != -1
        if fixed and ins and not self.need[ins[0]].all():
            raise ValueError(f"ModelSpeedup: node {node.name!r} ({g.describe(node)}) reshapes to the fixed size "
                             f"{shape_args[1]} after a pruned layer; use x.flatten(1) / x.view(x.size(0), -1) or "
                             "exclude the layers returned by not_safe_to_prune")

    def _shrink_conv(self, mod: nn.Module, src: _State, keep_in: torch.Tensor, keep_out: torch.Tensor) -> nn.Module:
        weight = mod.weight.detach()
        device, dtype = weight.device, weight.dtype
        summed, _ = g.conv_connectivity(mod, weight.cpu())
        removed = ~keep_in
        fold = summed[:, removed] @ src.const[removed].to(summed.dtype)
        border = None
        if not _conv_foldable(mod) and bool((fold != 0).any()):
            # zero padding: the removed constants contribute less at the borders, so their
            # contribution becomes a map (one 1-channel conv of a ones plane) instead of a bias
            border = _constant_kernel(mod, weight.cpu(), src.const, removed)[keep_out]
            fold = torch.zeros_like(fold)
        bias = mod.bias.detach().cpu() if mod.bias is not None else torch.zeros(weight.shape[0], dtype=dtype)
        new_bias = (bias + fold)[keep_out]
        has_bias = mod.bias is not None or bool((fold[keep_out] != 0).any())
        if isinstance(mod, nn.Linear):
            new = nn.Linear(int(keep_in.sum()), int(keep_out.sum()), bias=has_bias)
            new_weight = weight.cpu()[keep_out][:, keep_in]
        else:
            groups = mod.groups
            out_g = keep_out.reshape(groups, -1)
            in_g = keep_in.reshape(groups, -1)
            active = out_g.any(1)
            w = weight.cpu().reshape(groups, out_g.shape[1], *weight.shape[1:])
            parts = [w[k][out_g[k]][:, in_g[k]] for k in torch.nonzero(active).flatten().tolist()]
            new_weight = torch.cat(parts, 0)
            new = type(mod)(int(keep_in.sum()), int(keep_out.sum()), mod.kernel_size, stride=mod.stride,
                            padding=mod.padding, dilation=mod.dilation, groups=int(active.sum()), bias=has_bias,
                            padding_mode=mod.padding_mode)
        with torch.no_grad():
            new.weight.copy_(new_weight)
            if has_bias:
                new.bias.copy_(new_bias)
        new.train(mod.training)
        new = new.to(device=device, dtype=dtype)
        if border is not None:
            new = ConstantInputConv(new, border.to(device=device, dtype=dtype))
        return new


def _constant_kernel(mod: nn.Module, weight: torch.Tensor, const: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """(out, 1, *kernel): each filter's weights on the removed constant channels, times the constants."""
    groups = mod.groups
    out_c, in_per_group = weight.shape[0], weight.shape[1]
    out_per_group = out_c // groups
    scale = torch.where(removed, const, torch.zeros_like(const)).to(weight.dtype).reshape(groups, in_per_group)
    kernel = torch.empty((out_c, 1) + tuple(weight.shape[2:]), dtype=weight.dtype)
    for k in range(groups):
        rows = slice(k * out_per_group, (k + 1) * out_per_group)
        shape = (1, in_per_group) + (1,) * (weight.dim() - 2)
        kernel[rows, 0] = (weight[rows] * scale[k].reshape(shape)).sum(1)
    return kernel


class ConstantInputConv(nn.Module):
    """A shrunk conv plus the contribution of removed constant input channels under zero padding.

    A removed channel that was a non-zero constant (e.g. a pruned filter after BatchNorm) adds a
    constant in the interior of the output but less at the borders, where the kernel overlaps the
    zero padding; ``const_kernel`` convolved with a ones plane reproduces exactly that map, for
    any input size.
    """

    def __init__(self, conv: nn.Module, const_kernel: torch.Tensor):
        super().__init__()
        self.conv = conv
        self.register_buffer("const_kernel", const_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv_fn = (nn.functional.conv1d, nn.functional.conv2d, nn.functional.conv3d)[x.dim() - 3]
        ones = x.new_ones((1, 1) + tuple(x.shape[2:]))
        border = conv_fn(ones, self.const_kernel, None, self.conv.stride, self.conv.padding, self.conv.dilation)
        return self.conv(x) + border


def _shrink_bn(mod: nn.Module, keep: torch.Tensor) -> nn.Module:
    keep_dev = keep.to(mod.running_mean.device if mod.running_mean is not None else "cpu")
    new = type(mod)(int(keep.sum()), eps=mod.eps, momentum=mod.momentum, affine=mod.affine,
                    track_running_stats=mod.track_running_stats)
    new = new.to(device=keep_dev.device, dtype=(mod.weight.dtype if mod.affine else torch.float32))
    with torch.no_grad():
        if mod.affine:
            new.weight.copy_(mod.weight[keep_dev])
            new.bias.copy_(mod.bias[keep_dev])
        if mod.track_running_stats:
            new.running_mean.copy_(mod.running_mean[keep_dev])
            new.running_var.copy_(mod.running_var[keep_dev])
            new.num_batches_tracked.copy_(mod.num_batches_tracked)
    new.train(mod.training)
    return new
