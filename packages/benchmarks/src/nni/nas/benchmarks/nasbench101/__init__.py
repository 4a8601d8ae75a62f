"""NAS-Bench-101: 423,624 unique cells (DAGs of at most 7 vertices and 9 edges over
conv3x3-bn-relu, conv1x1-bn-relu and maxpool3x3) trained on CIFAR-10 for 4, 12, 36 and 108 epochs,
three times each.

The database ``nasbench101.db`` is made by ``python -m nni.nas.benchmarks.nasbench101.db_gen``
from the official ``nasbench_full.tfrecord`` (or ``nasbench_only108.tfrecord``).
"""
from . import graph_util
from .constants import CONV1X1_BN_RELU, CONV3X3_BN_RELU, INPUT, MAXPOOL3X3, OUTPUT
from .model import Nb101IntermediateStats, Nb101TrialConfig, Nb101TrialStats
from .query import query_nb101_trial_stats

__all__ = ["query_nb101_trial_stats", "Nb101TrialConfig", "Nb101TrialStats", "Nb101IntermediateStats", "graph_util",
           "INPUT", "OUTPUT", "CONV3X3_BN_RELU", "CONV1X1_BN_RELU", "MAXPOOL3X3"]
