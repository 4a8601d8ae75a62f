"""Grid search tuner (builtin name ``GridSearch``).

Sends every point of the grid exactly once, then raises :class:`nni.NoMoreTrialError`.
Accepted types, as the v2.5 docs list them: ``choice`` (nested choices included), ``randint``
and ``quniform``; any other type is rejected by :meth:`GridSearchTuner.update_search_space`
with the parameter and the type named. No classArgs.

Decisions on the docs' contradictions:

* Nested ``choice``: the docs' prose says GridSearch supports it, the (lost) support table does
  not; it is supported: each branch contributes the grid of its own sub-space.
* ``quniform [low, high, q]``: the API text says "low, then each value ``q`` larger", the
  search-space spec says ``clip(round(x / q) * q, low, high)``, and a release note says the two
  meanings were reconciled. The grid is the set of values the formula can produce:
  ``low``, every multiple of ``q`` strictly between, and ``high`` (``[0, 10, 2.5]`` gives
  0, 2.5, 5, 7.5, 10; ``[2, 10, 5]`` gives 2, 5, 10), so GridSearch and the other tuners agree.
* ``randint [low, high)``: every integer, ``high`` excluded.
* ``import_data``: imported configurations count as already evaluated and are not sent again.
"""
from __future__ import annotations

import logging
from typing import Any

from nni.tuner import Tuner
from nni.utils import ClassArgsValidator, NoMoreTrialError

from ._space import FlatSpace
from ._tuner_support import check_search_space

__all__ = ["GridSearchTuner", "GridSearchClassArgsValidator"]

_logger = logging.getLogger(__name__)


class GridSearchClassArgsValidator(ClassArgsValidator):
    def validate_class_args(self, **kwargs: Any) -> None:
        self.check(kwargs, optional={})


class GridSearchTuner(Tuner):
    """Exhaustive search over ``choice``, ``randint`` and ``quniform`` parameters.

    The grid is the cartesian product of every parameter's values (the last parameter varies
    fastest); a nested choice option contributes the grid of its sub-space.

    Example:
        >>> tuner = GridSearchTuner()
        >>> tuner.update_search_space({'x': {'_type': 'quniform', '_value': [0, 1, 0.5]}})
        >>> [tuner.generate_parameters(i)['x'] for i in range(3)]
        [0.0, 0.5, 1.0]
    """

    class_args_validator = GridSearchClassArgsValidator
    supported_types = ("choice", "randint", "quniform")

    def __init__(self) -> None:
        self.space: FlatSpace | None = None
        self.grid: list = []
        self._next = 0
        self._done: set[tuple] = set()

    def update_search_space(self, search_space: dict) -> None:
        check_search_space(search_space, "GridSearch", self.supported_types, nested=True)
        self.space = FlatSpace(search_space)
        self.grid = list(self.space.enumerate_grid())
        self._next = 0  # configurations sent under an earlier space stay in _done
        _logger.info("GridSearch: %d configurations", len(self.grid))

    def generate_parameters(self, parameter_id: Any, **kwargs: Any) -> dict:
        if self.space is None:
            raise RuntimeError("GridSearch: update_search_space() must be called before generate_parameters()")
        while self._next < len(self.grid):
            row = self.grid[self._next]
            self._next += 1
            params = self.space.to_parameters(row)
            key = _identity(params)
            if key not in self._done:
                self._done.add(key)
                return params
        raise NoMoreTrialError(f"GridSearch: all {len(self.grid)} configurations of the grid have been sent")

    def receive_trial_result(self, parameter_id: Any, parameters: Any, value: Any, **kwargs: Any) -> None:
        """GridSearch does not need results."""

    def import_data(self, data: list[dict]) -> None:
        if self.space is None:
            raise RuntimeError("GridSearch: update_search_space() must be called before import_data()")
        for record in data:
            try:
                # canonical form (e.g. 5 and 5.0 for a quniform value are the same point)
                params = self.space.to_parameters(self.space.from_parameters(record["parameter"]))
            except (KeyError, TypeError, ValueError) as err:
                _logger.warning("GridSearch: skipping imported record %r: %s", record, err)
                continue
            self._done.add(_identity(params))


def _identity(params: Any) -> str:
    import json

    return json.dumps(params, sort_keys=True, default=str)
