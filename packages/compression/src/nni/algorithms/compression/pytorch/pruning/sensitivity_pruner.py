"""SensitivityPruner (v1): prune iteratively, the layers the accuracy is less sensitive to more.

Each round analyses every configured layer with
:class:`~nni.compression.pytorch.utils.sensitivity_analysis.SensitivityAnalysis` (on the model as
pruned so far), turns the result into a pruning proportion per layer, prunes about
``sparsity_per_iter`` of the configured weights in that proportion (with the ``base_algo`` masker)
and fine-tunes, until the configured layers together reach the configured sparsity.
"""
from __future__ import annotations

import csv
import logging
import math
import numbers
import os
from typing import Callable

from torch import nn

from nni.compression.pytorch.utils.sensitivity_analysis import SensitivityAnalysis

from ._masker_pruner import MaskerPruner

__all__ = ["SensitivityPruner"]

_logger = logging.getLogger(__name__)

BASE_ALGOS = ("level", "l1", "l2", "fpgm")


def _number(owner: str, name: str, value, low: float, high: float, low_open: bool) -> float:
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real) and (
        (low < value if low_open else low <= value) and value <= high)
    if not ok:
        bracket = "(" if low_open else "["
        raise ValueError(f"{owner}: {name} must be a number in {bracket}{low}, {high}], got {value!r}")
    return float(value)


