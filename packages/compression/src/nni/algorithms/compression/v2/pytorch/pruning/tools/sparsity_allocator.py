"""Sparsity allocators: metrics → masks, the last stage of a v2 pruner.

Shared rules (docs' gaps, decided): a layer at sparsity ``s`` with ``n`` blocks prunes
``int(n * s)`` blocks of lowest metric (stable order on ties) and always keeps at least one;
blocks already masked out stay masked (a new mask never revives weights), and count toward the quota.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Optional, Sequence, Set

import torch
from torch import Tensor

if TYPE_CHECKING:
    from ..basic_pruner import Pruner

_EPS = 1e-6  # so that e.g. 100 * 0.29 = 28.999999999999996 prunes 29, not 28


def num_to_prune(n: int, sparsity: float) -> int:
    return max(0, min(int(n * sparsity + _EPS), n - 1))


class SparsityAllocator:
    """Per-layer allocation (``mode='normal'``); ``dim=0`` for block (filter/channel) masks, None for elements."""

    def __init__(self, pruner: 'Pruner', dim: Optional[int] = None):
        self.pruner = pruner
        self.dim = dim

    # -- helpers -------------------------------------------------------------------------------
    def _alive(self, name: str) -> Tensor:
        mask = self.pruner.get_modules_wrapper()[name].weight_mask
        if self.dim is None:
            return mask.reshape(-1) != 0
        return mask.reshape(mask.shape[0], -1).sum(dim=1) != 0

    def _prepared(self, name: str, metric: Tensor) -> Tensor:
        """Flattened metric with already-pruned blocks at -inf, so they are chosen first."""
        m = metric.detach().reshape(-1).float().cpu().clone()
        m[~self._alive(name).cpu()] = float('-inf')
        return m

    def _mask(self, name: str, keep: Tensor) -> Dict[str, Tensor]:
        wrapper = self.pruner.get_modules_wrapper()[name]
        weight = wrapper.module.weight
        keep = keep.to(weight.device).float()
        if self.dim is None:
            return {'weight': keep.reshape(weight.shape)}
        masks = {'weight': keep.reshape(-1, *([1] * (weight.dim() - 1))).expand_as(weight).contiguous()}
        if wrapper.bias_mask is not None:
            masks['bias'] = keep.clone()
        return masks

    def _prune_layer(self, metric: Tensor, sparsity: float) -> Tensor:
        """Keep-vector for one prepared metric."""
        n = metric.numel()
        k = max(num_to_prune(n, sparsity), int(torch.isinf(metric).sum()))
        keep = torch.ones(n, dtype=torch.bool)
        keep[torch.argsort(metric, stable=True)[:k]] = False
        return keep

    # -- allocation ------------------------------------------------------------------------------
    def generate_sparsity(self, metrics: Dict[str, Tensor]) -> Dict[str, Dict[str, Tensor]]:
        masks = {}
        for group in self.pruner.layer_groups:
            for name in group.names:
                masks[name] = self._mask(name, self._prune_layer(self._prepared(name, metrics[name]), group.sparsity))
        return masks


class GlobalSparsityAllocator(SparsityAllocator):
    """``mode='global'``: the layers of one ``total_sparsity`` config share one ranking; pruning stops when
    ``int(total_sparsity * total_weights)`` weights are masked; ``max_sparsity_per_layer`` caps each layer
    (without it, each layer keeps at least one block)."""

    def generate_sparsity(self, metrics):
        masks = {}
        for group in self.pruner.layer_groups:
            if not group.is_total:
                for name in group.names:
                    masks[name] = self._mask(name, self._prune_layer(self._prepared(name, metrics[name]), group.sparsity))
                continue
            prepared = [self._prepared(name, metrics[name]) for name in group.names]
            sizes, caps, counts = [], [], []
            for name, m in zip(group.names, prepared):
                numel = self.pruner.get_modules_wrapper()[name].module.weight.numel()
                sizes.append(numel // m.numel())
                cap = m.numel() - 1
                if group.max_sparsity_per_layer is not None:
                    cap = min(cap, int(m.numel() * group.max_sparsity_per_layer + 1e-6))
                caps.append(cap)
                counts.append(0)
            total = sum(s * m.numel() for s, m in zip(sizes, prepared))
            target = int(total * group.sparsity + 1e-6)
            values = torch.cat(prepared)
            owner = torch.cat([torch.full((m.numel(),), i, dtype=torch.long) for i, m in enumerate(prepared)])
            index = torch.cat([torch.arange(m.numel()) for m in prepared])
            keeps = [torch.ones(m.numel(), dtype=torch.bool) for m in prepared]
            pruned = 0
            for j in torch.argsort(values, stable=True).tolist():
                li, bi = int(owner[j]), int(index[j])
                forced = bool(torch.isinf(values[j]))
                if not forced and (pruned >= target or counts[li] >= caps[li]):
                    continue
                keeps[li][bi] = False
                counts[li] += 1
                pruned += sizes[li]
            for name, keep in zip(group.names, keeps):
                masks[name] = self._mask(name, keep)
        return masks


class DependencyAwareAllocator(SparsityAllocator):
    """``mode='dependency_aware'``: layers of one channel-dependency set first prune the same
    ``min(sparsity in set)`` channels ranked by their summed metric, then each prunes the rest of its
    own sparsity by its own metric (docs' algorithm for residual adds)."""

    def __init__(self, pruner, dim: int, dependency_sets: Sequence[Set[str]]):
        super().__init__(pruner, dim)
        self.dependency_sets = [set(s) for s in dependency_sets]

    def generate_sparsity(self, metrics):
        sparsity = {name: g.sparsity for g in self.pruner.layer_groups for name in g.names}
        prepared = {name: self._prepared(name, metrics[name]) for name in sparsity}
        for dep in self.dependency_sets:
            members = [n for n in sorted(dep) if n in prepared]
            if len(members) < 2 or len({prepared[n].numel() for n in members}) != 1:
                continue
            summed = sum(prepared[n] for n in members)
            common = torch.argsort(summed, stable=True)[:num_to_prune(summed.numel(), min(sparsity[n] for n in members))]
            for n in members:
                prepared[n][common] = float('-inf')
        return {name: self._mask(name, self._prune_layer(prepared[name], sparsity[name])) for name in sparsity}
