"""One-shot v1 pruners: masks are computed once, by :meth:`compress`."""
from __future__ import annotations

from torch import nn

from ._masker_pruner import MaskerPruner

__all__ = ["FPGMPruner", "L1FilterPruner", "L2FilterPruner", "LevelPruner", "OneshotPruner"]


class OneshotPruner(MaskerPruner):
    """Prune the model to the configured sparsities once.

    Args:
        model: model to prune.
        config_list: ``[{'sparsity': float, 'op_types'|'op_names': [...], 'exclude': bool}, ...]``.
        pruning_algorithm: one of ``level``, ``l1``, ``l2``, ``fpgm`` (and the statistics-based ones).
        dependency_aware: prune the same channels in layers whose outputs are joined (needs ``dummy_input``).
        dummy_input: example input used to trace the channel dependencies.
        algo_kwargs: passed to the masker (e.g. ``preserve_round``).
    """

    def __init__(self, model: nn.Module, config_list: list[dict], pruning_algorithm: str = "level",
                 dependency_aware: bool = False, dummy_input=None, **algo_kwargs):
        super().__init__(model, config_list, None, pruning_algorithm, dependency_aware, dummy_input, **algo_kwargs)


class LevelPruner(OneshotPruner):
    """Fine-grained: zero the ``int(numel * sparsity)`` smallest-magnitude weights of each layer.

    ``'default'`` in ``op_types`` means every weighted module type (Conv*, Linear, Embedding...).
    """

    def __init__(self, model: nn.Module, config_list: list[dict]):
        super().__init__(model, config_list, pruning_algorithm="level")


class L1FilterPruner(OneshotPruner):
    """Conv2d filters (with their bias) of smallest L1 norm; ``int(filters * sparsity)`` per layer."""

    def __init__(self, model: nn.Module, config_list: list[dict], dependency_aware: bool = False, dummy_input=None):
        super().__init__(model, config_list, pruning_algorithm="l1", dependency_aware=dependency_aware,
                         dummy_input=dummy_input)


class L2FilterPruner(OneshotPruner):
    """Conv2d filters (with their bias) of smallest L2 norm; ``int(filters * sparsity)`` per layer."""

    def __init__(self, model: nn.Module, config_list: list[dict], dependency_aware: bool = False, dummy_input=None):
        super().__init__(model, config_list, pruning_algorithm="l2", dependency_aware=dependency_aware,
                         dummy_input=dummy_input)


class FPGMPruner(OneshotPruner):
    """Conv2d filters nearest the layer's geometric median (smallest summed distance to the others)."""

    def __init__(self, model: nn.Module, config_list: list[dict], dependency_aware: bool = False, dummy_input=None):
        super().__init__(model, config_list, pruning_algorithm="fpgm", dependency_aware=dependency_aware,
                         dummy_input=dummy_input)
