"""FLOPs / parameter counter (``count_flops_params``) built on forward hooks.

Counting rules (per sample, i.e. divided by the batch size):

* Conv: ``out_channels x prod(output spatial) x (in_channels / groups) x prod(kernel)``
  multiply-accumulates; the bias is not counted as FLOPs (the docs' example: 5·2·2·3 = 60).
* Linear: ``in_features x out_features`` per output row.
* Params: weight + bias elements. Under a pruner's module wrapper (a module with ``.module``
  and a ``weight_mask`` buffer), only the filters with a non-zero mask count, for FLOPs and
  params; pruned *input* channels are not seen, so masked FLOPs exceed post-speedup FLOPs.
* ``mode='full'`` also counts: BatchNorm 2 FLOPs per element (params = affine weight + bias),
  element-wise activations 1 per element, pooling ``prod(kernel)`` per output element
  (adaptive pooling: one per input element), Upsample one per output element.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn

__all__ = ["count_flops_params"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_ACT = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh,
        nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.PReLU, nn.Softplus, nn.Mish)
_POOL = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_ADAPTIVE = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
             nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
_MODES = ("default", "full")


def _first_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def _kept_filters(module: nn.Module, mask: torch.Tensor | None) -> int:
    """Output filters that survive the mask (any non-zero mask entry in the filter)."""
    if mask is None:
        return module.weight.shape[0]
    return int((mask.reshape(mask.shape[0], -1) != 0).any(1).sum())


def _count_conv(m: nn.Module, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None) -> tuple[int, int]:
    kept = _kept_filters(m, mask)
    per_filter_in = m.in_channels // m.groups * math.prod(m.kernel_size)
    flops = kept * math.prod(y.shape[2:]) * per_filter_in
    params = kept * per_filter_in + (kept if m.bias is not None else 0)
    return flops, params


def _count_linear(m: nn.Module, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None) -> tuple[int, int]:
    kept = _kept_filters(m, mask)
    rows = y.numel() // y.shape[0] // m.out_features  # extra dims (e.g. sequence) multiply the work
    flops = rows * kept * m.in_features
    params = kept * m.in_features + (kept if m.bias is not None else 0)
    return flops, params


def _count_full(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int] | None:
    per_in = x.numel() // x.shape[0]
    per_out = y.numel() // y.shape[0]
    if isinstance(m, _BN):
        return 2 * per_in, (2 * m.num_features if m.affine else 0)
    if isinstance(m, _ACT):
        return per_in, sum(p.numel() for p in m.parameters(recurse=False))
    if isinstance(m, _POOL):
        kernel = m.kernel_size if isinstance(m.kernel_size, tuple) else (m.kernel_size,) * (x.dim() - 2)
        return per_out * math.prod(kernel), 0
    if isinstance(m, _ADAPTIVE):
        return per_in, 0
    if isinstance(m, nn.Upsample):
        return per_out, 0
    return None


def _is_wrapper(module: nn.Module) -> bool:
    return isinstance(getattr(module, "module", None), nn.Module) and hasattr(module, "weight_mask")


def count_flops_params(model: nn.Module, x: Any, custom_ops: dict[type, Callable] | None = None,
                       verbose: bool = True, mode: str = "default") -> tuple[int, int, dict[str, dict[str, list]]]:
    """Counts the FLOPs (per sample) and parameters of ``model`` on input ``x``.

    Args:
        model: the model, plain or with pruner wrappers (their masks are honoured for filters).
        x: an input shape tuple (zeros of that shape are fed), a tensor, or a tuple of tensors.
        custom_ops: ``{module class: fn(module, inputs, output) -> {'flops': n, 'params': n}}``
            (a ``(flops, params)`` tuple is accepted too); overrides the built-in rules.
        verbose: print one table row per counted module call and the totals.
        mode: ``'default'`` counts Conv and Linear only; ``'full'`` also BN, activations, pooling, upsample.

    Returns:
        ``(flops, params, results)``; ``results`` maps each module name to lists (one entry per
        call) under ``flops``, ``params``, ``weight_size``, ``input_size``, ``output_size``,
        ``module_type``.

    Example:
        >>> flops, params, results = count_flops_params(model, (1, 1, 28, 28), verbose=False)
    """
    if mode not in _MODES:
        raise ValueError(f"mode: {mode!r} is not supported; allowed: 'default', 'full'")
    custom_ops = dict(custom_ops or {})
    for key in custom_ops:
        if not (isinstance(key, type) and issubclass(key, nn.Module)):
            raise ValueError(f"custom_ops: key {key!r} is not a torch.nn.Module subclass")
    inputs = _inputs(model, x)

    targets: list[tuple[str, nn.Module, torch.Tensor | None]] = []
    inside_wrapper: set[int] = set()
    for name, module in model.named_modules():
        if id(module) in inside_wrapper:
            continue
        if _is_wrapper(module):
            inside_wrapper.add(id(module.module))
            targets.append((name, module.module, module))
        elif not any(True for _ in module.children()) or type(module) in custom_ops:
            targets.append((name, module, None))

    results: dict[str, dict[str, list]] = {}
    param_seen: dict[str, int] = {}
    handles = []

    def make_hook(name: str, wrapper: nn.Module | None):
        def hook(hooked, args, output):
            # a wrapper is hooked itself (its forward may not call the inner module); count the inner one
            module = hooked.module if wrapper is not None else hooked
            x_in, y = _first_tensor(args), _first_tensor(output)
            if x_in is None or y is None:
                return
            mask = getattr(wrapper, "weight_mask", None) if wrapper is not None else None
            counted = _count_module(module, args, output, x_in, y, mask, custom_ops, mode)
            if counted is None:
                return
            flops, params = counted
            flops = int(flops)
            entry = results.setdefault(name, {k: [] for k in (
                "flops", "params", "weight_size", "input_size", "output_size", "module_type")})
            entry["flops"].append(flops)
            entry["params"].append(int(params))
            weight = getattr(module, "weight", None)
            entry["weight_size"].append(tuple(weight.shape) if isinstance(weight, torch.Tensor) else ())
            entry["input_size"].append(tuple(x_in.shape))
            entry["output_size"].append(tuple(y.shape))
            entry["module_type"].append(type(module).__name__)
            param_seen[name] = int(params)
        return hook

    for name, module, wrapper in targets:
        hooked = wrapper if wrapper is not None else module
        handles.append(hooked.register_forward_hook(make_hook(name, wrapper)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)

    total_flops = sum(sum(entry["flops"]) for entry in results.values())
    total_params = sum(param_seen.values())  # a module called twice owns its parameters once
    if verbose:
        _print_table(results, total_flops, total_params)
    return total_flops, total_params, results


def _inputs(model: nn.Module, x: Any) -> tuple:
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    if isinstance(x, torch.Tensor):
        return (x.to(device),)
    if isinstance(x, (tuple, list)) and x and all(isinstance(v, int) for v in x):
        return (torch.zeros(tuple(x), device=device),)
    if isinstance(x, (tuple, list)) and x and all(isinstance(v, torch.Tensor) for v in x):
        return tuple(v.to(device) for v in x)
    raise ValueError(f"x: expected an input shape tuple of ints, a tensor or a tuple of tensors, got {x!r}")


def _count_module(module, args, output, x_in, y, mask, custom_ops, mode) -> tuple[int, int] | None:
    op = custom_ops.get(type(module))
    if op is not None:
        counted = op(module, args, output)
        if isinstance(counted, dict):
            return counted.get("flops", 0), counted.get("params", 0)
        return tuple(counted)
    if isinstance(module, _CONV):
        return _count_conv(module, x_in, y, mask)
    if isinstance(module, nn.Linear):
        return _count_linear(module, x_in, y, mask)
    return _count_full(module, x_in, y) if mode == "full" else None


def _print_table(results: dict[str, dict[str, list]], flops: int, params: int) -> None:
    header = ("Index", "Name", "Type", "Weight Shape", "Input Size", "Output Size", "FLOPs", "#Params")
    rows = []
    for name, entry in results.items():
        for call in range(len(entry["flops"])):
            rows.append((str(len(rows) + 1), name, entry["module_type"][call], str(entry["weight_size"][call]),
                         str(entry["input_size"][call]), str(entry["output_size"][call]),
                         f"{entry['flops'][call]:,}", f"{entry['params'][call]:,}"))
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    print(line)
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print(line)
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    print(line)
    print(f"FLOPs total: {flops:,}")
    print(f"#Params total: {params:,}")
