"""Lottery ticket pruning (v1): iterative magnitude pruning with weights rewound to their
initial values at the start of every round."""
from __future__ import annotations

import copy

from torch import nn

from nni.compression.pytorch.compressor import Pruner
from nni.compression.pytorch.utils.config_validation import ConfigListError

from .weight_masker import LevelPrunerMasker

__all__ = ["LotteryTicketPruner"]


class LotteryTicketPruner(Pruner):
    """Prune ``sparsity`` over ``prune_iterations`` rounds, each pruning ``1 - (1 - P)^(1/n)`` of the
    weights that survived the previous one (smallest magnitude first); at the start of each round the
    surviving weights go back to their initial values, and the optimizer / lr scheduler states too.

    Usage::

        pruner = LotteryTicketPruner(model, [{'prune_iterations': 5, 'sparsity': 0.8, 'op_types': ['default']}],
                                     optimizer)
        pruner.compress()
        for _ in pruner.get_prune_iterations():   # prune_iterations + 1 rounds: the first is unpruned
            pruner.prune_iteration_start()
            train(model)

    Args:
        model: model to prune.
        config_list: entries with ``sparsity`` (final) and ``prune_iterations`` (the same in all entries).
        optimizer: reset to its initial state each round (when ``reset_weights``).
        lr_scheduler: likewise.
        reset_weights: rewind weights, optimizer and lr scheduler at the start of each round.
    """

    def __init__(self, model: nn.Module, config_list: list[dict], optimizer=None, lr_scheduler=None,
                 reset_weights: bool = True):
        super().__init__(model, config_list, optimizer)
        self.lr_scheduler = lr_scheduler
        self.reset_weights = reset_weights
        self.masker = LevelPrunerMasker(model, self)
        iterations = {c["prune_iterations"] for c in self.config_list if not c.get("exclude")}
        self.prune_iterations = iterations.pop() if iterations else 0
        self.curr_prune_iteration: int | None = None
        # theta_0: the state every round rewinds to
        self._initial_model_state = copy.deepcopy(self.bound_model.state_dict())
        self._initial_optimizer_state = copy.deepcopy(optimizer.state_dict()) if optimizer is not None else None
        self._initial_scheduler_state = (copy.deepcopy(lr_scheduler.state_dict()) if lr_scheduler is not None
                                         else None)

    def validate_config(self, model, config_list):
        """Each entry needs ``sparsity`` and ``prune_iterations``; all entries share one iteration count."""
        canonical = super().validate_config(model, config_list)
        iterations = set()
        for i, entry in enumerate(canonical):
            if entry.get("exclude"):
                continue
            for key in ("sparsity", "prune_iterations"):
                if key not in entry:
                    raise ConfigListError(f"config_list[{i}] needs {key!r} (LotteryTicketPruner), or 'exclude': True")
            for key in ("sparsity_per_layer", "total_sparsity", "max_sparsity_per_layer", "rho"):
                if key in entry:
                    raise ConfigListError(f"config_list[{i}] has key {key!r} that LotteryTicketPruner does not use; "
                                          f"it takes 'sparsity' and 'prune_iterations'")
            iterations.add(entry["prune_iterations"])
            if len(iterations) > 1:
                raise ConfigListError(f"config_list[{i}]['prune_iterations'] is {entry['prune_iterations']}, but an "
                                      f"earlier entry has {min(iterations - {entry['prune_iterations']})}; all entries "
                                      f"run in the same rounds, so they must use the same prune_iterations")
        return canonical

    def calc_mask(self, wrapper, **kwargs):
        """None: the masks are set by :meth:`prune_iteration_start`."""
        return None

    def get_prune_iterations(self) -> range:
        """``range(prune_iterations + 1)``: the first round trains the unpruned model."""
        return range(self.prune_iterations + 1)

    def round_sparsity(self, config: dict, iteration: int) -> float:
        """Sparsity after ``iteration`` pruning rounds: ``1 - (1 - P)^(iteration / n)``."""
        final, n = config["sparsity"], config["prune_iterations"]
        if iteration >= n:
            return final
        return 1 - (1 - final) ** (iteration / n)

    def prune_iteration_start(self) -> None:
        """Start the next round: prune (from the second round on), then rewind weights and states."""
        if self.curr_prune_iteration is None:
            self.curr_prune_iteration = 0
        else:
            self.curr_prune_iteration += 1
        if self.curr_prune_iteration > self.prune_iterations:
            raise RuntimeError(f"LotteryTicketPruner: prune_iteration_start() called more than "
                               f"{self.prune_iterations + 1} times (see get_prune_iterations())")
        if self.curr_prune_iteration > 0:
            for wrapper in self.get_modules_wrapper():
                sparsity = self.round_sparsity(wrapper.config, self.curr_prune_iteration)
                masks = self.masker.calc_mask(sparsity, wrapper)
                # a weight pruned in an earlier round stays pruned
                masks["weight_mask"] = masks["weight_mask"] * wrapper.weight_mask
                self._set_masks(wrapper, masks)
        if self.reset_weights:
            self._rewind()

    def _rewind(self) -> None:
        masks = {f"{w.name}.{key}": getattr(w, key).clone() for w in self.get_modules_wrapper()
                 for key in ("weight_mask", "bias_mask") if getattr(w, key) is not None}
        state = dict(self._initial_model_state)
        state.update(masks)
        self.bound_model.load_state_dict(state)
        self._apply_all_masks()
        if self.optimizer is not None:
            self.optimizer.load_state_dict(copy.deepcopy(self._initial_optimizer_state))
        if self.lr_scheduler is not None:
            self.lr_scheduler.load_state_dict(copy.deepcopy(self._initial_scheduler_state))
