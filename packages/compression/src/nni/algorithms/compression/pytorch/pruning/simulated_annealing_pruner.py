"""Simulated-annealing search of per-layer sparsities (v1), and what the v1 search pruners
(NetAdapt, SimulatedAnnealing, AutoCompress) share.

The config_list gives one *overall* sparsity: the fraction of the weights of all selected layers
to prune (each layer counted by its weight count). The search pruners decide the per-layer
sparsities; the masks themselves always come from the ``base_algo`` masker (level / l1 / l2 / fpgm)
of the one-shot pruners.

Files written into ``experiment_data_dir`` (the docs do not fix their names):

* ``search_history.csv``: one row per evaluated candidate (columns depend on the pruner).
* ``config_list.json``: the per-layer config_list found, ``[{'sparsity': s, 'op_names': [name]}, ...]``,
  usable with the base pruner (``L1FilterPruner(model, config_list)``).
* ``search_result.json``: ``{'performance': {'original': .., 'pruned': ..}, 'sparsity': {'target': ..,
  'actual': ..}, 'config_list': [...]}``.
"""
from __future__ import annotations

import copy
import csv
import json
import logging
import math
import random
from pathlib import Path
from typing import Callable

from torch import nn

from nni.compression.pytorch.utils.config_validation import ConfigListError

from ._masker_pruner import MaskerPruner
from .one_shot_pruner import OneshotPruner

__all__ = ["SimulatedAnnealingPruner"]

_logger = logging.getLogger(__name__)

BASE_ALGOS = ("level", "l1", "l2", "fpgm")


def _rescale(sparsities: list[float], sizes: list[int], target: float) -> list[float]:
    # the v2 task generator's allocation rule (larger layers sparser, size-weighted mean = target)
    from nni.algorithms.compression.v2.pytorch.pruning.tools.task_generator import SimulatedAnnealingTaskGenerator
    return SimulatedAnnealingTaskGenerator._rescale(sparsities, sizes, target)


