"""NDS (On Network Design Spaces for Visual Recognition): trial statistics of over 100,000
configurations of NAS cells (NASNet, Amoeba, PNAS, ENAS, DARTS), ResNet, ResNeXt and vanilla
networks on CIFAR-10 and ImageNet, all in one database.

The database ``nds.db`` is made by ``python -m nni.nas.benchmarks.nds.db_gen`` from the official
NDS JSON files.
"""
from .constants import (AVG_POOL_3X3, CONV_1X1, CONV_3X1_1X3, CONV_3X3, CONV_7X1_1X7, DIL_CONV_3X3, DIL_CONV_5X5,
                        DIL_SEP_CONV_3X3, MAX_POOL_3X3, MAX_POOL_5X5, MAX_POOL_7X7, NONE, SEP_CONV_3X3, SEP_CONV_5X5,
                        SEP_CONV_7X7, SKIP_CONNECT)
from .model import NdsIntermediateStats, NdsTrialConfig, NdsTrialStats
from .query import query_nds_trial_stats

__all__ = ["query_nds_trial_stats", "NdsTrialConfig", "NdsTrialStats", "NdsIntermediateStats",
           "NONE", "SKIP_CONNECT", "AVG_POOL_3X3", "MAX_POOL_3X3", "MAX_POOL_5X5", "MAX_POOL_7X7", "CONV_1X1",
           "CONV_3X3", "CONV_3X1_1X3", "CONV_7X1_1X7", "DIL_CONV_3X3", "DIL_CONV_5X5", "SEP_CONV_3X3",
           "SEP_CONV_5X5", "SEP_CONV_7X7", "DIL_SEP_CONV_3X3"]
