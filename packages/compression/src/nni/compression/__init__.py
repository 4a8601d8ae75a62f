"""Model compression: pruners, speedup and analysis utilities (PyTorch).

The framework lives in :mod:`nni.compression.pytorch` (it imports torch, this module does not);
the pruning algorithms in :mod:`nni.algorithms.compression.pytorch.pruning` (v1) and
:mod:`nni.algorithms.compression.v2.pytorch.pruning` (v2).
"""
