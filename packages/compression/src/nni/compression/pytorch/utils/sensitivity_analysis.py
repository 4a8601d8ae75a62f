"""Per-layer pruning sensitivity: prune one layer at a time and record the validation metric.

Each try wraps the single layer with the v1 one-shot pruner of ``prune_type`` (so the masks are
exactly those L1Filter / L2Filter / FPGM / Level pruning would produce), evaluates the model, then
unwraps it and restores the layer's original weights; every other layer keeps its weights.
"""
from __future__ import annotations

import csv
import logging
import math
import numbers
from typing import Callable, Iterable

import torch
from torch import nn

__all__ = ["PRUNE_TYPES", "SensitivityAnalysis"]

_logger = logging.getLogger(__name__)

#: prune_type -> v1 pruner class name in nni.algorithms.compression.pytorch.pruning
PRUNE_TYPES = {"l1": "L1FilterPruner", "l2": "L2FilterPruner", "fpgm": "FPGMPruner",
               "level": "LevelPruner", "fine-grained": "LevelPruner"}
EARLY_STOP_MODES = ("minimize", "maximize", "dropped", "raised")
_FILTER_TYPES = ("Conv2d",)


def _default_sparsities() -> list[float]:
    # numpy.arange(0.1, 1.0, 0.1) of the docs, without its float noise (0.30000000000000004)
    return [round(0.1 * i, 1) for i in range(1, 10)]


