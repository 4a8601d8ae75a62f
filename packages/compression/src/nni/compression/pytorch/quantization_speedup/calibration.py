"""The calibration config that quantizers' ``export_model`` returns, read into per-layer plans.

Format (NNI docs, quantizer ``export_model``), keyed by module name::

    {'conv1': {'weight_bit': 8, 'tracked_min_input': -0.42, 'tracked_max_input': 2.82},
     'relu1': {'output_bit': 8, 'tracked_min_output': 0.0, 'tracked_max_output': 4.2}}

``weight_bits`` / ``input_bits`` / ``output_bits`` are read as aliases of the singular keys, and
the older ``activation_bit`` / ``tracked_min_activation`` / ``tracked_max_activation`` as the
output ones. Other keys (scales, zero points a quantizer may add) are ignored: the backends
derive scales from the tracked ranges.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import torch
from torch import nn

_logger = logging.getLogger(__name__)

# Layers whose weights the backends can run in int8 (the docs' "Conv, Linear").
WEIGHTED_TYPES = (nn.Conv1d, nn.Conv2d, nn.Linear)

_BIT_KEYS = {
    "weight": ("weight_bit", "weight_bits"),
    "input": ("input_bit", "input_bits"),
    "output": ("output_bit", "output_bits", "activation_bit"),
}
_RANGE_KEYS = {
    "input": (("tracked_min_input",), ("tracked_max_input",)),
    "output": (("tracked_min_output", "tracked_min_activation"), ("tracked_max_output", "tracked_max_activation")),
}
KNOWN_KEYS = frozenset(k for keys in _BIT_KEYS.values() for k in keys) | frozenset(
    k for lo, hi in _RANGE_KEYS.values() for k in lo + hi)


@dataclass
class LayerPlan:
    """What a backend does with one module: int8 weights or not, and the ranges of its tensors."""

    name: str
    int8_weight: bool = False
    precision: int = 32  # of the layer's weights: 8, 16 or 32 (bits it runs with)
    input_range: tuple[float, float] | None = None
    output_range: tuple[float, float] | None = None


def _first(entry: Mapping[str, Any], keys: Iterable[str]) -> tuple[str | None, Any]:
    for key in keys:
        if key in entry:
            return key, entry[key]
    return None, None


def _precision(where: str, bits: Any, strict: bool, supported: tuple[int, ...]) -> int:
    """Bits -> the precision the backend runs: the smallest supported one >= bits (8 for fewer)."""
    allowed = ", ".join(map(str, supported))
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < 1:
        raise ValueError(f"{where}={bits!r}: bits must be a positive int (this backend runs {allowed})")
    if bits in supported:
        return bits
    if strict:
        raise ValueError(f"{where}={bits}: with strict_datatype=True only {allowed} bits are allowed; "
                         "pass strict_datatype=False to round up to the next of these (8 for fewer bits)")
    return next((p for p in sorted(supported) if p >= bits), max(supported))


def _range(where: str, entry: Mapping[str, Any], kind: str) -> tuple[float, float] | None:
    lo_keys, hi_keys = _RANGE_KEYS[kind]
    lo_key, lo = _first(entry, lo_keys)
    hi_key, hi = _first(entry, hi_keys)
    if lo_key is None and hi_key is None:
        return None
    if lo_key is None or hi_key is None:
        missing = lo_keys[0] if lo_key is None else hi_keys[0]
        raise ValueError(f"{where}: has {lo_key or hi_key} but not {missing}; give both ends of the {kind} range")
    values = []
    for key, value in ((lo_key, lo), (hi_key, hi)):
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{where}['{key}']={value!r}: must be a finite number")
        values.append(float(value))
    if values[0] > values[1]:
        raise ValueError(f"{where}: {lo_key}={values[0]} is above {hi_key}={values[1]}; min must be <= max")
    return values[0], values[1]


def parse_calibration_config(model: nn.Module, config: Mapping[str, Any] | None, strict_datatype: bool = True,
                             supported: tuple[int, ...] = (8, 32)) -> dict[str, LayerPlan]:
    """Checks ``config`` against ``model`` and returns ``{module name: LayerPlan}``.

    A Conv1d/Conv2d/Linear entry runs in int8 when its weight bits are 8 (32: float; other
    bits: an error with ``strict_datatype``, else the next ``supported`` precision). Its tracked input
    range quantizes its input, its tracked output range (if any) its output. Entries of other
    modules (ReLU, MaxPool ...) quantize their output with their output range.
    """
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise ValueError(f"config: expected the dict quantizer.export_model returns ({{layer name: {{...}}}}), "
                         f"got {type(config).__name__}")
    modules = dict(model.named_modules())
    plans: dict[str, LayerPlan] = {}
    for name, entry in config.items():
        where = f"config[{name!r}]"
        if name not in modules or name == "":
            raise ValueError(f"{where}: the model has no module named {name!r}; keys must be module names "
                             "as in model.named_modules()")
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: expected a dict of bits and tracked ranges, got {type(entry).__name__}")
        unknown = sorted(set(entry) - KNOWN_KEYS)
        if unknown:
            _logger.debug("%s: ignoring keys %s", where, unknown)
        plan = LayerPlan(name)
        weighted = isinstance(modules[name], WEIGHTED_TYPES)
        bits = {}
        for kind, keys in _BIT_KEYS.items():
            key, value = _first(entry, keys)
            if key is not None:
                bits[kind] = _precision(f"{where}['{key}']", value, strict_datatype, supported)
        if "weight" in bits and not weighted:
            raise ValueError(f"{where}: has weight bits but {type(modules[name]).__name__} is not one of "
                             f"{', '.join(t.__name__ for t in WEIGHTED_TYPES)} (the layers with int8 weights)")
        plan.int8_weight = weighted and bits.get("weight") == 8
        plan.precision = bits.get("weight", 32) if weighted else bits.get("output", 8)
        if bits.get("input", 8) == 8:
            plan.input_range = _range(where, entry, "input")
        if bits.get("output", 8) == 8:
            plan.output_range = _range(where, entry, "output")
        if weighted and bits.get("weight", 8) != 8:
            # a float layer keeps float activations: ranges would only add rounding
            plan.input_range = plan.output_range = None
        plans[name] = plan
    return plans


def observe_ranges(model: nn.Module, batches: Iterable[Any], layer_names: Iterable[str] | None = None,
                   weight_bit: int = 8) -> dict[str, dict[str, float]]:
    """Runs ``model`` (eval, no_grad) on ``batches`` and returns a calibration config.

    Every selected module (default: every Conv1d/Conv2d/Linear) gets ``weight_bit`` and the
    min/max of its first input and of its output over all batches, in the format of
    ``export_model``. A batch is a tensor, or a tuple/list whose first item is the input.
    """
    modules = dict(model.named_modules())
    names = [n for n, m in modules.items() if isinstance(m, WEIGHTED_TYPES)] if layer_names is None else list(layer_names)
    for name in names:
        if name not in modules:
            raise ValueError(f"layer_names: the model has no module named {name!r}")
    ranges: dict[str, dict[str, float]] = {}

    def hook(name):
        def record(module, inputs, output):
            entry = ranges.setdefault(name, {})
            for kind, tensor in (("input", inputs[0]), ("output", output)):
                lo, hi = tensor.detach().min().item(), tensor.detach().max().item()
                entry[f"tracked_min_{kind}"] = min(entry.get(f"tracked_min_{kind}", lo), lo)
                entry[f"tracked_max_{kind}"] = max(entry.get(f"tracked_max_{kind}", hi), hi)
        return record

    device = next((p.device for p in model.parameters()), None)
    handles = [modules[n].register_forward_hook(hook(n)) for n in names]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                data = batch[0] if isinstance(batch, (tuple, list)) else batch
                model(data.to(device) if isinstance(data, torch.Tensor) and device is not None else data)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    config = {}
    for name in names:
        if name not in ranges:
            raise ValueError(f"layer {name!r} never ran on the calibration batches")
        entry = {"weight_bit": weight_bit} if isinstance(modules[name], WEIGHTED_TYPES) else {"output_bit": 8}
        entry.update(ranges[name])
        config[name] = entry
    return config
