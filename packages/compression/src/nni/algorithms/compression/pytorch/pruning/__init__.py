"""v1 pruners (``nni.algorithms.compression.pytorch.pruning``): one-shot (Level, L1Filter,
L2Filter, FPGM) and training-based (Slim, TaylorFOWeightFilter, ActivationAPoZRankFilter,
ActivationMeanRankFilter, AGP, ADMM) and LotteryTicket."""
from .iterative_pruner import (
    ADMMPruner, ActivationAPoZRankFilterPruner, ActivationMeanRankFilterPruner, AGPPruner, IterativePruner,
    SlimPruner, TaylorFOWeightFilterPruner,
)
from .lottery_ticket import LotteryTicketPruner
from .one_shot_pruner import FPGMPruner, L1FilterPruner, L2FilterPruner, LevelPruner, OneshotPruner
from .structured_pruning_masker import StructuredWeightMasker
from .weight_masker import WeightMasker

__all__ = [
    "ADMMPruner", "AGPPruner", "ActivationAPoZRankFilterPruner", "ActivationMeanRankFilterPruner", "FPGMPruner",
    "IterativePruner", "L1FilterPruner", "L2FilterPruner", "LevelPruner", "LotteryTicketPruner", "OneshotPruner",
    "SlimPruner", "StructuredWeightMasker", "TaylorFOWeightFilterPruner", "WeightMasker",
]