class SensitivityAnalysis:
    """Analyse how the validation metric reacts to pruning each conv layer on its own.

    Args:
        model: the model to analyse (an unwrapped ``nn.Module``; it is pruned and restored in place).
        val_func: returns the validation metric (accuracy, loss, ...); called as
            ``val_func(*val_args, **val_kwargs)``.
        sparsities: the sparsities to try for each layer (ascending); default 0.1, 0.2, ..., 0.9.
        prune_type: ``'l1'`` / ``'l2'`` / ``'fpgm'`` (filter pruning) or ``'level'`` /
            ``'fine-grained'`` (element-wise).
        early_stop_mode: None, ``'minimize'`` (stop a layer once the metric < value), ``'maximize'``
            (metric > value), ``'dropped'`` (dropped by value from the unpruned metric),
            ``'raised'`` (raised by value).
        early_stop_value: the threshold of ``early_stop_mode``.
    """

    def __init__(self, model: nn.Module, val_func: Callable[..., float], sparsities: Iterable[float] | None = None,
                 prune_type: str = "l1", early_stop_mode: str | None = None, early_stop_value: float | None = None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"SensitivityAnalysis: model must be a torch.nn.Module, got {type(model).__name__}")
        if not callable(val_func):
            raise TypeError("SensitivityAnalysis: val_func must be a function returning the validation metric")
        if prune_type not in PRUNE_TYPES:
            raise ValueError(f"SensitivityAnalysis: prune_type must be one of {list(PRUNE_TYPES)}, got {prune_type!r}")
        if early_stop_mode is not None and early_stop_mode not in EARLY_STOP_MODES:
            raise ValueError(f"SensitivityAnalysis: early_stop_mode must be None or one of {list(EARLY_STOP_MODES)}, "
                             f"got {early_stop_mode!r}")
        if early_stop_mode is not None and (isinstance(early_stop_value, bool)
                                            or not isinstance(early_stop_value, numbers.Real)):
            raise ValueError(f"SensitivityAnalysis: early_stop_mode={early_stop_mode!r} needs a number "
                             f"early_stop_value, got {early_stop_value!r}")
        self.model = model
        self.val_func = val_func
        self.sparsities = self._check_sparsities(sparsities)
        self.prune_type = prune_type
        self.early_stop_mode = early_stop_mode
        self.early_stop_value = early_stop_value
        #: ``{layer name: {sparsity: metric}}`` of every analysis run so far
        self.sensitivities: dict[str, dict[float, float]] = {}
        #: layer name -> share of its weights (filters) already pruned; a try at sparsity ``s`` then
        #: prunes ``s`` of what is left: ``ratio + s * (1 - ratio)`` of the layer in total
        self.already_pruned: dict[str, float] = {}
        #: the metric of the model as it was at the start of the last :meth:`analysis`
        self.ori_metric: float | None = None
        #: the layers analysed by default: the conv layers, as the docs say (``specified_layers``
        #: may name other weighted layers for ``'level'``)
        self.target_layer: dict[str, nn.Module] = {
            name: module for name, module in model.named_modules()
            if module is not model and type(module).__name__ in _FILTER_TYPES}

    @staticmethod
    def _check_sparsities(sparsities) -> list[float]:
        if sparsities is None:
            return _default_sparsities()
        values = [float(s) if isinstance(s, numbers.Real) and not isinstance(s, bool) else s for s in sparsities]
        for i, s in enumerate(values):
            if not isinstance(s, float) or not 0 < s < 1:
                raise ValueError(f"SensitivityAnalysis: sparsities[{i}] must be a number in (0, 1), got {s!r}")
        if not values:
            raise ValueError("SensitivityAnalysis: sparsities is empty; give at least one value in (0, 1)")
        return sorted(set(values))

    # -- public API ----------------------------------------------------------------------------
    def load_state_dict(self, state_dict: dict) -> None:
        """Update the weights of the model (e.g. after fine-tuning between analyses)."""
        self.model.load_state_dict(state_dict)

    def update_already_pruned(self, layername: str, ratio: float) -> None:
        """Record that ``ratio`` of ``layername`` is already pruned (its weights are zero)."""
        if layername not in dict(self.model.named_modules()):
            raise ValueError(f"update_already_pruned: no layer named {layername!r} in the model")
        if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real) or not 0 <= ratio < 1:
            raise ValueError(f"update_already_pruned: ratio for {layername!r} must be in [0, 1), got {ratio!r}")
        self.already_pruned[layername] = float(ratio)

    def analysis(self, val_args: list | tuple | None = None, val_kwargs: dict | None = None,
                 specified_layers: list[str] | None = None) -> dict[str, dict[float, float]]:
        """Prune each conv layer (or each of ``specified_layers``) alone at every sparsity and
        return ``{layer name: {sparsity: metric}}`` (shorter where the early stop fired)."""
        val_args = list(val_args or [])
        val_kwargs = dict(val_kwargs or {})
        layers = self._layers(specified_layers)
        self.ori_metric = float(self.val_func(*val_args, **val_kwargs))
        _logger.info("SensitivityAnalysis: unpruned metric %.6f", self.ori_metric)
        for name in layers:
            self.sensitivities[name] = {}
            for sparsity in self.sparsities:
                metric = self._try(name, sparsity, val_args, val_kwargs)
                self.sensitivities[name][sparsity] = metric
                _logger.info("SensitivityAnalysis: layer %s sparsity %.4g -> %.6f", name, sparsity, metric)
                if self._early_stop(metric):
                    break
        return {name: dict(self.sensitivities[name]) for name in layers}

    def export(self, filepath: str) -> None:
        """Write the results as CSV: ``layername,<s1>,<s2>,...`` then one row per layer
        (``layer,<metric at s1>,...``; shorter where the early stop fired)."""
        sparsities = sorted({s for row in self.sensitivities.values() for s in row} | set(self.sparsities))
        with open(filepath, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["layername"] + [str(s) for s in sparsities])
            for name, row in self.sensitivities.items():
                writer.writerow([name] + [str(row[s]) for s in sparsities if s in row])

    # -- internals -----------------------------------------------------------------------------
    def _layers(self, specified_layers) -> list[str]:
        if specified_layers is None:
            return list(self.target_layer)
        modules = dict(self.model.named_modules())
        filter_algo = PRUNE_TYPES[self.prune_type] != "LevelPruner"
        for i, name in enumerate(specified_layers):
            module = modules.get(name) if isinstance(name, str) else None
            if module is None or module is self.model:
                raise ValueError(f"analysis: specified_layers[{i}] = {name!r} names no layer of the model")
            if filter_algo and type(module).__name__ not in _FILTER_TYPES:
                raise ValueError(f"analysis: specified_layers[{i}] = {name!r} is a {type(module).__name__}; "
                                 f"prune_type {self.prune_type!r} prunes only {list(_FILTER_TYPES)}")
            if not isinstance(getattr(module, "weight", None), torch.Tensor):
                raise ValueError(f"analysis: specified_layers[{i}] = {name!r} has no weight to prune")
        return list(specified_layers)

    def _early_stop(self, metric: float) -> bool:
        mode, value = self.early_stop_mode, self.early_stop_value
        if mode is None:
            return False
        if mode == "minimize":
            return metric < value
        if mode == "maximize":
            return metric > value
        if mode == "dropped":
            return self.ori_metric - metric >= value
        return metric - self.ori_metric >= value  # raised

    def _pruner_class(self):
        from nni.algorithms.compression.pytorch import pruning

        return getattr(pruning, PRUNE_TYPES[self.prune_type])

    def _try(self, name: str, sparsity: float, val_args: list, val_kwargs: dict) -> float:
        module = dict(self.model.named_modules())[name]
        saved = {k: v.detach().clone() for k, v in module.state_dict().items()}
        already = self.already_pruned.get(name, 0.0)
        total = already + sparsity * (1 - already)
        # LevelPruner / filter pruners take sparsity < 1; the masker keeps one filter anyway
        total = min(total, math.nextafter(1.0, 0.0))
        pruner = self._pruner_class()(self.model, [{"sparsity": total, "op_names": [name],
                                                    "op_types": [type(module).__name__]}])
        try:
            # filters zeroed by earlier pruning stay pruned (FPGM would not pick them by itself)
            for wrapper in pruner.get_modules_wrapper():
                weight = wrapper.module.weight.detach()
                if PRUNE_TYPES[self.prune_type] != "LevelPruner" and weight.dim() > 1:
                    alive = weight.reshape(weight.size(0), -1).abs().sum(dim=1) > 0
                    shape = (-1,) + (1,) * (weight.dim() - 1)
                    wrapper.weight_mask.mul_(alive.view(shape).to(wrapper.weight_mask.dtype))
            pruner.compress()
            metric = float(self.val_func(*val_args, **val_kwargs))
        finally:
            pruner._unwrap_model()
            module.load_state_dict(saved)
        return metric
