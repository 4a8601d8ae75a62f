"""Pruners that train the model to compute their masks (v1): the pruner's ``compress()`` calls
``trainer(model, optimizer, criterion, epoch)`` and computes masks from what it collected."""
from __future__ import annotations

import torch
from torch import nn

from ._masker_pruner import MASKERS, MaskerPruner, check_training_args, is_positive_int

__all__ = [
    "ADMMPruner", "AGPPruner", "ActivationAPoZRankFilterPruner", "ActivationMeanRankFilterPruner", "IterativePruner",
    "SlimPruner", "TaylorFOWeightFilterPruner",
]


class IterativePruner(MaskerPruner):
    """Prune while training: ``num_iterations`` rounds of ``epochs_per_iteration`` training epochs,
    masks recomputed at the end of each round.

    Args:
        model: model to prune.
        config_list: ``[{'sparsity': float, 'op_types'|'op_names': [...], 'exclude': bool}, ...]``.
        optimizer: the optimizer the trainer steps (hooked: masks are re-applied after each step).
        pruning_algorithm: see :data:`MASKERS`.
        trainer: ``trainer(model, optimizer, criterion, epoch)`` trains one epoch.
        criterion: the loss function handed to the trainer.
        num_iterations: mask-update rounds.
        epochs_per_iteration: training epochs per round.
        dependency_aware: prune the same channels in layers whose outputs are joined (needs ``dummy_input``).
        dummy_input: example input used to trace the channel dependencies.
        algo_kwargs: passed to the masker.
    """

    def __init__(self, model: nn.Module, config_list: list[dict], optimizer=None, pruning_algorithm: str = "slim",
                 trainer=None, criterion=None, num_iterations: int = 20, epochs_per_iteration: int = 5,
                 dependency_aware: bool = False, dummy_input=None, **algo_kwargs):
        owner = type(self).__name__
        check_training_args(owner, trainer, criterion, optimizer)
        for name, value in (("num_iterations", num_iterations), ("epochs_per_iteration", epochs_per_iteration)):
            if not is_positive_int(value):
                raise ValueError(f"{owner}: {name} must be an integer >= 1, got {value!r}")
        self._trainer = trainer
        self._criterion = criterion
        self.num_iterations = num_iterations
        self.epochs_per_iteration = epochs_per_iteration
        super().__init__(model, config_list, optimizer, pruning_algorithm, dependency_aware, dummy_input, **algo_kwargs)

    def _set_collecting(self, on: bool) -> None:
        for flag in ("collecting", "sparsifying"):
            if hasattr(self.masker, flag):
                setattr(self.masker, flag, on)

    def _train_round(self, first_epoch: int) -> None:
        if hasattr(self.masker, "reset_statistics"):
            self.masker.reset_statistics()
        self._set_collecting(True)
        try:
            for epoch in range(first_epoch, first_epoch + self.epochs_per_iteration):
                self._trainer(self.bound_model, self.optimizer, self._criterion, epoch)
        finally:
            self._set_collecting(False)

    def compress(self) -> nn.Module:
        """Train and prune for ``num_iterations`` rounds; return the wrapped, masked model."""
        for iteration in range(self.num_iterations):
            self._train_round(iteration * self.epochs_per_iteration)
            self.set_wrappers_attribute("if_calculated", False)
            self.update_mask()
        return self.bound_model


class SlimPruner(IterativePruner):
    """Network slimming on BatchNorm2d: train ``sparsifying_training_epochs`` epochs with an L1 penalty
    ``scale`` on the BN scaling factors, then prune the ``int(channels * sparsity)`` channels of
    smallest ``|gamma|`` in each configured layer (weight and bias of the channel)."""

    def __init__(self, model: nn.Module, config_list: list[dict], optimizer, trainer, criterion,
                 sparsifying_training_epochs: int = 10, scale: float = 0.0001, dependency_aware: bool = False,
                 dummy_input=None):
        super().__init__(model, config_list, optimizer, "slim", trainer, criterion, num_iterations=1,
                         epochs_per_iteration=sparsifying_training_epochs, dependency_aware=dependency_aware,
                         dummy_input=dummy_input, scale=scale)


