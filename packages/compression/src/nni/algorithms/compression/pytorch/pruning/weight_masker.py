"""Weight maskers: the part of a pruner that turns a layer and a sparsity into masks."""
from __future__ import annotations

import abc

import torch
from torch import nn

__all__ = ["LevelPrunerMasker", "WeightMasker"]


class WeightMasker(abc.ABC):
    """Base class of maskers.

    Args:
        model: the model being pruned.
        pruner: the :class:`~nni.compression.pytorch.compressor.Pruner` that uses this masker.
    """

    def __init__(self, model: nn.Module, pruner, **kwargs):
        self.model = model
        self.pruner = pruner

    @abc.abstractmethod
    def calc_mask(self, sparsity: float, wrapper, wrapper_idx: int | None = None) -> dict | None:
        """Masks for ``wrapper`` at ``sparsity`` (preserved ratio ``1 - sparsity``):
        ``{'weight_mask': tensor[, 'bias_mask': tensor]}``, or None when it cannot be computed yet."""


class LevelPrunerMasker(WeightMasker):
    """Fine-grained: zero the ``int(numel * sparsity)`` weights of smallest magnitude."""

    def calc_mask(self, sparsity: float, wrapper, wrapper_idx: int | None = None) -> dict:
        weight = wrapper.module.weight.data * wrapper.weight_mask
        mask = torch.ones_like(weight)
        num_prune = int(weight.numel() * sparsity)
        if num_prune > 0:
            # a stable sort makes ties (e.g. already-pruned zeros) resolve the same way every time
            order = torch.argsort(weight.abs().flatten(), stable=True)
            mask.view(-1)[order[:num_prune]] = 0
        return {"weight_mask": mask}
