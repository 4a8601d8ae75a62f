"""A small random-search tuner: the reference implementation the contract suite is tested with.

It supports all ten ``_type``s and nested choices, validates the search space when it gets it,
and -- when every parameter is a (possibly nested) ``choice`` or a ``randint`` with at most
``max_enumerate`` combinations in all -- never repeats a configuration and raises
:class:`nni.NoMoreTrialError` once all were generated (imported data counts as generated).
"""
from __future__ import annotations

import itertools
import json
import random
from typing import Any

from ..tuner import Tuner
from ..utils import ClassArgsValidator, NoMoreTrialError, OptimizeMode, extract_scalar_reward
from ..common.hpo_utils import validate_search_space
from .search_space_check import random_parameters


class ReferenceRandomTunerValidator(ClassArgsValidator):
    def validate_class_args(self, **kwargs: Any) -> None:
        self.check(
            kwargs,
            optional={
                "optimize_mode": self.choices("optimize_mode", "maximize", "minimize"),
                "seed": self.range("seed", int, 0, None),
                "max_enumerate": self.range("max_enumerate", int, 1, None),
            },
        )


def _enumerate(spec: dict, limit: int) -> list | None:
    kind, args = spec["_type"], spec["_value"]
    if kind == "randint":
        upper = max(int(args[1]), int(args[0]) + 1)  # randint [n, n] is the constant n
        return list(range(int(args[0]), upper)) if upper - int(args[0]) <= limit else None
    if kind != "choice":
        return None
    out: list = []
    for option in args:
        if isinstance(option, dict) and "_name" in option:  # a dict without _name is a plain value
            combos = _enumerate_space({k: v for k, v in option.items() if isinstance(v, dict) and "_type" in v}, limit)
            if combos is None:
                return None
            for combo in combos:
                out.append({**option, **combo})
        else:
            out.append(option)
        if len(out) > limit:
            return None
    return out


def _enumerate_space(space: dict, limit: int) -> list[dict] | None:
    values = []
    for spec in space.values():
        v = _enumerate(spec, limit)
        if v is None:
            return None
        values.append(v)
    total = 1
    for v in values:
        total *= len(v)
        if total > limit:
            return None
    return [dict(zip(space, combo)) for combo in itertools.product(*values)]


class ReferenceRandomTuner(Tuner):
    """Random search over any NNI search space (see the module docstring)."""

    class_args_validator = ReferenceRandomTunerValidator

    def __init__(self, optimize_mode: str = "maximize", seed: int | None = None, max_enumerate: int = 100_000):
        self.optimize_mode = OptimizeMode(optimize_mode)
        self.rng = random.Random(seed)
        self.max_enumerate = max_enumerate
        self.space: dict | None = None
        self._remaining: list[dict] | None = None
        self._seen: set[str] = set()
        self.results: dict[int, float] = {}

    def update_search_space(self, search_space: dict) -> None:
        validate_search_space(search_space, raise_exception=True, algorithm_name="ReferenceRandomTuner")
        self.space = search_space
        combos = _enumerate_space(search_space, self.max_enumerate)
        if combos is not None:
            self.rng.shuffle(combos)
            combos = [c for c in combos if json.dumps(c, sort_keys=True) not in self._seen]
        self._remaining = combos

    def generate_parameters(self, parameter_id: int, **kwargs: Any) -> dict:
        if self.space is None:
            raise RuntimeError("update_search_space() must be called before generate_parameters()")
        if self._remaining is not None:
            if not self._remaining:
                raise NoMoreTrialError()
            params = self._remaining.pop()
        else:
            params = random_parameters(self.space, self.rng)
        self._seen.add(json.dumps(params, sort_keys=True))
        return params

    def receive_trial_result(self, parameter_id: int, parameters: Any, value: Any, **kwargs: Any) -> None:
        self.results[parameter_id] = extract_scalar_reward(value)

    def import_data(self, data: list[dict]) -> None:
        for item in data:
            extract_scalar_reward(item["value"])  # reject malformed values early
            key = json.dumps(item["parameter"], sort_keys=True)
            self._seen.add(key)
        if self._remaining is not None:
            self._remaining = [c for c in self._remaining if json.dumps(c, sort_keys=True) not in self._seen]
