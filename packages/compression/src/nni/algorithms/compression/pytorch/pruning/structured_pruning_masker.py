"""Structured maskers: prune whole output channels (conv filters with their biases, BN channels).

Every masker ranks the channels of a layer by an importance score (:meth:`get_channel_sum`) and
masks the ``int(n * sparsity)`` least important ones (at least one channel is always kept).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .weight_masker import WeightMasker

__all__ = [
    "ActivationAPoZRankFilterPrunerMasker", "ActivationMeanRankFilterPrunerMasker", "FPGMPrunerMasker",
    "L1FilterPrunerMasker", "L2FilterPrunerMasker", "SlimPrunerMasker", "StructuredWeightMasker",
    "TaylorFOWeightFilterPrunerMasker",
]


class StructuredWeightMasker(WeightMasker):
    """Base class of the maskers that prune output channels.

    Args:
        model: the model being pruned.
        pruner: the pruner using this masker.
        preserve_round: the kept channel count is rounded up to a multiple of this (32 channels at
            sparsity 0.2: 1 → 6 pruned, 26 kept; 4 → 28 kept, 4 pruned).
        dependency_aware: ``calc_mask`` receives lists (one dependency set) and prunes common channels.
        global_sort: the pruner ranks channels across layers (see the pruner).
    """

    def __init__(self, model: nn.Module, pruner, preserve_round: int = 1, dependency_aware: bool = False,
                 global_sort: bool = False):
        super().__init__(model, pruner)
        if isinstance(preserve_round, bool) or not isinstance(preserve_round, int) or preserve_round < 1:
            raise ValueError(f"preserve_round must be an integer >= 1, got {preserve_round!r}")
        self.preserve_round = preserve_round
        self.dependency_aware = dependency_aware
        self.global_sort = global_sort
        #: dependency-aware mode: layer name -> number of groups its filters are split into
        #: (GroupDependency); such a layer prunes the same number of filters in every group
        self.group_dependency: dict[str, int] = {}

    # -- what subclasses provide ---------------------------------------------------------------
    def get_channel_sum(self, wrapper, wrapper_idx: int | None) -> torch.Tensor | None:
        """Importance of each output channel (shape ``[n]``, larger = more important); None when the
        statistics it needs have not been collected yet."""
        return self._weight_norm(wrapper, p=1)

    # -- shared machinery ----------------------------------------------------------------------
    @staticmethod
    def _masked_weight(wrapper) -> torch.Tensor:
        return wrapper.module.weight.data * wrapper.weight_mask

    @staticmethod
    def _weight_norm(wrapper, p: int) -> torch.Tensor:
        weight = StructuredWeightMasker._masked_weight(wrapper)
        flat = weight.reshape(weight.size(0), -1)
        return flat.abs().sum(dim=1) if p == 1 else flat.pow(2).sum(dim=1).sqrt()

    def num_to_prune(self, num_channels: int, sparsity: float) -> int:
        """``int(n * sparsity)`` with the kept count rounded up to ``preserve_round``."""
        num_preserve = num_channels - int(num_channels * sparsity)
        num_preserve = min(num_channels, math.ceil(num_preserve / self.preserve_round) * self.preserve_round)
        return num_channels - num_preserve

    @staticmethod
    def current_channel_mask(wrapper) -> torch.Tensor:
        """1 for each output channel the layer's current mask keeps, 0 for a fully masked one: an
        iterative pruner (AGP) keeps pruned channels pruned."""
        mask = wrapper.weight_mask
        return (mask.reshape(mask.size(0), -1).sum(dim=1) > 0).float()

    @staticmethod
    def base_mask(wrapper) -> dict:
        """All-ones masks shaped like the layer's weight and bias."""
        masks = {"weight_mask": torch.ones_like(wrapper.module.weight.data)}
        if wrapper.bias_mask is not None:
            masks["bias_mask"] = torch.ones_like(wrapper.bias_mask)
        return masks

    @staticmethod
    def mask_from_importance(base_mask: dict, importance: torch.Tensor, num_prune: int,
                             channel_masks: torch.Tensor | None = None) -> dict:
        """Zero the channels masked in ``channel_masks`` (if any), then the least important remaining
        ones until ``num_prune`` channels are pruned."""
        importance = importance.detach().flatten().float().cpu()
        n = importance.numel()
        pruned = torch.zeros(n, dtype=torch.bool)
        if channel_masks is not None:
            pruned |= channel_masks.detach().flatten().cpu() == 0
        remaining = num_prune - int(pruned.sum())
        if remaining > 0:
            scores = importance.clone()
            scores[pruned] = math.inf
            pruned[torch.argsort(scores, stable=True)[:remaining]] = True
        keep = (~pruned).float()
        weight_mask = base_mask["weight_mask"]
        shape = (n,) + (1,) * (weight_mask.dim() - 1)
        result = {"weight_mask": weight_mask * keep.view(shape).to(weight_mask.device, weight_mask.dtype)}
        if base_mask.get("bias_mask") is not None:
            bias_mask = base_mask["bias_mask"]
            result["bias_mask"] = bias_mask * keep.to(bias_mask.device, bias_mask.dtype)
        return result

    def grouped_mask(self, wrapper, importance: torch.Tensor, num_prune: int) -> dict:
        """Masks pruning ``num_prune // groups`` least important filters in each filter group."""
        groups = self.group_dependency.get(wrapper.name, 1)
        importance = importance.detach().flatten().float().cpu()
        n = importance.numel()
        if n % groups:
            raise ValueError(f"layer '{wrapper.name}' has {n} filters, not divisible by its {groups} groups")
        size, per_group = n // groups, num_prune // groups
        keep = torch.ones(n)
        for start in range(0, n, size):
            keep[start + torch.argsort(importance[start:start + size], stable=True)[:per_group]] = 0
        return self.mask_from_importance(self.base_mask(wrapper), importance, 0, keep)

    def get_mask(self, base_mask: dict, weight: torch.Tensor, num_prune: int, wrapper, wrapper_idx: int | None,
                 channel_masks: torch.Tensor | None = None) -> dict | None:
        """Masks of ``wrapper`` with ``num_prune`` channels pruned by this masker's importance."""
        importance = self.get_channel_sum(wrapper, wrapper_idx)
        if importance is None:
            return None
        return self.mask_from_importance(base_mask, importance, num_prune, channel_masks)

    def calc_mask(self, sparsity, wrapper, wrapper_idx=None, **depen_kwargs) -> dict | None:
        """Masks for one layer, or (dependency-aware: lists of sparsities / wrappers / indices of one
        dependency set) ``{layer name: masks}`` with the common channels pruned in every layer."""
        if isinstance(wrapper, (list, tuple)):
            return self._dependency_calc_mask(sparsity, wrapper, wrapper_idx)
        weight = self._masked_weight(wrapper)
        num_channels = weight.size(0)
        num_prune = self.num_to_prune(num_channels, sparsity)
        if num_channels < 2 or num_prune < 1:
            return self.base_mask(wrapper)
        if self.group_dependency.get(wrapper.name, 1) > 1:
            importance = self.get_channel_sum(wrapper, wrapper_idx)
            return None if importance is None else self.grouped_mask(wrapper, importance, num_prune)
        return self.get_mask(self.base_mask(wrapper), weight, num_prune, wrapper, wrapper_idx,
                             channel_masks=self.current_channel_mask(wrapper))

    def _dependency_calc_mask(self, sparsities, wrappers, wrapper_idxes) -> dict | None:
        sums = [self.get_channel_sum(w, i) for w, i in zip(wrappers, wrapper_idxes)]
        if any(s is None for s in sums):
            return None
        counts = {s.numel() for s in sums}
        if len(counts) != 1:
            names = [w.name for w in wrappers]
            raise ValueError(f"layers {names} share channels but have different channel counts {sorted(counts)}")
        n = counts.pop()
        # the whole set prunes the channels least important in total, at the smallest sparsity of the
        # set; each layer then prunes its own extra channels by its own score (docs: dependency-aware)
        total = sum(s.detach().float().cpu() for s in sums)
        common_prune = self.num_to_prune(n, min(sparsities))
        common = torch.ones(n)
        for wrapper in wrappers:
            common *= self.current_channel_mask(wrapper).cpu()
        remaining = common_prune - int((common == 0).sum())
        if remaining > 0:
            scores = total.clone()
            scores[common == 0] = math.inf
            common[torch.argsort(scores, stable=True)[:remaining]] = 0
        masks = {}
        for wrapper, sparsity, importance in zip(wrappers, sparsities, sums):
            num_prune = self.num_to_prune(n, sparsity)
            if self.group_dependency.get(wrapper.name, 1) > 1:
                # an equal count per group beats the common channels: speedup cannot shrink a grouped
                # conv whose groups lost different numbers of filters
                masks[wrapper.name] = self.grouped_mask(wrapper, importance, num_prune)
                continue
            masks[wrapper.name] = self.mask_from_importance(self.base_mask(wrapper), importance, num_prune, common)
        return masks


