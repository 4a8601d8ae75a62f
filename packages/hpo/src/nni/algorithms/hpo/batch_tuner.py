"""Batch tuner (builtin name ``BatchTuner``): run a user-given list of configurations.

The search space must be exactly::

    {"combine_params": {"_type": "choice", "_value": [{...}, {...}, ...]}}

Each element of ``_value`` is one complete configuration, sent as is, in order; then
:class:`nni.NoMoreTrialError`. No classArgs.

Decision (the docs do not say): :meth:`BatchTuner.import_data` marks configurations equal to an
imported ``parameter`` as done, so a resumed experiment does not run them again.
"""
from __future__ import annotations

import copy
import json
from typing import Any

from nni.tuner import Tuner
from nni.utils import ClassArgsValidator, NoMoreTrialError

__all__ = ["BatchTuner", "BatchClassArgsValidator"]

_KEY = "combine_params"


class BatchClassArgsValidator(ClassArgsValidator):
    def validate_class_args(self, **kwargs: Any) -> None:
        self.check(kwargs, optional={})


def _identity(params: Any) -> str:
    return json.dumps(params, sort_keys=True, default=str)


class BatchTuner(Tuner):
    """Send the configurations listed in ``combine_params`` one by one, in order.

    Example:
        >>> tuner = BatchTuner()
        >>> tuner.update_search_space({'combine_params': {'_type': 'choice', '_value': [{'lr': 0.1}, {'lr': 0.01}]}})
        >>> tuner.generate_parameters(0), tuner.generate_parameters(1)
        ({'lr': 0.1}, {'lr': 0.01})
    """

    class_args_validator = BatchClassArgsValidator
    supported_types = ("choice",)

    def __init__(self) -> None:
        self._values: list[Any] = []
        self._next = 0
        self._done: set[str] = set()

    def is_valid(self, search_space: dict) -> list | None:
        """The list of configurations if ``search_space`` has BatchTuner's shape, else ``None``."""
        try:
            self._check(search_space)
        except ValueError:
            return None
        return list(search_space[_KEY]["_value"])

    def _check(self, search_space: Any) -> None:
        if not isinstance(search_space, dict) or list(search_space) != [_KEY]:
            keys = ", ".join(map(repr, search_space)) if isinstance(search_space, dict) else type(search_space).__name__
            raise ValueError(f"BatchTuner: the search space must have the single key 'combine_params', got {keys}")
        spec = search_space[_KEY]
        if not isinstance(spec, dict) or spec.get("_type") != "choice":
            got = spec.get("_type") if isinstance(spec, dict) else spec
            raise ValueError(f"search space 'combine_params': type {got!r} is not supported by BatchTuner; supported: choice")
        if not isinstance(spec.get("_value"), list) or not spec["_value"]:
            raise ValueError("BatchTuner: search space 'combine_params._value' must be a non-empty list of configurations")

    def update_search_space(self, search_space: dict) -> None:
        self._check(search_space)
        self._values = copy.deepcopy(list(search_space[_KEY]["_value"]))
        self._next = 0

    def generate_parameters(self, parameter_id: Any, **kwargs: Any) -> Any:
        while self._next < len(self._values):
            params = self._values[self._next]
            self._next += 1
            if _identity(params) not in self._done:
                return copy.deepcopy(params)
        raise NoMoreTrialError(f"BatchTuner: all {len(self._values)} configurations have been sent")

    def receive_trial_result(self, parameter_id: Any, parameters: Any, value: Any, **kwargs: Any) -> None:
        """Results are not needed."""

    def import_data(self, data: list[dict]) -> None:
        for record in data:
            if isinstance(record, dict) and "parameter" in record:
                self._done.add(_identity(record["parameter"]))
