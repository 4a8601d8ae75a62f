"""Querying the NAS-Bench-201 database."""
from __future__ import annotations

from typing import Iterator

from ..utils import check_choice, run_query
from .constants import DATASETS, EDGES, PRIMITIVES
from .model import DATABASE, Nb201IntermediateStats, Nb201TrialConfig, Nb201TrialStats

__all__ = ["query_nb201_trial_stats"]


def check_arch(arch: dict) -> None:
    """Raise a one-line ``ValueError`` unless ``arch`` is a NAS-Bench-201 arch dict."""
    if not isinstance(arch, dict):
        raise ValueError(f"arch: expected a dict with keys {', '.join(EDGES)} (or None for any), got {type(arch).__name__}")
    if sorted(arch) != EDGES:
        raise ValueError(f"arch: keys {sorted(map(str, arch))} are not the NAS-Bench-201 edges {', '.join(EDGES)}")
    for key in EDGES:
        if arch[key] not in PRIMITIVES:
            raise ValueError(f"arch[{key!r}]: {arch[key]!r} is not one of {', '.join(PRIMITIVES)}")


def query_nb201_trial_stats(arch: dict | None, num_epochs: int | None, dataset: str | None,
                            reduction: str | None = None, include_intermediates: bool = False) -> Iterator[dict]:
    """Query trial stats of NAS-Bench-201 given conditions.

    Args:
        arch: a dict in the format of :class:`Nb201TrialConfig` ``arch`` (key order does not
            matter), or None to match every architecture.
        num_epochs: 12 or 200 to match trials of that schedule, or None for any.
        dataset: ``cifar10-valid``, ``cifar10``, ``cifar100``, ``imagenet16-120``, or None for any.
        reduction: None or ``'none'`` returns every trial; ``'mean'`` averages the stats fields
            over the trials of one config (and the intermediates epoch by epoch).
        include_intermediates: add ``intermediates``, the per-epoch records, to each dict.

    Returns:
        A generator of :class:`Nb201TrialStats` rows as dicts, with the config under ``config``.

    Example:
        >>> arch = {'0_1': 'avg_pool_3x3', '0_2': 'conv_1x1', '1_2': 'skip_connect',
        ...         '0_3': 'conv_1x1', '1_3': 'skip_connect', '2_3': 'skip_connect'}
        >>> for t in query_nb201_trial_stats(arch, 200, 'cifar100'):  # doctest: +SKIP
        ...     print(t['test_acc'])
    """
    conditions = []
    if arch is not None:
        check_arch(arch)
        conditions.append((Nb201TrialConfig.arch, arch))
    if num_epochs is not None:
        conditions.append((Nb201TrialConfig.num_epochs, num_epochs))
    if dataset is not None:
        check_choice("dataset", dataset, DATASETS)
        conditions.append((Nb201TrialConfig.dataset, dataset))
    return run_query(DATABASE, Nb201TrialStats, Nb201TrialConfig, Nb201IntermediateStats,
                     conditions, reduction, include_intermediates)