class TaylorFOWeightFilterPruner(IterativePruner):
    """Conv2d filters of smallest first-order Taylor importance ``sum (g*w)^2``, accumulated over
    the first ``sparsifying_training_batches`` optimizer steps of one training epoch.
    ``global_sort=True`` ranks the filters of all layers together."""

    def __init__(self, model: nn.Module, config_list: list[dict], optimizer, trainer, criterion,
                 sparsifying_training_batches: int = 1, dependency_aware: bool = False, dummy_input=None,
                 global_sort: bool = False):
        if not is_positive_int(sparsifying_training_batches):
            raise ValueError(f"TaylorFOWeightFilterPruner: sparsifying_training_batches must be an integer >= 1, "
                             f"got {sparsifying_training_batches!r}")
        if global_sort and dependency_aware:
            raise ValueError("TaylorFOWeightFilterPruner: global_sort and dependency_aware cannot be combined")
        super().__init__(model, config_list, optimizer, "taylorfo", trainer, criterion, num_iterations=1,
                         epochs_per_iteration=1, dependency_aware=dependency_aware, dummy_input=dummy_input,
                         statistics_batch_num=sparsifying_training_batches, global_sort=global_sort)


class _ActivationRankFilterPruner(IterativePruner):
    _algorithm = ""

    def __init__(self, model: nn.Module, config_list: list[dict], optimizer, trainer, criterion,
                 activation: str = "relu", sparsifying_training_batches: int = 1, dependency_aware: bool = False,
                 dummy_input=None):
        if not is_positive_int(sparsifying_training_batches):
            raise ValueError(f"{type(self).__name__}: sparsifying_training_batches must be an integer >= 1, "
                             f"got {sparsifying_training_batches!r}")
        super().__init__(model, config_list, optimizer, self._algorithm, trainer, criterion, num_iterations=1,
                         epochs_per_iteration=1, dependency_aware=dependency_aware, dummy_input=dummy_input,
                         activation=activation, statistics_batch_num=sparsifying_training_batches)


class ActivationAPoZRankFilterPruner(_ActivationRankFilterPruner):
    """Conv2d filters whose activations (after ``activation``: ``relu`` or ``relu6``) are most often
    zero (highest APoZ), over the first ``sparsifying_training_batches`` forward passes of training."""

    _algorithm = "apoz"


class ActivationMeanRankFilterPruner(_ActivationRankFilterPruner):
    """Conv2d filters with the smallest mean activation (after ``activation``: ``relu`` or ``relu6``),
    over the first ``sparsifying_training_batches`` forward passes of training."""

    _algorithm = "mean_activation"


class AGPPruner(IterativePruner):
    """Automated gradual pruning: the sparsity grows over ``num_iterations`` rounds following
    ``s_t = s_f + (s_i - s_f) * (1 - t / n)^3`` with ``s_i = 0``, ``n = num_iterations``; the masks
    of round ``t`` (1..n) are computed at its end, so the final masks have exactly ``s_f``.

    Args:
        pruning_algorithm: ``level`` (default), ``slim``, ``l1``, ``l2``, ``fpgm``, ``taylorfo``,
            ``apoz`` or ``mean_activation``; the config's op types must suit it.
    """

    def __init__(self, model: nn.Module, config_list: list[dict], optimizer, trainer, criterion,
                 num_iterations: int = 10, epochs_per_iteration: int = 1, pruning_algorithm: str = "level"):
        if pruning_algorithm not in MASKERS:
            raise ValueError(f"AGPPruner: pruning_algorithm must be one of {sorted(MASKERS)}, got {pruning_algorithm!r}")
        self.now_epoch = 0
        super().__init__(model, config_list, optimizer, pruning_algorithm, trainer, criterion,
                         num_iterations=num_iterations, epochs_per_iteration=epochs_per_iteration)

    def compute_target_sparsity(self, config: dict) -> float:
        """The sparsity of round ``self.now_epoch`` for a layer configured with ``config``."""
        final = config["sparsity"]
        t = min(max(self.now_epoch, 0), self.num_iterations)
        return final + (0.0 - final) * (1 - t / self.num_iterations) ** 3

    def target_sparsity(self, wrapper) -> float:
        return self.compute_target_sparsity(wrapper.config)

    def update_epoch(self, epoch: int) -> None:
        """Move the schedule to round ``epoch`` and recompute every layer's masks."""
        self.now_epoch = epoch
        self.set_wrappers_attribute("if_calculated", False)
        self.update_mask()

    def compress(self):
        """Train ``num_iterations`` rounds; after round ``i`` the masks follow ``s_{i+1}``."""
        for iteration in range(self.num_iterations):
            self._train_round(iteration * self.epochs_per_iteration)
            self.update_epoch(iteration + 1)
        return self.bound_model


