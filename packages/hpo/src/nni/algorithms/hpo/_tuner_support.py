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


def check_numeric_choices(search_space: dict, tuner: str) -> None:
    """Reject choices whose options are not all numbers (GP, Metis and DNGO model distances between values)."""
    for name, spec in search_space.items():
        if isinstance(spec, dict) and spec.get("_type") == "choice":
            for option in spec.get("_value") or []:
                if isinstance(option, bool) or not isinstance(option, (int, float)):
                    raise ValueError(
                        f"search space {name!r}: choice option {option!r} is not a number; {tuner} accepts numerical "
                        "choice values only (it models distances between points); use TPE, SMAC or Random for other values")


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


class ObservationLog:
    """Observation bookkeeping of a model-based tuner over :class:`FlatSpace` rows (mixed into a ``Tuner``).

    Keeps ``_rows`` (configurations with a result), the parallel lists named in
    ``observation_columns`` (``_losses`` at least) and ``_pending`` (suggested, no result yet),
    and implements ``generate_parameters``, ``receive_trial_result``, ``trial_end`` and
    ``import_data`` on them. A subclass sets ``name`` (used in messages) and ``optimize_mode``,
    calls :meth:`_init_observations`, implements ``_suggest()`` (the next row), and may extend
    :meth:`_add` (one result) or :meth:`_imported` (a row from ``import_data``). A tuner modelling
    other points than rows (the GP tuners' unit cube) overrides :meth:`_point_of`,
    :meth:`_parameters_of` and :meth:`_add` and keeps its own storage.
    """

    name = "tuner"
    observation_columns: tuple[str, ...] = ("_losses",)
    parameter_errors: tuple[type[Exception], ...] = (ValueError,)  # parameters that fit no point of the space

    def _init_observations(self) -> None:
        self.space: Any = None
        self._rows: list = []
        self._losses: list[float] = []
        self._pending: dict[Any, Any] = {}

    def _set_space(self, space: Any) -> bool:
        """Adopt the ``FlatSpace`` ``space``; on a real change keep the observations that can be
        re-expressed in it, drop the others and forget pending trials. Returns whether it changed."""
        old, self.space = self.space, space
        if old is None or old.formatted == space.formatted:
            return False
        keep, rows = [], []
        for i, row in enumerate(self._rows):
            try:
                rows.append(space.from_parameters(old.to_parameters(row)))
            except ValueError:
                continue
            keep.append(i)
        self._rows = rows
        for column in self.observation_columns:
            values = getattr(self, column)
            setattr(self, column, [values[i] for i in keep])
        self._pending = {}
        return True

    def generate_parameters(self, parameter_id: Any, **kwargs: Any) -> dict:
        if self.space is None:
            raise RuntimeError(f"{self.name}: update_search_space() must be called before generate_parameters()")
        point = self._suggest()
        self._pending[parameter_id] = point
        return self._parameters_of(point)

    def receive_trial_result(self, parameter_id: Any, parameters: Any, value: Any, **kwargs: Any) -> None:
        # the point this tuner suggested, else (a customized or imported trial) where its parameters map to
        point = self._pending.pop(parameter_id, None)
        if point is None:
            if self.space is None:
                return
            try:
                point = self._point_of(parameters)
            except self.parameter_errors as err:
                _logger.warning("%s: ignoring result of %s: %s", self.name, parameter_id, err)
                return
        self._add(point, value)

    def trial_end(self, parameter_id: Any, success: bool, **kwargs: Any) -> None:
        # a failed trial stops being pending; a successful one was already moved by its result
        self._pending.pop(parameter_id, None)

    def import_data(self, data: list[dict]) -> int:
        """Use earlier results (``[{"parameter": {...}, "value": ...}]``); returns how many fitted the space."""
        if self.space is None:
            raise RuntimeError(f"{self.name}: update_search_space() must be called before import_data()")
        imported = 0
        for record in data:
            try:
                row = self._point_of(record["parameter"])
                self._add(row, record["value"])
            except (KeyError, TypeError) + self.parameter_errors as err:
                _logger.warning("%s: skipping imported record %r: %s", self.name, record, err)
                continue
            self._imported(row)
            imported += 1
        self._log_import(imported, len(data))
        return imported

    def _log_import(self, imported: int, total: int) -> None:
        _logger.info("%s: imported %d of %d records", self.name, imported, total)

    def _point_of(self, parameters: Any) -> Any:
        """The model's point for trial parameters (raises one of ``parameter_errors`` if none)."""
        return self.space.from_parameters(parameters)

    def _parameters_of(self, point: Any) -> dict:
        return self.space.to_parameters(point)

    def _add(self, row: Any, value: Any) -> None:
        """Record one result; computes everything before appending, so a bad value adds nothing."""
        loss = loss_of(value, self.optimize_mode)
        self._rows.append(row)
        self._losses.append(loss)

    def _imported(self, row: Any) -> None:
        """Called for each row ``import_data`` accepted (after :meth:`_add`)."""
