"""Pruning v2: one-shot pruners (``compress()`` → ``(model, masks)``), the pruning scheduler and iterative pruners.

Example::

    from nni.algorithms.compression.v2.pytorch.pruning import L1NormPruner
    masked_model, masks = L1NormPruner(model, [{'sparsity': 0.5, 'op_types': ['Conv2d']}]).compress()
"""
from .basic_pruner import (ActivationAPoZRankPruner, ActivationMeanRankPruner, ADMMPruner, FPGMPruner, L1NormPruner,
                           L2NormPruner, LevelPruner, Pruner, PrunerModuleWrapper, SlimPruner, TaylorFOWeightPruner)
from .basic_scheduler import PruningScheduler
from .iterative_pruner import AGPPruner, LinearPruner, LotteryTicketPruner, SimulatedAnnealingPruner

__all__ = [
    'Pruner', 'PrunerModuleWrapper', 'LevelPruner', 'L1NormPruner', 'L2NormPruner', 'FPGMPruner', 'SlimPruner',
    'ActivationAPoZRankPruner', 'ActivationMeanRankPruner', 'TaylorFOWeightPruner', 'ADMMPruner',
    'PruningScheduler', 'LinearPruner', 'AGPPruner', 'LotteryTicketPruner', 'SimulatedAnnealingPruner',
]