class L1FilterPrunerMasker(StructuredWeightMasker):
    """Filters with the smallest L1 norm of their weights."""

    def get_channel_sum(self, wrapper, wrapper_idx):
        return self._weight_norm(wrapper, p=1)


class L2FilterPrunerMasker(StructuredWeightMasker):
    """Filters with the smallest L2 norm of their weights."""

    def get_channel_sum(self, wrapper, wrapper_idx):
        return self._weight_norm(wrapper, p=2)


class FPGMPrunerMasker(StructuredWeightMasker):
    """Filters closest to the geometric median: the smallest sum of Euclidean distances to the
    other filters of the layer (the most replaceable ones)."""

    def get_channel_sum(self, wrapper, wrapper_idx):
        weight = self._masked_weight(wrapper)
        flat = weight.reshape(weight.size(0), -1).float()
        return torch.cdist(flat, flat).sum(dim=1)


class SlimPrunerMasker(StructuredWeightMasker):
    """BatchNorm channels with the smallest ``|gamma|`` (scaling factor).

    While the pruner trains (``sparsifying``), an L1 penalty ``scale * sign(gamma)`` is added to the
    scaling factors' gradients before every optimizer step (network slimming).
    """

    def __init__(self, model, pruner, scale: float = 0.0001, **kwargs):
        super().__init__(model, pruner, **kwargs)
        self.scale = scale
        self.sparsifying = False
        pruner.patch_optimizer_before(self._add_sparsity_penalty)

    def _add_sparsity_penalty(self) -> None:
        if not self.sparsifying:
            return
        for wrapper in self.pruner.get_modules_wrapper():
            weight = wrapper.module.weight
            if weight.grad is not None:
                weight.grad.data.add_(self.scale * torch.sign(weight.data))

    def get_channel_sum(self, wrapper, wrapper_idx):
        return self._masked_weight(wrapper).abs()


