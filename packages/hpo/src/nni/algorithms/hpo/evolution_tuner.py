"""Naive evolution tuner (builtin name ``Evolution``), after "Large-Scale Evolution of Image
Classifiers" (Real et al., 2017).

Scheme (the docs'): the first ``population_size`` configurations are random; from then on each
request runs a tournament: two random individuals of the evaluated population are compared, the
worse one is removed, and a copy of the better one with exactly one randomly chosen
hyper-parameter re-sampled becomes the new trial. When that trial reports its result it joins the
population. Nested choices are handled: re-sampling a choice re-samples the sub-space of the
newly chosen branch.

Decisions on the docs' contradictions and gaps:

* ``population_size`` defaults to 32 (the API signature) rather than 20 (the user guide).
* When fewer than two individuals have results (concurrency close to ``population_size``), the
  docs say the tuner "will fail"; this tuner sends a random configuration instead and logs a
  warning, so the experiment keeps going.
* A failed trial (``trial_end(success=False)``) never joins the population; the next request
  refills the population with a random configuration, as the API text describes.
* ``import_data`` adds the imported trials to the population (keeping the best
  ``population_size`` of them).
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from nni.tuner import Tuner
from nni.utils import ClassArgsValidator

from ._space import FlatSpace
from ._tuner_support import ALL_TYPES, check_search_space, loss_of, parse_optimize_mode, row_of_result

__all__ = ["EvolutionTuner", "EvolutionClassArgsValidator"]

_logger = logging.getLogger(__name__)


class EvolutionClassArgsValidator(ClassArgsValidator):
    def validate_class_args(self, **kwargs: Any) -> None:
        self.check(kwargs, optional={
            "optimize_mode": self.choices("optimize_mode", "maximize", "minimize"),
            "population_size": self.range("population_size", int, 2, 99999),
            "seed": self.range("seed", int, 0, None),
        })


class EvolutionTuner(Tuner):
    """Naive evolution with tournament selection of two and one-parameter mutation.

    Args:
        optimize_mode: ``'maximize'`` (default) or ``'minimize'``.
        population_size: size of the random initial population (default 32); should be well
            above the trial concurrency.
        seed: random seed (``None``: not reproducible).
    """

    class_args_validator = EvolutionClassArgsValidator
    supported_types = ALL_TYPES

    def __init__(self, optimize_mode: str = "maximize", population_size: int = 32, seed: int | None = None):
        self.optimize_mode = parse_optimize_mode(optimize_mode, "Evolution")
        if not isinstance(population_size, int) or isinstance(population_size, bool) or population_size < 2:
            raise ValueError(f"Evolution: classArgs.population_size must be an int >= 2, got {population_size!r}")
        self.population_size = population_size
        self.rng = np.random.default_rng(seed)
        self.space: FlatSpace | None = None
        self.population: list[tuple[np.ndarray, float]] = []  # evaluated individuals (row, loss)
        self._running: dict[Any, np.ndarray] = {}

    def update_search_space(self, search_space: dict) -> None:
        check_search_space(search_space, "Evolution", self.supported_types, nested=True)
        old = self.space
        self.space = FlatSpace(search_space)
        if old is not None:
            kept = []
            for row, loss in self.population:
                try:
                    kept.append((self.space.from_parameters(old.to_parameters(row)), loss))
                except ValueError:
                    continue
            self.population = kept
            self._running = {}

    def generate_parameters(self, parameter_id: Any, **kwargs: Any) -> dict:
        if self.space is None:
            raise RuntimeError("Evolution: update_search_space() must be called before generate_parameters()")
        if len(self.population) + len(self._running) < self.population_size:
            row = self.space.sample(self.rng, 1)[0]
        elif len(self.population) < 2:
            _logger.warning("Evolution: fewer than two evaluated individuals (population_size %d is too small "
                            "for the trial concurrency); sending a random configuration", self.population_size)
            row = self.space.sample(self.rng, 1)[0]
        else:
            i, j = self.rng.choice(len(self.population), size=2, replace=False)
            better, worse = (i, j) if self.population[i][1] <= self.population[j][1] else (j, i)
            parent = self.population[better][0]
            del self.population[worse]
            row = self.space.mutate(parent, self.rng)
        self._running[parameter_id] = row
        return self.space.to_parameters(row)

    def receive_trial_result(self, parameter_id: Any, parameters: Any, value: Any, **kwargs: Any) -> None:
        row = row_of_result(self._running, self.space, parameter_id, parameters, "Evolution")
        if row is None:
            return
        self.population.append((row, loss_of(value, self.optimize_mode)))

    def trial_end(self, parameter_id: Any, success: bool, **kwargs: Any) -> None:
        # without a result (failed, stopped) the individual is dropped; the next request refills
        self._running.pop(parameter_id, None)

    def import_data(self, data: list[dict]) -> None:
        if self.space is None:
            raise RuntimeError("Evolution: update_search_space() must be called before import_data()")
        for record in data:
            try:
                row = self.space.from_parameters(record["parameter"])
                self.population.append((row, loss_of(record["value"], self.optimize_mode)))
            except (KeyError, TypeError, ValueError) as err:
                _logger.warning("Evolution: skipping imported record %r: %s", record, err)
        if len(self.population) > self.population_size:
            self.population.sort(key=lambda item: item[1])
            self.population = self.population[:self.population_size]
