"""Small helpers shared by the tuners of this package (not public API)."""
from __future__ import annotations

import logging
import math
from typing import Any, Iterable

from nni.utils import OptimizeMode, extract_scalar_reward

_logger = logging.getLogger(__name__)

ALL_TYPES = ("choice", "randint", "uniform", "quniform", "loguniform", "qloguniform",
             "normal", "qnormal", "lognormal", "qlognormal")


def parse_optimize_mode(value: Any, tuner: str) -> OptimizeMode:
    if isinstance(value, OptimizeMode):
        return value
    try:
        return OptimizeMode(value)
    except ValueError:
        raise ValueError(f"{tuner}: classArgs.optimize_mode must be 'maximize' or 'minimize', got {value!r}") from None


def loss_of(value: Any, mode: OptimizeMode) -> float:
    """The metric as a loss (lower is better); NaN becomes +inf (the worst)."""
    reward = extract_scalar_reward(value)
    if math.isnan(reward):
        return math.inf
    return -reward if mode is OptimizeMode.Maximize else reward


def check_search_space(search_space: Any, tuner: str, types: Iterable[str], nested: bool) -> None:
    """Validate ``search_space`` for a tuner supporting ``types`` (and nested choices if ``nested``).

    Raises a one-line ``ValueError`` naming the parameter path, the type and the tuner.
    """
    from nni.common.hpo_utils import validate_search_space

    validate_search_space(search_space, support_types=list(types), raise_exception=True,
                          algorithm_name=tuner, allow_nested=nested)


def liar_loss(metrics: Iterable[float], liar_type: str, mode: OptimizeMode) -> float:
    """Constant Liar value as a loss: ``min``/``max``/``mean`` of the reported metric values.

    The docs define the lie as min{Y}, max{Y} or mean{Y} of the observed values Y; Y is taken as
    the metric the trials reported (so under ``maximize`` the default ``min`` is the worst value).
    """
    finite = [m for m in metrics if math.isfinite(m)]
    if not finite:
        return 0.0
    if liar_type == "min":
        y = min(finite)
    elif liar_type == "max":
        y = max(finite)
    else:
        y = sum(finite) / len(finite)
    return -y if mode is OptimizeMode.Maximize else y


def check_liar_type(value: Any, tuner: str) -> str:
    if value not in ("min", "max", "mean"):
        raise ValueError(f"{tuner}: classArgs.constant_liar_type must be 'min', 'max' or 'mean', got {value!r}")
    return value


def row_of_result(pending: dict, space: Any, parameter_id: Any, parameters: Any, tuner: str) -> Any:
    """The internal row behind a result: the one this tuner suggested, else (a customized or
    imported trial) the row its parameters map to; ``None`` when they fit no row of the space."""
    row = pending.pop(parameter_id, None)
    if row is not None or space is None:
        return row
    try:
        return space.from_parameters(parameters)
    except ValueError as err:
        _logger.warning("%s: ignoring result of %s: %s", tuner, parameter_id, err)
        return None
