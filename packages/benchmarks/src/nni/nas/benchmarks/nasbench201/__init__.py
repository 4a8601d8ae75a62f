"""NAS-Bench-201: 15,625 cells (4 nodes, 6 edges, 5 operators) trained on CIFAR-10, CIFAR-100 and
ImageNet16-120 for 12 and 200 epochs.

The database ``nasbench201.db`` is made by ``python -m nni.nas.benchmarks.nasbench201.db_gen``
from the official ``NAS-Bench-201-v1_1-096897.pth`` (or v1_0) release.
"""
from .constants import AVG_POOL_3X3, CONV_1X1, CONV_3X3, NONE, SKIP_CONNECT
from .model import Nb201IntermediateStats, Nb201TrialConfig, Nb201TrialStats
from .query import query_nb201_trial_stats

__all__ = ["query_nb201_trial_stats", "Nb201TrialConfig", "Nb201TrialStats", "Nb201IntermediateStats",
           "NONE", "SKIP_CONNECT", "CONV_1X1", "CONV_3X3", "AVG_POOL_3X3"]
