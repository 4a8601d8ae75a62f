"""Iterative pruners: a PruningScheduler with a basic pruner chosen by name and a scheduled task generator."""
from __future__ import annotations

from typing import Callable, Dict, List, Optional

from torch import Tensor, nn

from .basic_pruner import (ActivationAPoZRankPruner, ActivationMeanRankPruner, ADMMPruner, FPGMPruner, L1NormPruner,
                           L2NormPruner, LevelPruner, Pruner, SlimPruner, TaylorFOWeightPruner)
from .basic_scheduler import PruningScheduler
from .tools.task_generator import (AGPTaskGenerator, LinearTaskGenerator, LotteryTicketTaskGenerator,
                                   SimulatedAnnealingTaskGenerator)

PRUNER_DICT = {
    'level': LevelPruner, 'l1': L1NormPruner, 'l2': L2NormPruner, 'fpgm': FPGMPruner, 'slim': SlimPruner,
    'apoz': ActivationAPoZRankPruner, 'mean_activation': ActivationMeanRankPruner, 'taylorfo': TaylorFOWeightPruner,
    'admm': ADMMPruner,
}


def _make_pruner(pruning_algorithm: str, pruning_params: Optional[dict]) -> Pruner:
    if pruning_algorithm not in PRUNER_DICT:
        raise ValueError(f'pruning_algorithm: {pruning_algorithm!r} is not supported; allowed: {", ".join(PRUNER_DICT)}')
    cls = PRUNER_DICT[pruning_algorithm]
    try:
        return cls(None, None, **(pruning_params or {}))
    except TypeError as err:
        raise ValueError(f'pruning_params: wrong parameters for {cls.__name__} ({err})') from None


def _validate(model, config_list):
    if not isinstance(model, nn.Module):
        raise ValueError(f'model: must be a torch.nn.Module, got {type(model).__name__}')
    if not isinstance(config_list, list):
        raise ValueError(f'config_list: must be a list of dicts, got {type(config_list).__name__}')


class _FunctionBasedPruner(PruningScheduler):
    _generator = None

    def __init__(self, model: nn.Module, config_list: List[Dict], pruning_algorithm: str, total_iteration: int,
                 log_dir: str = '.', keep_intermediate_result: bool = False,
                 finetuner: Optional[Callable[[nn.Module], None]] = None, speed_up: bool = False,
                 dummy_input: Optional[Tensor] = None, evaluator: Optional[Callable[[nn.Module], float]] = None,
                 pruning_params: dict = {}, reset_weight: bool = False):
        _validate(model, config_list)
        pruner = _make_pruner(pruning_algorithm, pruning_params)
        # Validate the user's config against this pruner now, not at the first iteration.
        pruner.reset(model, config_list)
        pruner._unwrap_model()
        generator = self._generator(total_iteration, model, config_list, log_dir=log_dir,
                                    keep_intermediate_result=keep_intermediate_result)
        super().__init__(pruner, generator, finetuner, speed_up, dummy_input, evaluator, reset_weight)


class LinearPruner(_FunctionBasedPruner):
    """Iterative pruning with sparsity rising linearly: ``s_k = s_f * k / total_iteration``."""
    _generator = LinearTaskGenerator

    def __init__(self, model: nn.Module, config_list: List[Dict], pruning_algorithm: str, total_iteration: int,
                 log_dir: str = '.', keep_intermediate_result: bool = False,
                 finetuner: Optional[Callable[[nn.Module], None]] = None, speed_up: bool = False,
                 dummy_input: Optional[Tensor] = None, evaluator: Optional[Callable[[nn.Module], float]] = None,
                 pruning_params: dict = {}):
        super().__init__(model, config_list, pruning_algorithm, total_iteration, log_dir, keep_intermediate_result,
                         finetuner, speed_up, dummy_input, evaluator, pruning_params)


class AGPPruner(_FunctionBasedPruner):
    """Automated gradual pruning: ``s_k = s_f * (1 - (1 - k / total_iteration) ** 3)``."""
    _generator = AGPTaskGenerator

    def __init__(self, model: nn.Module, config_list: List[Dict], pruning_algorithm: str, total_iteration: int,
                 log_dir: str = '.', keep_intermediate_result: bool = False,
                 finetuner: Optional[Callable[[nn.Module], None]] = None, speed_up: bool = False,
                 dummy_input: Optional[Tensor] = None, evaluator: Optional[Callable[[nn.Module], float]] = None,
                 pruning_params: dict = {}):
        super().__init__(model, config_list, pruning_algorithm, total_iteration, log_dir, keep_intermediate_result,
                         finetuner, speed_up, dummy_input, evaluator, pruning_params)


class LotteryTicketPruner(_FunctionBasedPruner):
    """Lottery ticket: each iteration prunes ``1 - (1 - P) ** (1 / n)`` of the survivors and (``reset_weight``)
    rewinds the surviving weights to their initial values before fine-tuning."""
    _generator = LotteryTicketTaskGenerator

    def __init__(self, model: nn.Module, config_list: List[Dict], pruning_algorithm: str, total_iteration: int,
                 log_dir: str = '.', keep_intermediate_result: bool = False,
                 finetuner: Optional[Callable[[nn.Module], None]] = None, speed_up: bool = False,
                 dummy_input: Optional[Tensor] = None, evaluator: Optional[Callable[[nn.Module], float]] = None,
                 reset_weight: bool = True, pruning_params: dict = {}):
        super().__init__(model, config_list, pruning_algorithm, total_iteration, log_dir, keep_intermediate_result,
                         finetuner, speed_up, dummy_input, evaluator, pruning_params, reset_weight)


class SimulatedAnnealingPruner(PruningScheduler):
    """Keeps the configured overall sparsity and searches its per-layer split by simulated annealing on
    ``evaluator(model)`` (higher is better); ``get_best_result()`` gives the best allocation found."""

    def __init__(self, model: nn.Module, config_list: List[Dict], pruning_algorithm: str,
                 evaluator: Callable[[nn.Module], float], start_temperature: float = 100, stop_temperature: float = 20,
                 cool_down_rate: float = 0.9, perturbation_magnitude: float = 0.35, log_dir: str = '.',
                 keep_intermediate_result: bool = False, finetuner: Optional[Callable[[nn.Module], None]] = None,
                 speed_up: bool = False, dummy_input: Optional[Tensor] = None, pruning_params: dict = {}):
        _validate(model, config_list)
        if not callable(evaluator):
            raise ValueError('evaluator: SimulatedAnnealingPruner needs a callable evaluator(model) -> float')
        pruner = _make_pruner(pruning_algorithm, pruning_params)
        pruner.reset(model, config_list)
        pruner._unwrap_model()
        # The pruner's normalised list: 'default' already expanded to this pruner's op types.
        generator = SimulatedAnnealingTaskGenerator(model, pruner.config_list, start_temperature=start_temperature,
                                                    stop_temperature=stop_temperature, cool_down_rate=cool_down_rate,
                                                    perturbation_magnitude=perturbation_magnitude, log_dir=log_dir,
                                                    keep_intermediate_result=keep_intermediate_result)
        super().__init__(pruner, generator, finetuner, speed_up, dummy_input, evaluator)
