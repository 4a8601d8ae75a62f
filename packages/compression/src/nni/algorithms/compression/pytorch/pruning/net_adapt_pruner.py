"""NetAdapt (v1): prune one layer per iteration, the one whose pruning hurts the evaluator least."""
from __future__ import annotations

import copy
import logging
import math
from typing import Callable

from torch import nn

from .simulated_annealing_pruner import SearchPruner

__all__ = ["NetAdaptPruner"]

_logger = logging.getLogger(__name__)


class NetAdaptPruner(SearchPruner):
    """NetAdapt: reach the overall ``sparsity`` by iterations that each prune about
    ``sparsity_per_iteration`` more of the selected layers' weights, all taken from **one** layer.

    Each iteration makes one candidate per layer (that layer pruned further by ``base_algo``, the
    layers pruned so far keeping their masks), short-term fine-tunes it with
    ``short_term_fine_tuner(model)`` and evaluates it; the best candidate, fine-tuned weights
    included, is the start of the next iteration. A candidate prunes at least one more filter (one
    more weight for ``level``) and always leaves one. The last iteration prunes only what is left
    to reach the target (a filter-granular layer may overshoot it by less than one filter).

    Args:
        model: the (pretrained) model to prune.
        config_list: ``[{'sparsity': overall, 'op_types': [...]|'op_names': [...]}]``.
        short_term_fine_tuner: ``short_term_fine_tuner(model)`` fine-tunes a masked candidate in place.
        evaluator: ``evaluator(model) -> float`` on the masked, fine-tuned candidate.
        optimize_mode: ``'maximize'`` or ``'minimize'`` the evaluator.
        base_algo: ``'level'``, ``'l1'``, ``'l2'`` or ``'fpgm'``: which weights a layer prunes.
        sparsity_per_iteration: fraction of all selected weights pruned per iteration.
        experiment_data_dir: where ``search_history.csv`` (iteration, layer, sparsity, performance,
            chosen), ``config_list.json`` and ``search_result.json`` go.
    """

    def __init__(self, model: nn.Module, config_list: list[dict], short_term_fine_tuner: Callable[[nn.Module], None],
                 evaluator: Callable[[nn.Module], float], optimize_mode: str = "maximize", base_algo: str = "l1",
                 sparsity_per_iteration: float = 0.05, experiment_data_dir: str = "./"):
        if not callable(short_term_fine_tuner):
            raise ValueError("NetAdaptPruner: short_term_fine_tuner must be a function short_term_fine_tuner(model)")
        if isinstance(sparsity_per_iteration, bool) or not isinstance(sparsity_per_iteration, (int, float)) \
                or not 0 < sparsity_per_iteration < 1:
            raise ValueError(f"NetAdaptPruner: sparsity_per_iteration must be in (0, 1), "
                             f"got {sparsity_per_iteration!r}")
        self._fine_tuner = short_term_fine_tuner
        self.sparsity_per_iteration = float(sparsity_per_iteration)
        super().__init__(model, config_list, evaluator, optimize_mode, base_algo, experiment_data_dir)

    def _next_sparsity(self, name: str, pruned_now: int, extra: float) -> tuple[float, int] | None:
        """Sparsity of layer ``name`` with about ``extra`` more weights pruned, and how many more it
        prunes (None: it cannot prune more)."""
        weight = self._origin_model.get_submodule(name).weight
        size = weight.numel()
        per_unit = size // weight.size(0) if self.base_algo != "level" else 1
        units = size // per_unit
        now = pruned_now // per_unit
        want = min(max(now + 1, math.ceil((pruned_now + extra) / per_unit - 1e-9)), units - 1)
        if want <= now:
            return None
        # a hair above want/units so that int(units * sparsity) == want despite float rounding
        return want / units + 1e-9, want * per_unit - pruned_now

    def compress(self) -> nn.Module:
        """Run the NetAdapt iterations; set the final masks and fine-tuned weights on the model and return it."""
        total = sum(self.layer_sizes.values())
        current_model = copy.deepcopy(self._origin_model)
        current_masks: dict = {}
        original_score = self.score(current_model)
        current_score = original_score
        history: list[dict] = []
        iteration = 0
        while self.actual_sparsity(current_masks) < self.target - 1e-9:
            iteration += 1
            done = self.actual_sparsity(current_masks)
            extra = min(self.sparsity_per_iteration, self.target - done) * total
            best = None
            rows = []
            options = {}
            for name in self.layer_names:
                pruned_now = int((current_masks[name]["weight"] == 0).sum()) if name in current_masks else 0
                option = self._next_sparsity(name, pruned_now, extra)
                if option is not None:
                    options[name] = option
            # as in NetAdapt, a candidate must free the whole step; only when no layer can, the
            # layers that can still free something compete
            full = {n: o for n, o in options.items() if o[1] >= extra - 1e-9}
            for name, (sparsity, _) in (full or options).items():
                trial = dict(self.sparsities, **{name: sparsity})
                candidate, masks, pruner = self.prune_copy(current_model, trial, current_masks)
                self._fine_tuner(candidate)
                score = self.score(candidate)
                if pruner is not None:
                    pruner._unwrap_model()  # a plain model again: the masks travel separately
                rows.append({"iteration": iteration, "layer": name, "sparsity": round(sparsity, 6),
                             "performance": self.performance(score), "chosen": False})
                _logger.info("NetAdapt iteration %d: %s at sparsity %.4f -> %s", iteration, name, sparsity,
                             self.performance(score))
                if best is None or score > best[0]:
                    best = (score, name, sparsity, candidate, masks, len(rows) - 1)
            if best is None:
                _logger.warning("NetAdaptPruner: no layer can be pruned further; stopping at overall sparsity %.4f "
                                "(target %.4f)", done, self.target)
                break
            current_score, name, sparsity, candidate, current_masks, row = best
            rows[row]["chosen"] = True
            history.extend(rows)
            self.sparsities[name] = sparsity
            current_model = candidate  # carry on from the fine-tuned weights
        self.history = history
        self.apply_result(current_model, current_masks)
        self.write_results(["iteration", "layer", "sparsity", "performance", "chosen"], history,
                           self.performance(original_score), self.performance(current_score), current_masks)
        return self.bound_model