class SensitivityPruner(MaskerPruner):
    """Prune by per-layer sensitivity until the configured layers reach the configured sparsity.

    Args:
        model: model to prune.
        config_list: ``[{'sparsity': 0.5, 'op_types': ['Conv2d']}]``: the target is the share of the
            selected layers' weights pruned in total (per-entry sparsities weighted by layer size);
            individual layers end up pruned more or less than it, by their sensitivity.
        evaluator: returns the validation accuracy, called ``evaluator(*eval_args, **eval_kwargs)``.
        finetuner: optional, called ``finetuner(*finetune_args, **finetune_kwargs)`` after each round.
        base_algo: ``'l1'``, ``'l2'``, ``'fpgm'`` (filters of Conv2d) or ``'level'`` (weights).
        sparsity_proportion_calc: ``f({layer: {sparsity: accuracy}}) -> {layer: proportion}``; by
            default a layer's proportion is the largest sparsity whose accuracy drop (from this
            round's unpruned accuracy) is at most ``acc_drop_threshold``.
        sparsity_per_iter: share of the selected weights pruned in each round.
        acc_drop_threshold: accuracy drop that marks a sparsity as too much for a layer; also the
            early stop (``'dropped'``) of each round's sensitivity analysis.
        checkpoint_dir: if set, each round ``k`` writes ``iter{k}_model.pth``, ``iter{k}_masks.pth``
            and ``iter{k}_sensitivity.csv`` there.
        sparsity_per_iteration: keyword alias of ``sparsity_per_iter``.
    """

    def __init__(self, model: nn.Module, config_list: list[dict], evaluator: Callable[..., float],
                 finetuner: Callable | None = None, base_algo: str = "l1",
                 sparsity_proportion_calc: Callable[[dict], dict] | None = None, sparsity_per_iter: float = 0.1,
                 acc_drop_threshold: float = 0.05, checkpoint_dir: str | None = None, *,
                 sparsity_per_iteration: float | None = None):
        owner = type(self).__name__
        if base_algo not in BASE_ALGOS:
            raise ValueError(f"{owner}: base_algo must be one of {list(BASE_ALGOS)}, got {base_algo!r}")
        for name, fn, optional in (("evaluator", evaluator, False), ("finetuner", finetuner, True),
                                   ("sparsity_proportion_calc", sparsity_proportion_calc, True)):
            if not (callable(fn) or (optional and fn is None)):
                raise ValueError(f"{owner}: {name} must be a function{' or None' if optional else ''}, "
                                 f"got {type(fn).__name__}")
        if sparsity_per_iteration is not None:
            sparsity_per_iter = sparsity_per_iteration
        self.sparsity_per_iter = _number(owner, "sparsity_per_iter", sparsity_per_iter, 0.0, 1.0, True)
        self.acc_drop_threshold = _number(owner, "acc_drop_threshold", acc_drop_threshold, 0.0, math.inf, False)
        self.evaluator = evaluator
        self.finetuner = finetuner
        self.base_algo = base_algo
        self.checkpoint_dir = checkpoint_dir
        self.sparsity_proportion_calc = sparsity_proportion_calc or self._max_prune_ratio
        super().__init__(model, config_list, None, base_algo)
        #: layer -> number of filters (weights for 'level') to have pruned after the current round
        self._target_units: dict[str, int] = {}
        #: validation accuracy of the model at the start of the current round
        self.ori_acc: float | None = None
        self.analyzer = SensitivityAnalysis(self.bound_model, evaluator, prune_type=base_algo,
                                            early_stop_mode="dropped", early_stop_value=self.acc_drop_threshold)
        self.sensitivities: dict[str, dict[float, float]] = {}

    # -- sizes ---------------------------------------------------------------------------------
    def _wrappers(self) -> dict[str, nn.Module]:
        return {w.name: w for w in self.get_modules_wrapper()}

    def _units(self, wrapper) -> tuple[int, int, int]:
        """(prunable units, weights per unit, units pruned now): filters for the filter algorithms,
        single weights for 'level'."""
        mask = wrapper.weight_mask
        if self.base_algo == "level":
            return mask.numel(), 1, int((mask == 0).sum())
        n = mask.size(0)
        pruned = int((mask.reshape(n, -1).sum(dim=1) == 0).sum())
        return n, mask[0].numel(), pruned

    def current_sparsity(self) -> float:
        """Share of the selected layers' weights that are masked now."""
        masks = [w.weight_mask for w in self.get_modules_wrapper()]
        total = sum(m.numel() for m in masks)
        return 1.0 - float(sum(m.sum() for m in masks)) / total if total else 0.0

    def _target_sparsity_total(self) -> float:
        wrappers = self.get_modules_wrapper()
        total = sum(w.weight_mask.numel() for w in wrappers)
        return sum(w.config["sparsity"] * w.weight_mask.numel() for w in wrappers) / total if total else 0.0

    # -- public helpers of the docs ------------------------------------------------------------
    def create_cfg(self, ratios: dict[str, float]) -> list[dict]:
        """``{'conv1': 0.2}`` -> ``[{'sparsity': 0.2, 'op_names': ['conv1'], 'op_types': ['Conv2d']}]``."""
        wrappers = self._wrappers()
        cfg = []
        for name, ratio in ratios.items():
            if name not in wrappers:
                raise ValueError(f"create_cfg: {name!r} is not a layer this pruner prunes; known: {sorted(wrappers)}")
            cfg.append({"sparsity": ratio, "op_names": [name], "op_types": [wrappers[name].type]})
        return cfg

    @staticmethod
    def load_sensitivity(filepath: str) -> dict[str, dict[float, float]]:
        """Read a CSV written by ``SensitivityAnalysis.export`` into ``{layer: {sparsity: metric}}``."""
        with open(filepath, newline="") as f:
            rows = list(csv.reader(f))
        if not rows or not rows[0] or rows[0][0].strip() != "layername":
            raise ValueError(f"load_sensitivity: {filepath!r} does not start with the header 'layername,<sparsities>'")
        try:
            sparsities = [float(s) for s in rows[0][1:]]
            result = {}
            for line, row in enumerate(rows[1:], start=2):
                if not row:
                    continue
                if len(row) - 1 > len(sparsities):
                    raise ValueError(f"line {line} has more values than the header has sparsities")
                result[row[0].strip()] = {s: float(v) for s, v in zip(sparsities, row[1:])}
        except ValueError as err:
            raise ValueError(f"load_sensitivity: {filepath!r} is not a sensitivity CSV ({err})") from None
        return result

    def normalize(self, ratios: dict[str, float], target_pruned: float) -> dict[str, float]:
        """Turn per-layer proportions into each layer's total sparsity after this round, so that
        ``target_pruned`` (a share of the selected layers' weights) more gets pruned.

        A layer with proportion ``r`` prunes ``k * r`` of its unpruned weights (``k`` found so the
        amounts add up, every layer keeping one filter); when the layers with ``r > 0`` cannot take it
        all, the rest is spread over the others. Counts are whole filters (whole weights for 'level'),
        rounded up so that at least ``target_pruned`` is pruned while any layer has room.
        """
        wrappers = self._wrappers()
        for name in ratios:
            if name not in wrappers:
                raise ValueError(f"sparsity proportions name {name!r}, which is not a layer this pruner prunes; "
                                 f"known: {sorted(wrappers)}")
        info = {}
        for name, wrapper in wrappers.items():
            units, size, pruned = self._units(wrapper)
            ratio = float(ratios.get(name, 0.0))
            if not math.isfinite(ratio) or ratio < 0:
                raise ValueError(f"sparsity proportion of {name!r} must be a finite number >= 0, got {ratio!r}")
            info[name] = {"units": units, "size": size, "pruned": pruned, "room": max(units - 1 - pruned, 0),
                          "ratio": ratio}
        total = sum(i["units"] * i["size"] for i in info.values())
        want = target_pruned * total
        alloc = {name: 0.0 for name in info}
        for tier in ("ratio", "rest"):
            left = want - sum(alloc.values())
            if left <= 1e-9:
                break
            if tier == "ratio":
                weights = {n: i["ratio"] for n, i in info.items() if i["ratio"] > 0}
            else:  # what the layers with a proportion cannot take: uniform over the others
                weights = {n: 1.0 for n, i in info.items() if alloc[n] < i["room"] * i["size"]}
            self._fill(info, alloc, weights, left)
        counts = {n: min(int(alloc[n] / info[n]["size"] + 1e-9), info[n]["room"]) for n in info}
        # round up, largest remainders first, until the wanted amount is reached
        order = sorted(info, key=lambda n: (alloc[n] / info[n]["size"] - counts[n], info[n]["ratio"]), reverse=True)

        def short() -> bool:
            return sum(counts[n] * info[n]["size"] for n in info) < want - 1e-9

        for name in order:
            if not short():
                break
            counts[name] += counts[name] < info[name]["room"]
        for name in order:
            while short() and counts[name] < info[name]["room"]:
                counts[name] += 1
        self._target_units = {n: info[n]["pruned"] + counts[n] for n in info}
        return {n: self._target_units[n] / info[n]["units"] for n in info}

    @staticmethod
    def _fill(info: dict, alloc: dict, weights: dict, amount: float) -> None:
        """Add ``k * w * unpruned`` weights to each layer (capped by its room) with ``k`` chosen by
        bisection so that ``amount`` is added in total (or every layer is full)."""
        if not weights:
            return
        unpruned = {n: (info[n]["units"] - info[n]["pruned"]) * info[n]["size"] for n in weights}
        cap = {n: info[n]["room"] * info[n]["size"] - alloc[n] for n in weights}

        def added(k: float) -> dict:
            return {n: min(cap[n], k * weights[n] * unpruned[n]) for n in weights}

        high = max((cap[n] / (weights[n] * unpruned[n]) for n in weights if unpruned[n] > 0), default=0.0)
        if sum(added(high).values()) <= amount:
            k = high
        else:
            low = 0.0
            for _ in range(100):
                mid = (low + high) / 2
                if sum(added(mid).values()) < amount:
                    low = mid
                else:
                    high = mid
            k = high
        for n, extra in added(k).items():
            alloc[n] += extra

    # -- pruning -------------------------------------------------------------------------------
    def _max_prune_ratio(self, sensitivities: dict[str, dict[float, float]]) -> dict[str, float]:
        """Default proportions: per layer, the largest sparsity whose accuracy is within
        ``acc_drop_threshold`` of this round's unpruned accuracy (0 when none is)."""
        ratios = {}
        for name, row in sensitivities.items():
            ok = [s for s, acc in row.items() if self.ori_acc - acc <= self.acc_drop_threshold]
            ratios[name] = max(ok, default=0.0)
        return ratios

    def target_sparsity(self, wrapper) -> float:
        """This round's sparsity of ``wrapper``: half a unit above the wanted count so that the
        masker's ``int(n * sparsity)`` gives exactly that count."""
        units, _, pruned = self._units(wrapper)
        count = self._target_units.get(wrapper.name, pruned)
        return (count + 0.5) / units if count else 0.0

    def _analyse(self, eval_args, eval_kwargs, resume_sensitivity) -> dict[str, dict[float, float]]:
        names = list(self._wrappers())
        if resume_sensitivity is not None:
            sens = self.load_sensitivity(resume_sensitivity)
            self.analyzer.sensitivities = {n: dict(r) for n, r in sens.items()}
            return {n: sens[n] for n in names if n in sens}
        for wrapper in self.get_modules_wrapper():
            units, _, pruned = self._units(wrapper)
            self.analyzer.update_already_pruned(wrapper.name, pruned / units)
        # the analysis prunes the unwrapped layers itself; the masked weights are zero in place
        self._apply_all_masks()
        self._unwrap_model()
        try:
            return self.analyzer.analysis(eval_args, eval_kwargs, specified_layers=names)
        finally:
            self._wrap_model()

    def compress(self, eval_args: list | None = None, eval_kwargs: dict | None = None,
                 finetune_args: list | None = None, finetune_kwargs: dict | None = None,
                 resume_sensitivity: str | None = None) -> nn.Module:
        """Prune round by round until the configured sparsity is reached; return the wrapped model.

        ``resume_sensitivity``: a CSV (``SensitivityAnalysis.export``) used instead of the first
        round's analysis.
        """
        eval_args, eval_kwargs = list(eval_args or []), dict(eval_kwargs or {})
        finetune_args, finetune_kwargs = list(finetune_args or []), dict(finetune_kwargs or {})
        total = sum(w.weight_mask.numel() for w in self.get_modules_wrapper())
        target = self._target_sparsity_total()
        iteration = 0
        while self.current_sparsity() * total < target * total - 1e-6:
            before = self.current_sparsity()
            self.ori_acc = float(self.evaluator(*eval_args, **eval_kwargs))
            self.sensitivities = self._analyse(eval_args, eval_kwargs, resume_sensitivity if iteration == 0 else None)
            ratios = self.sparsity_proportion_calc(self.sensitivities)
            if not isinstance(ratios, dict):
                raise ValueError(f"sparsity_proportion_calc must return {{layer: proportion}}, "
                                 f"got {type(ratios).__name__}")
            step = min(self.sparsity_per_iter, target - before)
            new_ratios = self.normalize(ratios, step)
            for wrapper in self.get_modules_wrapper():
                wrapper.if_calculated = False
            self.update_mask()
            after = self.current_sparsity()
            _logger.info("SensitivityPruner round %d: accuracy %.4f, sparsity %.4f -> %.4f, layers %s",
                         iteration, self.ori_acc, before, after, {n: round(r, 4) for n, r in new_ratios.items()})
            if after <= before:
                _logger.warning("SensitivityPruner: every layer keeps one filter only; stopping at sparsity %.4f "
                                "below the configured %.4f", after, target)
                break
            if self.finetuner is not None:
                self.finetuner(*finetune_args, **finetune_kwargs)
            if self.checkpoint_dir is not None:
                os.makedirs(self.checkpoint_dir, exist_ok=True)
                prefix = os.path.join(self.checkpoint_dir, f"iter{iteration}")
                self.export_model(prefix + "_model.pth", prefix + "_masks.pth")
                self.analyzer.export(prefix + "_sensitivity.csv")
            iteration += 1
        self._apply_all_masks()
        return self.bound_model
