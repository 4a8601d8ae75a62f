"""What the one-shot and iterative v1 pruners share: masker choice, v1 config checks,
dependency-aware and global-sort mask computation."""
from __future__ import annotations

import torch
from torch import nn

from nni.compression.pytorch.compressor import LayerInfo, Pruner
from nni.compression.pytorch.utils.config_validation import ConfigListError, DEFAULT_OP_TYPES

from .structured_pruning_masker import (
    ActivationAPoZRankFilterPrunerMasker, ActivationMeanRankFilterPrunerMasker, FPGMPrunerMasker,
    L1FilterPrunerMasker, L2FilterPrunerMasker, SlimPrunerMasker, StructuredWeightMasker,
    TaylorFOWeightFilterPrunerMasker,
)
from .weight_masker import LevelPrunerMasker

# pruning_algorithm -> (masker class, op types it prunes; None = any module with a weight)
MASKERS = {
    "level": (LevelPrunerMasker, None),
    "slim": (SlimPrunerMasker, ("BatchNorm2d",)),
    "l1": (L1FilterPrunerMasker, ("Conv2d",)),
    "l2": (L2FilterPrunerMasker, ("Conv2d",)),
    "fpgm": (FPGMPrunerMasker, ("Conv2d",)),
    "taylorfo": (TaylorFOWeightFilterPrunerMasker, ("Conv2d",)),
    "apoz": (ActivationAPoZRankFilterPrunerMasker, ("Conv2d",)),
    "mean_activation": (ActivationMeanRankFilterPrunerMasker, ("Conv2d",)),
}


def channel_dependency_sets(model: nn.Module, dummy_input, owner: str) -> tuple[list[set[str]], dict[str, int]]:
    """Sets of layer names whose output channels must be pruned together, and the filter group
    count of each conv (ChannelDependency / GroupDependency of the traced graph)."""
    if dummy_input is None:
        raise ValueError(f"{owner}: dependency_aware=True needs dummy_input (an example input to trace the model)")
    try:
        from nni.compression.pytorch.utils import shape_dependency
        ChannelDependency = shape_dependency.ChannelDependency
    except (ImportError, AttributeError) as err:
        raise RuntimeError(f"{owner}: dependency_aware=True needs "
                           f"nni.compression.pytorch.utils.shape_dependency.ChannelDependency ({err})") from None
    sets = [set(group) for group in ChannelDependency(model, dummy_input).dependency_sets]
    group_dependency = getattr(shape_dependency, "GroupDependency", None)
    groups = dict(group_dependency(model, dummy_input).dependency) if group_dependency is not None else {}
    return sets, groups


