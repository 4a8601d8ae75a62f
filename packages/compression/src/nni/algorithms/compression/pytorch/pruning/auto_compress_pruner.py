"""AutoCompress (v1): rounds of simulated-annealing allocation search and ADMM pruning."""
from __future__ import annotations

import copy
import logging
from typing import Callable

import torch
from torch import nn

from .iterative_pruner import ADMMPruner
from .simulated_annealing_pruner import SimulatedAnnealingPruner, _as_wrapper_masks

__all__ = ["AutoCompressPruner"]

_logger = logging.getLogger(__name__)


class AutoCompressPruner(SimulatedAnnealingPruner):
    """AutoCompress: ``num_iterations`` rounds that each prune the same fraction
    ``r = 1 - (1 - sparsity) ** (1 / num_iterations)`` of the weights still left, so the last round
    ends at the configured overall ``sparsity``. A round (1) searches how to split ``r`` over the
    layers by simulated annealing (candidates pruned by ``base_algo`` and scored by ``evaluator``),
    then (2) prunes to that split with :class:`ADMMPruner` (``admm_num_iterations`` rounds of
    ``admm_epochs_per_iteration`` epochs of ``trainer``), whose trained weights start the next round.

    What is pruned stays pruned: instead of physically shrinking the model between rounds (the
    docs' speedup step), every later round keeps the earlier masks and splits ``r`` over the
    weights left, which is what the next round of the sped-up model would see. ``dummy_input`` is
    the example input of :meth:`export_model`'s ONNX export and of a later ``ModelSpeedup``.

    Args:
        model, config_list, evaluator, optimize_mode, base_algo, start_temperature, stop_temperature,
            cool_down_rate, perturbation_magnitude, experiment_data_dir: as :class:`SimulatedAnnealingPruner`.
        trainer: ``trainer(model, optimizer, criterion, epoch)`` for ADMM's training subproblem.
        dummy_input: an example input of the model.
        criterion: the loss handed to the trainer; None means ``torch.nn.CrossEntropyLoss()``.
        num_iterations: AutoCompress rounds.
        admm_num_iterations, admm_epochs_per_iteration, row: the ADMM rounds, epochs per round and penalty.
        admm_training_epochs: the name the docs' usage example gives ``admm_epochs_per_iteration``.
    """

    def __init__(self, model: nn.Module, config_list: list[dict], trainer, evaluator: Callable[[nn.Module], float],
                 dummy_input, criterion=None, num_iterations: int = 3, optimize_mode: str = "maximize",
                 base_algo: str = "l1", start_temperature: float = 100, stop_temperature: float = 20,
                 cool_down_rate: float = 0.9, perturbation_magnitude: float = 0.35, admm_num_iterations: int = 30,
                 admm_epochs_per_iteration: int = 5, row: float = 0.0001, experiment_data_dir: str = "./",
                 admm_training_epochs: int | None = None):
        if not callable(trainer):
            raise ValueError("AutoCompressPruner: trainer must be a function "
                             "trainer(model, optimizer, criterion, epoch)")
        if dummy_input is None:
            raise ValueError("AutoCompressPruner: dummy_input is required (an example input of the model)")
        if admm_training_epochs is not None:
            admm_epochs_per_iteration = admm_training_epochs
        for name, value in (("num_iterations", num_iterations), ("admm_num_iterations", admm_num_iterations),
                            ("admm_epochs_per_iteration", admm_epochs_per_iteration)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"AutoCompressPruner: {name} must be an integer >= 1, got {value!r}")
        if isinstance(row, bool) or not isinstance(row, (int, float)) or row <= 0:
            raise ValueError(f"AutoCompressPruner: row must be a positive number, got {row!r}")
        self._trainer = trainer
        self._criterion = criterion if criterion is not None else nn.CrossEntropyLoss()
        self.dummy_input = dummy_input
        self.num_iterations = num_iterations
        self.admm_num_iterations = admm_num_iterations
        self.admm_epochs_per_iteration = admm_epochs_per_iteration
        self.row = float(row)
        super().__init__(model, config_list, evaluator, optimize_mode, base_algo, start_temperature,
                         stop_temperature, cool_down_rate, perturbation_magnitude, experiment_data_dir)

    def _admm(self, model: nn.Module, sparsities: dict[str, float], masks: dict) -> tuple[nn.Module, dict]:
        """ADMM-prune a copy of ``model`` to ``sparsities`` keeping ``masks``; returns it unwrapped and its masks."""
        pruned = copy.deepcopy(model)
        config_list = self.layer_config_list(sparsities)
        admm = ADMMPruner(pruned, config_list, self._trainer, self._criterion, num_iterations=self.admm_num_iterations,
                          epochs_per_iteration=self.admm_epochs_per_iteration, row=self.row, base_algo=self.base_algo)
        for wrapper in admm.get_modules_wrapper():
            if wrapper.name in masks:  # earlier rounds' pruned weights stay pruned while ADMM trains
                admm._set_masks(wrapper, _as_wrapper_masks(masks[wrapper.name]))
        admm.compress()
        new_masks = admm.get_masks()
        admm._unwrap_model()
        return pruned, new_masks

    def compress(self) -> nn.Module:
        """Run the rounds; set the final masks and weights on the model and return it."""
        per_round = 1 - (1 - self.target) ** (1 / self.num_iterations)
        current_model = copy.deepcopy(self._origin_model)
        masks: dict = {}
        original_score = self.score(current_model)
        score = original_score
        self.history = []
        for round_ in range(1, self.num_iterations + 1):
            # sparsity of what each layer has left -> absolute sparsity of the layer
            previous = dict(self.sparsities)
            left = {n: max(1, round(size * (1 - previous[n]))) for n, size in self.layer_sizes.items()}

            def absolute(alloc, previous=previous):
                return {n: min(1 - (1 - previous[n]) * (1 - alloc[n]), self.max_sparsity(n)) for n in alloc}

            def evaluate(alloc, model=current_model, masks=masks):
                candidate, _, _ = self.prune_copy(model, absolute(alloc), masks)
                return self.score(candidate), None

            best, _, _ = self.anneal(left, per_round, evaluate, round_=round_)
            self.sparsities = absolute(best)
            _logger.info("AutoCompress round %d: sparsities %s", round_, self.sparsities)
            current_model, masks = self._admm(current_model, self.sparsities, masks)
            score = self.score(self._masked(current_model, masks))
        self.apply_result(current_model, masks)
        self.write_results(["round", "temperature", "performance", "accepted", "sparsities"], self.history,
                           self.performance(original_score), self.performance(score), masks)
        return self.bound_model

    @staticmethod
    def _masked(model: nn.Module, masks: dict) -> nn.Module:
        """A copy of ``model`` with ``masks`` applied to its weights (for evaluation)."""
        masked = copy.deepcopy(model)
        with torch.no_grad():
            for name, entry in masks.items():
                module = masked.get_submodule(name)
                module.weight.mul_(entry["weight"])
                if entry.get("bias") is not None and module.bias is not None:
                    module.bias.mul_(entry["bias"])
        return masked

    def export_model(self, model_path: str, mask_path: str | None = None, onnx_path: str | None = None,
                     input_shape=None, device=None, dummy_input=None, opset_version: int | None = None) -> None:
        """As :meth:`Pruner.export_model`; the ONNX export uses the pruner's ``dummy_input`` by default."""
        if onnx_path is not None and dummy_input is None and input_shape is None:
            dummy_input = self.dummy_input
        super().export_model(model_path, mask_path, onnx_path, input_shape, device, dummy_input, opset_version)
