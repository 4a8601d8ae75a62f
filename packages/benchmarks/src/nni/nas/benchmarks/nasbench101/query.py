"""Querying the NAS-Bench-101 database."""
from __future__ import annotations

from typing import Iterator

from ..utils import run_query
from .graph_util import architecture_to_matrix, hash_module, infer_num_vertices, nasbench_format_to_architecture_repr
from .model import DATABASE, Nb101IntermediateStats, Nb101TrialConfig, Nb101TrialStats

__all__ = ["query_nb101_trial_stats"]


def canonical_arch(arch: dict) -> tuple[int, dict]:
    """Validate an arch dict; return ``(num_vertices, arch)`` with every input list sorted."""
    if not isinstance(arch, dict):
        raise ValueError(f"arch: expected a dict with keys op<i> and input<i> (or None for any), got {type(arch).__name__}")
    n = infer_num_vertices(arch)
    matrix, labeling = architecture_to_matrix(arch, n)
    return nasbench_format_to_architecture_repr(matrix, labeling)


def query_nb101_trial_stats(arch: dict | None, num_epochs: int | None, isomorphism: bool = True,
                            reduction: str | None = None, include_intermediates: bool = False) -> Iterator[dict]:
    """Query trial stats of NAS-Bench-101 given conditions.

    Args:
        arch: a dict in the format of :class:`Nb101TrialConfig` ``arch`` (key order and the order
            inside input lists do not matter), or None to match every architecture.
        num_epochs: 4, 12, 36 or 108 to match trials of that budget, or None for any.
        isomorphism: match every architecture with the same graph-invariant hash (the same cell
            with its vertices numbered differently); if False, the arch must match exactly.
        reduction: None or ``'none'`` returns every trial; ``'mean'`` averages the stats fields
            over the trials of one config (and the intermediates epoch by epoch).
        include_intermediates: add ``intermediates``, the per-epoch records, to each dict.

    Returns:
        A generator of :class:`Nb101TrialStats` rows as dicts, with the config under ``config``.
    """
    conditions = []
    if arch is not None:
        num_vertices, arch = canonical_arch(arch)
        if isomorphism:
            conditions.append((Nb101TrialConfig.hash, hash_module(arch, num_vertices)))
        else:
            conditions.append((Nb101TrialConfig.arch, arch))
    if num_epochs is not None:
        conditions.append((Nb101TrialConfig.num_epochs, num_epochs))
    return run_query(DATABASE, Nb101TrialStats, Nb101TrialConfig, Nb101IntermediateStats,
                     conditions, reduction, include_intermediates)
