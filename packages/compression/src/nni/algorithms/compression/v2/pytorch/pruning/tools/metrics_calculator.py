"""Metrics calculators: data → importance per block (higher = more important, kept)."""
from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import Tensor


class MetricsCalculator:
    """Base: ``calculate_metrics(data) -> {layer: Tensor}``; ``dim=None`` gives one metric per element,
    ``dim=0`` one per block of the first weight dimension (filters, Linear rows, BN channels)."""

    def __init__(self, dim: Optional[int] = None):
        self.dim = dim

    def calculate_metrics(self, data: Dict) -> Dict[str, Tensor]:
        return {name: self._metric(value) for name, value in data.items()}

    def _metric(self, value) -> Tensor:
        raise TypeError(f'{type(self).__name__} must implement _metric()')


class NormMetricsCalculator(MetricsCalculator):
    """p-norm of each block (``dim=None``: absolute value of each element)."""

    def __init__(self, p: float = 1, dim: Optional[int] = 0):
        super().__init__(dim)
        self.p = p

    def _metric(self, value: Tensor) -> Tensor:
        if self.dim is None:
            return value.abs()
        return value.reshape(value.shape[0], -1).norm(p=self.p, dim=1)


class DistMetricsCalculator(MetricsCalculator):
    """FPGM: sum of the p-distances from each block to all other blocks of the layer; the blocks
    nearest the geometric median (smallest sum) are the most replaceable."""

    def __init__(self, p: float = 2, dim: int = 0):
        super().__init__(dim)
        self.p = p

    def _metric(self, value: Tensor) -> Tensor:
        flat = value.reshape(value.shape[0], -1).float()
        return torch.cdist(flat.unsqueeze(0), flat.unsqueeze(0), p=self.p)[0].sum(dim=1)


class APoZRankMetricsCalculator(MetricsCalculator):
    """1 − APoZ (average percentage of zeros): channels that are mostly zero are pruned first."""

    def __init__(self):
        super().__init__(0)

    def _metric(self, value: Dict) -> Tensor:
        return 1 - value['zeros'] / max(value['count'], 1)


class MeanRankMetricsCalculator(MetricsCalculator):
    """Mean activation per channel."""

    def __init__(self):
        super().__init__(0)

    def _metric(self, value: Dict) -> Tensor:
        return value['sum'] / max(value['count'], 1)