class ADMMPruner(MaskerPruner):
    """ADMM pruning: ``num_iterations`` rounds of (1) ``epochs_per_iteration`` epochs of training with
    the ADMM penalty ``row / 2 * ||W - Z + U||^2`` and (2) ``Z = project(W + U)`` onto the configured
    sparsity (by ``base_algo``), ``U += W - Z``; the final masks come from ``base_algo`` on the
    trained weights.

    The trainer is called as ``trainer(model, optimizer, criterion, epoch)`` with an optimizer the
    pruner creates (Adam, lr 1e-3, weight decay 5e-5: the docs' signature has no optimizer argument).

    Args:
        base_algo: ``l1`` (default), ``l2``, ``fpgm`` (Conv2d filters) or ``level`` (single weights).
    """

    def __init__(self, model: nn.Module, config_list: list[dict], trainer, criterion=None, num_iterations: int = 30,
                 epochs_per_iteration: int = 5, row: float = 0.0001, base_algo: str = "l1"):
        if base_algo not in ("level", "l1", "l2", "fpgm"):
            raise ValueError(f"ADMMPruner: base_algo must be one of ['fpgm', 'l1', 'l2', 'level'], got {base_algo!r}")
        if criterion is None:
            criterion = nn.CrossEntropyLoss()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=5e-5)
        check_training_args("ADMMPruner", trainer, criterion, optimizer)
        for name, value in (("num_iterations", num_iterations), ("epochs_per_iteration", epochs_per_iteration)):
            if not is_positive_int(value):
                raise ValueError(f"ADMMPruner: {name} must be an integer >= 1, got {value!r}")
        if isinstance(row, bool) or not isinstance(row, (int, float)) or row <= 0:
            raise ValueError(f"ADMMPruner: row must be a positive number, got {row!r}")
        self._trainer = trainer
        self._criterion = criterion
        self.num_iterations = num_iterations
        self.epochs_per_iteration = epochs_per_iteration
        self.row = float(row)
        super().__init__(model, config_list, optimizer, base_algo)
        self._admm_active = False
        self.Z: dict[str, torch.Tensor] = {}
        self.U: dict[str, torch.Tensor] = {}
        self.patch_optimizer_before(self._add_admm_gradient)

    def _add_admm_gradient(self) -> None:
        if not self._admm_active:
            return
        for wrapper in self.get_modules_wrapper():
            weight = wrapper.module.weight
            if weight.grad is not None:
                weight.grad.data.add_(self.row * (weight.data - self.Z[wrapper.name] + self.U[wrapper.name]))

    def _project(self, wrapper, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` with all but the weights ``base_algo`` keeps at the layer's sparsity zeroed."""
        weight = wrapper.module.weight
        original = weight.data
        weight.data = tensor  # the masker ranks whatever the layer's weight is: lend it the tensor
        try:
            masks = self.masker.calc_mask(sparsity=wrapper.config["sparsity"], wrapper=wrapper)
        finally:
            weight.data = original
        return tensor * masks["weight_mask"]

    def compress(self) -> nn.Module:
        """Run the ADMM rounds, then compute the masks; return the wrapped, masked model."""
        wrappers = self.get_modules_wrapper()
        with torch.no_grad():
            for wrapper in wrappers:
                weight = wrapper.module.weight.data
                self.Z[wrapper.name] = self._project(wrapper, weight.clone())
                self.U[wrapper.name] = torch.zeros_like(weight)
        for iteration in range(self.num_iterations):
            self._admm_active = True
            try:
                for epoch in range(self.epochs_per_iteration):
                    self._trainer(self.bound_model, self.optimizer, self._criterion,
                                  iteration * self.epochs_per_iteration + epoch)
            finally:
                self._admm_active = False
            with torch.no_grad():
                for wrapper in wrappers:
                    weight = wrapper.module.weight.data
                    self.Z[wrapper.name] = self._project(wrapper, weight + self.U[wrapper.name])
                    self.U[wrapper.name] = self.U[wrapper.name] + weight - self.Z[wrapper.name]
        self.set_wrappers_attribute("if_calculated", False)
        self.update_mask()
        return self.bound_model