class MaskerPruner(Pruner):
    """A pruner whose masks come from a masker chosen by ``pruning_algorithm``."""

    def __init__(self, model: nn.Module, config_list: list[dict], optimizer=None, pruning_algorithm: str = "level",
                 dependency_aware: bool = False, dummy_input=None, **algo_kwargs):
        owner = type(self).__name__
        if pruning_algorithm not in MASKERS:
            raise ValueError(f"{owner}: pruning_algorithm must be one of {sorted(MASKERS)}, got {pruning_algorithm!r}")
        self.pruning_algorithm = pruning_algorithm
        masker_cls, self.supported_op_types = MASKERS[pruning_algorithm]
        self.default_op_types = self.supported_op_types or DEFAULT_OP_TYPES
        self.dependency_aware = bool(dependency_aware)
        self.dummy_input = dummy_input
        if self.dependency_aware and not issubclass(masker_cls, StructuredWeightMasker):
            raise ValueError(f"{owner}: dependency_aware=True needs a filter pruning algorithm, not {pruning_algorithm!r}")
        # traced before wrapping so the sets name the model's own layers
        self.dependency_sets, groups = (channel_dependency_sets(model, dummy_input, owner) if self.dependency_aware
                                        else ([], {}))
        super().__init__(model, config_list, optimizer)
        if self.dependency_aware:
            algo_kwargs["dependency_aware"] = True
        self.masker = masker_cls(model, self, **algo_kwargs)
        if self.dependency_aware:
            self.masker.group_dependency = groups
        self.set_wrappers_attribute("if_calculated", False)

    def validate_config(self, model, config_list):
        """v1 pruners take ``sparsity`` per layer, on the op types their algorithm prunes."""
        canonical = super().validate_config(model, config_list)
        owner = type(self).__name__
        for i, entry in enumerate(canonical):
            for key in ("sparsity_per_layer", "total_sparsity", "max_sparsity_per_layer", "rho", "prune_iterations"):
                if key in entry:
                    raise ConfigListError(f"config_list[{i}] has key {key!r} that {owner} does not use; "
                                          f"v1 pruners take 'sparsity', 'op_types', 'op_names', 'exclude'")
            if not entry.get("exclude") and "sparsity" not in entry:
                raise ConfigListError(f"config_list[{i}] needs 'sparsity' (or 'exclude': True)")
            if self.supported_op_types and not entry.get("exclude"):
                for op_type in entry.get("op_types", []):
                    if op_type not in self.supported_op_types:
                        raise ConfigListError(f"config_list[{i}]['op_types']: {owner} prunes only "
                                              f"{list(self.supported_op_types)}, got {op_type!r}")
        return canonical

    def _wrap_modules(self, layer: LayerInfo, config: dict):
        if self.supported_op_types and layer.type not in self.supported_op_types:
            raise ConfigListError(f"config_list selects layer '{layer.name}' ({layer.type}) but "
                                  f"{type(self).__name__} prunes only {list(self.supported_op_types)}")
        return super()._wrap_modules(layer, config)

    def target_sparsity(self, wrapper) -> float:
        """The sparsity to prune ``wrapper`` to now (AGP overrides it with its schedule)."""
        return wrapper.config["sparsity"]

    def calc_mask(self, wrapper, wrapper_idx=None, **kwargs):
        """Masks of ``wrapper`` from the masker; None once calculated (one mask per round)."""
        if getattr(wrapper, "if_calculated", False):
            return None
        masks = self.masker.calc_mask(sparsity=self.target_sparsity(wrapper), wrapper=wrapper, wrapper_idx=wrapper_idx)
        if masks is not None:
            wrapper.if_calculated = True
        return masks

    def update_mask(self) -> None:
        """Compute every layer's masks: per layer, per dependency set, or globally (global_sort)."""
        wrappers = self.get_modules_wrapper()
        if getattr(self.masker, "global_sort", False):
            self._update_mask_global(wrappers)
            return
        handled: set[str] = set()
        if self.dependency_aware:
            by_name = {w.name: (i, w) for i, w in enumerate(wrappers)}
            for group in self.dependency_sets:
                members = [by_name[name] for name in sorted(group) if name in by_name]
                members = [(i, w) for i, w in members if not getattr(w, "if_calculated", False)]
                if len(members) < 2:
                    continue  # a lone layer is pruned on its own below
                masks = self.masker.calc_mask([self.target_sparsity(w) for _, w in members],
                                              [w for _, w in members], [i for i, _ in members])
                if masks is None:
                    self._missing_statistics([w for _, w in members])
                for _, w in members:
                    self._set_masks(w, masks[w.name])
                    w.if_calculated = True
                    handled.add(w.name)
        for idx, wrapper in enumerate(wrappers):
            if wrapper.name in handled:
                continue
            masks = self.calc_mask(wrapper, wrapper_idx=idx)
            if masks is None and not getattr(wrapper, "if_calculated", False):
                self._missing_statistics([wrapper])
            if masks is not None:
                self._set_masks(wrapper, masks)

    def _missing_statistics(self, wrappers) -> None:
        names = [w.name for w in wrappers]
        raise RuntimeError(f"{type(self).__name__}: no statistics were collected for layers {names}; the trainer "
                           f"must run forward/backward passes and call optimizer.step() on the pruner's optimizer")

    def _update_mask_global(self, wrappers) -> None:
        # rank every channel of every layer together; prune as many channels in total as the
        # per-layer sparsities ask for, keeping at least one channel in each layer
        pending = [(i, w) for i, w in enumerate(wrappers) if not getattr(w, "if_calculated", False)]
        scores, total = [], 0
        for idx, wrapper in pending:
            importance = self.masker.get_channel_sum(wrapper, idx)
            if importance is None:
                self._missing_statistics([wrapper])
            importance = importance.detach().float().cpu()
            scores.append(importance)
            total += self.masker.num_to_prune(importance.numel(), self.target_sparsity(wrapper))
        if not pending:
            return
        flat = torch.cat(scores)
        owner = torch.cat([torch.full((s.numel(),), k) for k, s in enumerate(scores)])
        pruned_counts = [0] * len(scores)
        room = [s.numel() - 1 for s in scores]
        for j in torch.argsort(flat, stable=True).tolist():
            if total == 0:
                break
            k = int(owner[j])
            if pruned_counts[k] < room[k]:
                pruned_counts[k] += 1
                total -= 1
        for (idx, wrapper), importance, count in zip(pending, scores, pruned_counts):
            masks = self.masker.mask_from_importance(self.masker.base_mask(wrapper), importance, count,
                                                     self.masker.current_channel_mask(wrapper))
            self._set_masks(wrapper, masks)
            wrapper.if_calculated = True


def check_training_args(owner: str, trainer, criterion, optimizer) -> None:
    """Pruners that train need all three; say which one is missing."""
    for name, value in (("trainer", trainer), ("criterion", criterion), ("optimizer", optimizer)):
        if value is None:
            raise ValueError(f"{owner}: {name} is required (the pruner trains the model to collect its statistics)")
    if not callable(trainer):
        raise ValueError(f"{owner}: trainer must be a function trainer(model, optimizer, criterion, epoch)")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(f"{owner}: optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")


def is_positive_int(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= 1


__all__ = ["MASKERS", "MaskerPruner", "channel_dependency_sets", "check_training_args", "is_positive_int"]
