"""Random search tuner (builtin name ``Random``).

Samples every parameter from its own distribution as the search-space spec defines it:
uniform for ``uniform``/``randint``/``choice``, log-uniform for ``loguniform``, normal for the
normal types, ``clip(round(x / q) * q, low, high)`` for ``q`` types, nested choices included.

Decisions on what the NNI v2.5 docs leave open: the docs give ``Random`` no classArgs of its own
(it used to be a hyperopt wrapper); it accepts ``optimize_mode`` (ignored: random search does not
look at results) and ``seed``. In a finite space (only ``choice``, ``randint`` and bounded ``q``
types) no configuration is sent twice, and :class:`nni.NoMoreTrialError` is raised once all have
been sent (or imported).
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from nni.tuner import Tuner
from nni.utils import ClassArgsValidator, NoMoreTrialError

from ._space import FlatSpace
from ._tuner_support import ALL_TYPES, check_search_space, parse_optimize_mode

__all__ = ["RandomTuner", "RandomClassArgsValidator"]

_logger = logging.getLogger(__name__)

# enumerate the unsent configurations of a finite space when rejection sampling stalls
_MAX_ENUMERATION = 2_000_000


class RandomClassArgsValidator(ClassArgsValidator):
    def validate_class_args(self, **kwargs: Any) -> None:
        self.check(kwargs, optional={
            "optimize_mode": self.choices("optimize_mode", "maximize", "minimize"),
            "seed": self.range("seed", int, 0, None),
        })


class RandomTuner(Tuner):
    """Random search, without repeats in finite spaces.

    Args:
        optimize_mode: accepted for compatibility (``'maximize'`` or ``'minimize'``); unused.
        seed: random seed (``None``: not reproducible).

    Example:
        >>> tuner = RandomTuner(seed=1)
        >>> tuner.update_search_space({'k': {'_type': 'choice', '_value': ['a', 'b']}})
        >>> sorted(tuner.generate_parameters(i)['k'] for i in range(2))
        ['a', 'b']
    """

    class_args_validator = RandomClassArgsValidator
    supported_types = ALL_TYPES

    def __init__(self, optimize_mode: str = "maximize", seed: int | None = None):
        self.optimize_mode = parse_optimize_mode(optimize_mode, "Random")
        self.rng = np.random.default_rng(seed)
        self.space: FlatSpace | None = None
        self._finite = False
        self._total = 0
        self._seen: set[tuple] = set()

    def update_search_space(self, search_space: dict) -> None:
        check_search_space(search_space, "Random", self.supported_types, nested=True)
        self.space = FlatSpace(search_space)
        self._finite = self.space.is_finite()
        self._total = self.space.count() if self._finite else 0
        self._seen = set()

    def generate_parameters(self, parameter_id: Any, **kwargs: Any) -> dict:
        if self.space is None:
            raise RuntimeError("Random: update_search_space() must be called before generate_parameters()")
        if not self._finite:
            return self.space.to_parameters(self.space.sample(self.rng, 1)[0])
        if len(self._seen) >= self._total:
            raise NoMoreTrialError(f"Random: all {self._total} configurations of the search space have been sent")
        row = None
        for _ in range(64):
            candidate = self.space.sample(self.rng, 1)[0]
            if self.space.row_key(candidate) not in self._seen:
                row = candidate
                break
        if row is None:
            row = self._pick_unseen()
        self._seen.add(self.space.row_key(row))
        return self.space.to_parameters(row)

    def _pick_unseen(self) -> np.ndarray:
        assert self.space is not None
        if self._total > _MAX_ENUMERATION:  # pragma: no cover - needs a huge, nearly exhausted space
            _logger.warning("Random: space too large to enumerate; a configuration may repeat")
            return self.space.sample(self.rng, 1)[0]
        grid = self.space.enumerate_grid()
        unseen = [row for row in grid if self.space.row_key(row) not in self._seen]
        return unseen[int(self.rng.integers(len(unseen)))]

    def receive_trial_result(self, parameter_id: Any, parameters: Any, value: Any, **kwargs: Any) -> None:
        """Random search ignores results."""

    def import_data(self, data: list[dict]) -> None:
        """Imported configurations count as sent (finite spaces never repeat them)."""
        if self.space is None or not self._finite:
            return
        for record in data:
            try:
                self._seen.add(self.space.row_key(self.space.from_parameters(record["parameter"])))
            except (KeyError, TypeError, ValueError) as err:
                _logger.warning("Random: skipping imported record %r: %s", record, err)
