"""Local training service: runs trials as processes on this machine (``platform: local``)."""
from __future__ import annotations

from .gpu import GpuInfo, GpuInventory, GpuScheduler, parse_gpu_indices
from .service import LocalTrainingService

__all__ = ["GpuInfo", "GpuInventory", "GpuScheduler", "LocalTrainingService", "parse_gpu_indices"]
