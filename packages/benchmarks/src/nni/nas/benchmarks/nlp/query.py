"""Querying the NAS-Bench-NLP database."""
from __future__ import annotations

from typing import Iterator

from ..utils import check_choice, run_query
from .constants import ARCH_KEY, DATASETS
from .model import DATABASE, NlpIntermediateStats, NlpTrialConfig, NlpTrialStats

__all__ = ["query_nlp_trial_stats", "check_arch"]


def check_arch(arch: dict) -> None:
    """Raise a one-line ``ValueError`` unless ``arch`` is a flattened NAS-Bench-NLP recipe."""
    if not isinstance(arch, dict) or not arch:
        raise ValueError(f"arch: expected a non-empty dict of recipe keys such as 'node_0_op', 'node_0_input_0' "
                         f"(or None for any), got {arch!r}")
    for key, value in arch.items():
        if not isinstance(key, str) or not ARCH_KEY.match(key):
            raise ValueError(f"arch: key {key!r} is not a recipe key (<node>_op or <node>_input_<k>, "
                             f"node = node_<n> or h_new_<n>)")
        if not isinstance(value, str):
            raise ValueError(f"arch[{key!r}]: expected an op or input name (a string), got {value!r}")


def query_nlp_trial_stats(arch: dict | None, dataset: str | None, reduction: str | None = None,
                          include_intermediates: bool = False) -> Iterator[dict]:
    """Query trial stats of NAS-Bench-NLP given conditions.

    Args:
        arch: a flattened recipe (key order does not matter), or None to match every architecture.
        dataset: ``'ptb'``, ``'wikitext-2'``, or None for any.
        reduction: None or ``'none'`` returns every trial; ``'mean'`` averages the stats over the trials of one
            config (and the intermediates epoch by epoch).
        include_intermediates: add ``intermediates``, the per-epoch records, to each dict.

    Returns:
        A generator of :class:`NlpTrialStats` rows as dicts (``id``, ``train_loss``, ``val_loss``, ``test_loss``,
        ``training_time``), with the config (``id``, ``arch``, ``dataset``) under ``config``.

    Example:
        >>> arch = {'h_new_0_input_0': 'node_0', 'h_new_0_input_1': 'node_1', 'h_new_0_op': 'elementwise_sum',
        ...         'node_0_input_0': 'x', 'node_0_input_1': 'h_prev_0', 'node_0_op': 'linear',
        ...         'node_1_input_0': 'node_0', 'node_1_op': 'activation_tanh'}
        >>> for t in query_nlp_trial_stats(arch=arch, dataset='wikitext-2', include_intermediates=True):  # doctest: +SKIP
        ...     print(t['intermediates'][45:49])
    """
    conditions = []
    if arch is not None:
        check_arch(arch)
        conditions.append((NlpTrialConfig.arch, arch))
    if dataset is not None:
        check_choice("dataset", dataset, DATASETS)
        conditions.append((NlpTrialConfig.dataset, dataset))
    return run_query(DATABASE, NlpTrialStats, NlpTrialConfig, NlpIntermediateStats, conditions, reduction,
                     include_intermediates)