class SearchPruner(MaskerPruner):
    """Base of the v1 pruners that search per-layer sparsities for one overall ``sparsity``.

    The bound model is wrapped at construction (like every v1 pruner); :meth:`compress` runs the
    search on copies of the model and finally sets the masks found on the bound model.
    """

    def __init__(self, model: nn.Module, config_list: list[dict], evaluator: Callable[[nn.Module], float],
                 optimize_mode: str = "maximize", base_algo: str = "l1", experiment_data_dir: str = "./"):
        owner = type(self).__name__
        if base_algo not in BASE_ALGOS:
            raise ValueError(f"{owner}: base_algo must be one of {list(BASE_ALGOS)}, got {base_algo!r}")
        if optimize_mode not in ("maximize", "minimize"):
            raise ValueError(f"{owner}: optimize_mode must be 'maximize' or 'minimize', got {optimize_mode!r}")
        if not callable(evaluator):
            raise ValueError(f"{owner}: evaluator must be a function evaluator(model) -> float")
        if not isinstance(experiment_data_dir, (str, Path)):
            raise ValueError(f"{owner}: experiment_data_dir must be a path, got {experiment_data_dir!r}")
        self._evaluator = evaluator
        self.optimize_mode = optimize_mode
        self.base_algo = base_algo
        self.experiment_data_dir = Path(experiment_data_dir)
        # the search prunes copies of the model as it is now (before wrapping)
        self._origin_model = copy.deepcopy(model)
        super().__init__(model, config_list, None, base_algo)
        wrappers = self.get_modules_wrapper()
        if not wrappers:
            raise ConfigListError(f"{owner}: config_list selects no layer of the model")
        self.layer_names = [w.name for w in wrappers]
        self.layer_sizes = {w.name: w.module.weight.numel() for w in wrappers}
        self.target = self.config_list_target()
        #: per-layer sparsities found by the search (layer name -> sparsity)
        self.sparsities: dict[str, float] = {name: 0.0 for name in self.layer_names}

    # -- config ---------------------------------------------------------------------------------
    def validate_config(self, model, config_list):
        """``sparsity`` is the overall target: every non-excluded entry must give the same one."""
        canonical = super().validate_config(model, config_list)
        first = None
        for i, entry in enumerate(canonical):
            if entry.get("exclude"):
                continue
            if first is None:
                first = (i, entry["sparsity"])
            elif entry["sparsity"] != first[1]:
                raise ConfigListError(
                    f"config_list[{i}]['sparsity']: {type(self).__name__} prunes all selected layers to one overall "
                    f"sparsity, so every entry must repeat config_list[{first[0]}]'s {first[1]}, "
                    f"got {entry['sparsity']}")
        if first is None:
            raise ConfigListError(f"config_list: {type(self).__name__} needs an entry with 'sparsity' "
                                  f"(all are excluded)")
        if first[1] <= 0:
            raise ConfigListError(f"config_list[{first[0]}]['sparsity'] must be in (0, 1) for {type(self).__name__}, "
                                  f"got {first[1]}")
        return canonical

    def config_list_target(self) -> float:
        return next(entry["sparsity"] for entry in self.config_list if not entry.get("exclude"))

    # -- helpers for the searches --------------------------------------------------------------
    def score(self, model: nn.Module) -> float:
        """The evaluator's value, negated in ``minimize`` mode (so larger is always better)."""
        value = float(self._evaluator(model))
        return value if self.optimize_mode == "maximize" else -value

    def performance(self, score: float) -> float:
        """The evaluator's own value back from :meth:`score`."""
        return score if self.optimize_mode == "maximize" else -score

    @staticmethod
    def layer_config_list(sparsities: dict[str, float]) -> list[dict]:
        """``[{'sparsity': s, 'op_names': [name]}]`` for the layers with a sparsity > 0."""
        return [{"sparsity": float(s), "op_names": [name]} for name, s in sparsities.items() if s > 0]

    def prune_copy(self, model: nn.Module, sparsities: dict[str, float], masks: dict | None = None) \
            -> tuple[nn.Module, dict, OneshotPruner | None]:
        """A copy of ``model`` (unwrapped) masked by ``base_algo`` at ``sparsities``; ``masks``
        (``{name: {'weight': t, 'bias': t}}``) stay pruned. Returns the wrapped copy, its masks and
        the pruner that wraps it (None when nothing is pruned)."""
        candidate = copy.deepcopy(model)
        config_list = self.layer_config_list(sparsities)
        if not config_list:
            return candidate, {}, None
        pruner = OneshotPruner(candidate, config_list, pruning_algorithm=self.base_algo)
        if masks:
            for wrapper in pruner.get_modules_wrapper():
                if wrapper.name in masks:
                    pruner._set_masks(wrapper, _as_wrapper_masks(masks[wrapper.name]))
        pruner.compress()
        return candidate, pruner.get_masks(), pruner

    def actual_sparsity(self, masks: dict) -> float:
        """Fraction of the selected layers' weights that ``masks`` prune."""
        pruned = sum(int((masks[name]["weight"] == 0).sum()) for name in self.layer_names if name in masks)
        return pruned / sum(self.layer_sizes.values())

    def max_sparsity(self, name: str) -> float:
        """Largest sparsity a layer may get: one filter (or one weight) always stays."""
        weight = self._origin_model.get_submodule(name).weight
        units = weight.size(0) if self.base_algo != "level" else weight.numel()
        return (units - 1) / units

    def apply_result(self, model: nn.Module | None, masks: dict) -> None:
        """Load the weights of ``model`` (an unwrapped searched copy) into the bound model and set ``masks``."""
        if model is not None:
            self.load_model_state_dict(model.state_dict())
        for wrapper in self.get_modules_wrapper():
            if wrapper.name in masks:
                self._set_masks(wrapper, _as_wrapper_masks(masks[wrapper.name]))
            wrapper.if_calculated = True

    def target_sparsity(self, wrapper) -> float:
        return self.sparsities.get(wrapper.name, 0.0)

    def write_results(self, history_fields: list[str], history: list[dict], original: float | None,
                      pruned: float, masks: dict) -> None:
        """Write ``search_history.csv``, ``config_list.json`` and ``search_result.json``."""
        folder = self.experiment_data_dir
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "search_history.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=history_fields)
            writer.writeheader()
            for row in history:
                writer.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in row.items()})
        config_list = self.layer_config_list(self.sparsities)
        (folder / "config_list.json").write_text(json.dumps(config_list, indent=2))
        result = {"performance": {"original": original, "pruned": pruned},
                  "sparsity": {"target": self.target, "actual": self.actual_sparsity(masks)},
                  "config_list": config_list}
        (folder / "search_result.json").write_text(json.dumps(result, indent=2))
        _logger.info("%s: results written to %s", type(self).__name__, folder)


def _as_wrapper_masks(masks: dict) -> dict:
    out = {"weight_mask": masks["weight"]}
    if masks.get("bias") is not None:
        out["bias_mask"] = masks["bias"]
    return out


