"""v1 pruners (``nni.algorithms.compression.pytorch.pruning``): one-shot (Level, L1Filter,
L2Filter, FPGM) and training-based (Slim, TaylorFOWeightFilter, ActivationAPoZRankFilter,
ActivationMeanRankFilter, AGP, ADMM), LotteryTicket, the search pruners and AMC."""
from .iterative_pruner import (
    ADMMPruner, ActivationAPoZRankFilterPruner, ActivationMeanRankFilterPruner, AGPPruner, IterativePruner,
    SlimPruner, TaylorFOWeightFilterPruner,
)
from .amc_pruner import AMCPruner
from .auto_compress_pruner import AutoCompressPruner
from .lottery_ticket import LotteryTicketPruner
from .net_adapt_pruner import NetAdaptPruner
from .one_shot_pruner import FPGMPruner, L1FilterPruner, L2FilterPruner, LevelPruner, OneshotPruner
from .sensitivity_pruner import SensitivityPruner
from .simulated_annealing_pruner import SimulatedAnnealingPruner
from .structured_pruning_masker import StructuredWeightMasker
from .transformer_pruner import TransformerHeadPruner
from .weight_masker import WeightMasker

__all__ = [
    "AMCPruner", "AutoCompressPruner", "NetAdaptPruner", "SimulatedAnnealingPruner", "SensitivityPruner",
    "ADMMPruner", "AGPPruner", "ActivationAPoZRankFilterPruner", "ActivationMeanRankFilterPruner", "FPGMPruner",
    "IterativePruner", "L1FilterPruner", "L2FilterPruner", "LevelPruner", "LotteryTicketPruner", "OneshotPruner",
    "SlimPruner", "StructuredWeightMasker", "TaylorFOWeightFilterPruner", "TransformerHeadPruner", "WeightMasker",
]
