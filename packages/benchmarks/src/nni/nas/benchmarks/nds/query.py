"""Querying the NDS database."""
from __future__ import annotations

from typing import Iterator

from ..utils import check_choice, run_query
from .constants import DATASETS, GENERATORS, MODEL_FAMILIES, PROPOSERS
from .model import DATABASE, NdsIntermediateStats, NdsTrialConfig, NdsTrialStats

__all__ = ["query_nds_trial_stats"]


def query_nds_trial_stats(model_family: str | None, proposer: str | None, generator: str | None,
                          model_spec: dict | None, cell_spec: dict | None, dataset: str | None,
                          num_epochs: int | None = None, reduction: str | None = None,
                          include_intermediates: bool = False) -> Iterator[dict]:
    """Query trial stats of NDS given conditions; every filter that is None matches anything.

    Args:
        model_family: ``nas_cell``, ``residual_bottleneck``, ``residual_basic`` or ``vanilla``.
        proposer: one of the proposers of :class:`NdsTrialConfig` (``darts``, ``resnet``, …).
        generator: ``random``, ``fix_w_d`` or ``tune_lr_wd``.
        model_spec: a model spec dict (key order does not matter).
        cell_spec: a cell spec dict (``{}`` for the families other than nas_cell).
        dataset: ``cifar10`` or ``imagenet``.
        num_epochs: epochs scheduled.
        reduction: None or ``'none'`` returns every trial; ``'mean'`` averages the stats fields
            over the trials of one config (and the intermediates epoch by epoch).
        include_intermediates: add ``intermediates``, the per-epoch records, to each dict.

    Returns:
        A generator of :class:`NdsTrialStats` rows as dicts, with the config under ``config``.
    """
    check_choice("model_family", model_family, MODEL_FAMILIES)
    check_choice("proposer", proposer, PROPOSERS)
    check_choice("generator", generator, GENERATORS)
    check_choice("dataset", dataset, DATASETS)
    for name, spec in (("model_spec", model_spec), ("cell_spec", cell_spec)):
        if spec is not None and not isinstance(spec, dict):
            raise ValueError(f"{name}: expected a dict (or None for any), got {type(spec).__name__}")
    conditions = []
    for field, value in ((NdsTrialConfig.model_family, model_family), (NdsTrialConfig.proposer, proposer),
                         (NdsTrialConfig.generator, generator), (NdsTrialConfig.model_spec, model_spec),
                         (NdsTrialConfig.cell_spec, cell_spec), (NdsTrialConfig.dataset, dataset),
                         (NdsTrialConfig.num_epochs, num_epochs)):
        if value is not None:
            conditions.append((field, value))
    return run_query(DATABASE, NdsTrialStats, NdsTrialConfig, NdsIntermediateStats, conditions, reduction,
                     include_intermediates)
