"""Make channel masks consistent with the model's channel and group dependencies.

``fix_mask_conflict`` runs :class:`GroupMaskConflict` (every filter group of a grouped conv prunes
the same number of filters) and then :class:`ChannelMaskConflict` (layers of one
:class:`~nni.compression.pytorch.utils.shape_dependency.ChannelDependency` set keep the same
channels: a channel stays if *any* layer of the set keeps it, so no kept channel is lost).
Call it before :class:`~nni.compression.pytorch.ModelSpeedup`.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import fx, nn

from .shape_dependency import ChannelDependency, GroupDependency, not_safe_to_prune

__all__ = ["ChannelMaskConflict", "GroupMaskConflict", "fix_mask_conflict", "not_safe_to_prune"]


def _load(masks: Any) -> dict:
    from ..speedup.compressor import load_masks

    return copy.deepcopy(load_masks(masks))


def _kept(mask: torch.Tensor) -> torch.Tensor:
    return (mask.reshape(mask.shape[0], -1) != 0).any(1)


def _restore(entry: dict, channels: torch.Tensor) -> None:
    """Sets the mask of the given output channels back to 1 (weight and bias)."""
    entry["weight"][channels] = 1
    if entry.get("bias") is not None:
        entry["bias"][channels] = 1


class _MaskConflict:
    def __init__(self, masks: Any, model: nn.Module, dummy_input: Any, traced: fx.GraphModule | None = None):
        self.masks = _load(masks)
        self.model = model
        self.dummy_input = dummy_input
        self.traced = traced


class GroupMaskConflict(_MaskConflict):
    """Makes every filter group of a grouped conv prune the same number of filters.

    Groups that pruned more than the least-pruned group get back their filters with the largest
    L1 norm, so the result keeps the most important filters.
    """

    def fix_mask(self) -> dict:
        """Returns the fixed masks."""
        depend = GroupDependency(self.model, self.dummy_input, self.traced).dependency
        modules = dict(self.model.named_modules())
        for name, groups in depend.items():
            entry = self.masks.get(name)
            if entry is None or groups <= 1:
                continue
            kept = _kept(entry["weight"])
            if kept.numel() % groups:
                continue
            per_group = kept.reshape(groups, -1)
            target = int(per_group.sum(1).max())
            norms = modules[name].weight.detach().abs().reshape(kept.numel(), -1).sum(1).reshape(groups, -1)
            for k in range(groups):
                missing = target - int(per_group[k].sum())
                if missing <= 0:
                    continue
                candidates = torch.nonzero(~per_group[k]).flatten()
                order = candidates[torch.argsort(norms[k][candidates], descending=True, stable=True)]
                _restore(entry, order[:missing] + k * per_group.shape[1])
        return self.masks


class ChannelMaskConflict(_MaskConflict):
    """Aligns structured (filter) masks within each channel-dependency set.

    A channel is kept in every layer of a set if any layer of the set keeps it; a layer of the
    set without a mask keeps all its channels, so the whole set keeps all. Layers of a set with
    different channel counts (joined only by ``cat``) are aligned among equal-sized layers only.
    """

    def fix_mask(self) -> dict:
        """Returns the fixed masks."""
        modules = dict(self.model.named_modules())
        for members in ChannelDependency(self.model, self.dummy_input, self.traced).dependency_sets:
            by_size: dict[int, list[str]] = {}
            for name in members:
                by_size.setdefault(modules[name].weight.shape[0], []).append(name)
            for size, names in by_size.items():
                if len(names) < 2:
                    continue
                union = torch.zeros(size, dtype=torch.bool)
                for name in names:
                    union |= _kept(self.masks[name]["weight"]) if name in self.masks else torch.ones(size, dtype=torch.bool)
                for name in names:
                    if name in self.masks:
                        _restore(self.masks[name], union & ~_kept(self.masks[name]["weight"]))
        return self.masks


def fix_mask_conflict(masks: Any, model: nn.Module, dummy_input: Any, traced: fx.GraphModule | None = None) -> dict:
    """Fixes group then channel mask conflicts; ``masks`` is a mask dict or a path saved with torch.save.

    Returns:
        A new mask dict (the input is not modified).
    """
    masks = GroupMaskConflict(masks, model, dummy_input, traced).fix_mask()
    return ChannelMaskConflict(masks, model, dummy_input, traced).fix_mask()