class SimulatedAnnealingPruner(SearchPruner):
    """Search the per-layer sparsities by simulated annealing, keeping the overall ``sparsity``.

    Start from a random allocation (larger layers sparser, the size-weighted mean equal to the
    target); at each temperature perturb it (by up to ``perturbation_magnitude * T / start_temperature``
    per layer, then rescaled to the target), prune a copy of the model with ``base_algo`` and
    evaluate it; a better candidate is accepted, a worse one with probability
    ``exp(-|delta| / T)``; an unaccepted perturbation is retried (10 tries at most, then the
    temperature drops anyway); ``T <- T * cool_down_rate`` while ``T > stop_temperature``.
    The best allocation seen is applied to the model.
    Random draws use Python's ``random`` module: ``random.seed(n)`` makes a search reproducible.

    Args:
        model: the model to prune.
        config_list: ``[{'sparsity': overall, 'op_types': [...]|'op_names': [...]}]`` (one sparsity for
            all entries; l1/l2/fpgm prune Conv2d filters, level any weighted layer).
        evaluator: ``evaluator(model) -> float`` on the masked model.
        optimize_mode: ``'maximize'`` or ``'minimize'`` the evaluator.
        base_algo: ``'level'``, ``'l1'``, ``'l2'`` or ``'fpgm'``: which weights each layer prunes.
        start_temperature, stop_temperature, cool_down_rate: the annealing schedule.
        perturbation_magnitude: initial perturbation of each layer's sparsity.
        experiment_data_dir: where ``search_history.csv``, ``config_list.json`` and ``search_result.json`` go.
    """

    #: perturbations tried at one temperature before cooling down without accepting any
    max_tries_per_temperature = 10

    def __init__(self, model: nn.Module, config_list: list[dict], evaluator: Callable[[nn.Module], float],
                 optimize_mode: str = "maximize", base_algo: str = "l1", start_temperature: float = 100,
                 stop_temperature: float = 20, cool_down_rate: float = 0.9, perturbation_magnitude: float = 0.35,
                 experiment_data_dir: str = "./"):
        owner = type(self).__name__
        for name, value in (("start_temperature", start_temperature), ("stop_temperature", stop_temperature),
                            ("perturbation_magnitude", perturbation_magnitude)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{owner}: {name} must be a positive number, got {value!r}")
        if not start_temperature > stop_temperature:
            raise ValueError(f"{owner}: start_temperature must be greater than stop_temperature, got "
                             f"{start_temperature!r} <= {stop_temperature!r}")
        if isinstance(cool_down_rate, bool) or not isinstance(cool_down_rate, (int, float)) \
                or not 0 < cool_down_rate < 1:
            raise ValueError(f"{owner}: cool_down_rate must be in (0, 1), got {cool_down_rate!r}")
        self.start_temperature = float(start_temperature)
        self.stop_temperature = float(stop_temperature)
        self.cool_down_rate = float(cool_down_rate)
        self.perturbation_magnitude = float(perturbation_magnitude)
        super().__init__(model, config_list, evaluator, optimize_mode, base_algo, experiment_data_dir)
        self.history: list[dict] = []

    def anneal(self, sizes: dict[str, int], target: float,
               evaluate: Callable[[dict[str, float]], tuple[float, object]], round_: int = 0):
        """Simulated annealing over allocations ``{name: sparsity}`` whose ``sizes``-weighted mean is
        ``target``; ``evaluate(allocation) -> (score, payload)``. Returns ``(allocation, score, payload)``
        of the best allocation; every candidate is appended to :attr:`history`."""
        names = list(sizes)
        size_list = [sizes[n] for n in names]
        caps = [self.max_sparsity(n) for n in names]

        def allocation(values):
            values = _rescale(values, size_list, target)
            return {n: min(v, cap) for n, v, cap in zip(names, values, caps)}

        def record(alloc, score, temperature, accepted):
            self.history.append({"round": round_, "temperature": temperature,
                                 "performance": self.performance(score), "accepted": accepted,
                                 "sparsities": {n: round(s, 6) for n, s in alloc.items()}})

        current = allocation([random.random() for _ in names])
        current_score, payload = evaluate(current)
        record(current, current_score, self.start_temperature, True)
        best = (current, current_score, payload)
        temperature = self.start_temperature
        while temperature > self.stop_temperature:
            magnitude = self.perturbation_magnitude * temperature / self.start_temperature
            for _ in range(self.max_tries_per_temperature):
                candidate = allocation([current[n] + random.uniform(-magnitude, magnitude) for n in names])
                score, payload = evaluate(candidate)
                delta = score - current_score
                accepted = delta > 0 or random.random() < math.exp(-abs(delta) / temperature)
                record(candidate, score, temperature, accepted)
                if score > best[1]:
                    best = (candidate, score, payload)
                if accepted:
                    current, current_score = candidate, score
                    break
            temperature *= self.cool_down_rate
        return best

    def compress(self, return_config_list: bool = False):
        """Search, then mask the model with the best allocation found.

        Returns the (wrapped, masked) model, or the per-layer config_list found when
        ``return_config_list`` is True.
        """
        origin = self._origin_model
        original_score = self.score(origin)

        def evaluate(alloc):
            candidate, masks, _ = self.prune_copy(origin, alloc)
            return self.score(candidate), masks

        self.history = []
        best, best_score, masks = self.anneal(self.layer_sizes, self.target, evaluate)
        self.sparsities = dict(best)
        self.apply_result(None, masks)
        self.write_results(["round", "temperature", "performance", "accepted", "sparsities"], self.history,
                           self.performance(original_score), self.performance(best_score), masks)
        if return_config_list:
            return self.layer_config_list(self.sparsities)
        return self.bound_model