class TaylorFOWeightFilterPrunerMasker(StructuredWeightMasker):
    """Filters with the smallest first-order Taylor importance ``sum_s (g_s * w_s)^2``, gradients
    accumulated before each optimizer step over ``statistics_batch_num`` batches."""

    def __init__(self, model, pruner, statistics_batch_num: int = 1, **kwargs):
        super().__init__(model, pruner, **kwargs)
        self.statistics_batch_num = statistics_batch_num
        self.collecting = False
        self.reset_statistics()
        pruner.patch_optimizer_before(self._collect_contributions)

    def reset_statistics(self) -> None:
        """Forget the collected contributions (before a new collection round)."""
        self.batches = 0
        self.contributions: dict[str, torch.Tensor] = {}

    def _collect_contributions(self) -> None:
        if not self.collecting or self.batches >= self.statistics_batch_num:
            return
        for wrapper in self.pruner.get_modules_wrapper():
            weight = wrapper.module.weight
            if weight.grad is None:
                continue
            contribution = (weight.data * weight.grad.data).pow(2).reshape(weight.size(0), -1).sum(dim=1)
            previous = self.contributions.get(wrapper.name)
            self.contributions[wrapper.name] = contribution if previous is None else previous + contribution
        self.batches += 1

    def get_channel_sum(self, wrapper, wrapper_idx):
        return self.contributions.get(wrapper.name)


class _ActivationRankMasker(StructuredWeightMasker):
    _ACTIVATIONS = {"relu": torch.relu, "relu6": nn.functional.relu6}

    def __init__(self, model, pruner, activation: str = "relu", statistics_batch_num: int = 1, **kwargs):
        super().__init__(model, pruner, **kwargs)
        if activation not in self._ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(self._ACTIVATIONS)}, got {activation!r}")
        self.activation = self._ACTIVATIONS[activation]
        self.statistics_batch_num = statistics_batch_num
        self.collecting = False
        self.reset_statistics()
        pruner.add_activation_collector(self._collect)

    def reset_statistics(self) -> None:
        """Forget the collected activations (before a new collection round)."""
        self.collected: dict[str, list[torch.Tensor]] = {}

    def _collect(self, wrapper, _inputs, output) -> None:
        batches = self.collected.setdefault(wrapper.name, [])
        if self.collecting and len(batches) < self.statistics_batch_num:
            act = self.activation(output.detach())
            dims = [d for d in range(act.dim()) if d != 1]  # every dim but the channel dim
            batches.append(self._statistic(act, dims).cpu())

    def get_channel_sum(self, wrapper, wrapper_idx):
        batches = self.collected.get(wrapper.name)
        if not batches:
            return None
        return self._importance(torch.stack(batches).mean(dim=0))


class ActivationAPoZRankFilterPrunerMasker(_ActivationRankMasker):
    """Filters whose activations are most often zero (highest APoZ, i.e. lowest ``1 - APoZ``)."""

    @staticmethod
    def _statistic(act, dims):
        return (act == 0).float().mean(dim=dims)

    @staticmethod
    def _importance(apoz):
        return 1 - apoz


class ActivationMeanRankFilterPrunerMasker(_ActivationRankMasker):
    """Filters with the smallest mean activation."""

    @staticmethod
    def _statistic(act, dims):
        return act.float().mean(dim=dims)

    @staticmethod
    def _importance(mean):
        return mean
