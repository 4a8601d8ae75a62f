"""SMAC tuner (builtin name ``SMAC``): sequential model-based optimisation with a random forest.

Example config::

    tuner:
      name: SMAC
      classArgs:
        optimize_mode: maximize
        config_dedup: false

The search space is translated to a ConfigSpace ``ConfigurationSpace`` (``choice`` ->
categorical, ``randint`` -> ordered integer, ``uniform``/``quniform`` -> float, ``loguniform`` ->
log-scaled float); the model works on ConfigSpace's vector encoding (numbers in ``[0, 1]``, on
the log scale for log parameters; option index for categoricals).

One suggestion follows SMAC's HPO facade:

* initial design: the ConfigSpace default configuration, then scrambled-Sobol points, until
  ``n_init`` (8) results are in;
* surrogate: a random forest of 10 bootstrapped trees (all features per split) on
  log-transformed, min-max-scaled costs, predictive variance from the spread of the trees;
* acquisition: log expected improvement (EI of the cost under the log-normal prediction);
  maximised by local search (one-exchange neighbourhoods: 4 Gaussian steps of sd 0.2 per
  numerical parameter, every other option of a categorical) from the 10 best configurations
  seen, interleaved with a random search over 1000 configurations;
* interleaving: with probability 0.2 the suggestion is a random configuration instead.

Decisions on what the docs leave open: SMAC3 itself is not used (its ``pyrfr`` dependency is a
source build needing swig); this is an implementation on scikit-learn's forest, whose splits
treat a categorical's option index as ordered. ``config_dedup: true`` never proposes a
configuration already proposed (or imported) and raises :class:`nni.NoMoreTrialError` once a
finite space is used up. Nested choices and the normal types are rejected, as in the docs'
support table. Extra classArg ``seed`` (int) makes runs reproducible.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from nni.tuner import Tuner
from nni.utils import ClassArgsValidator, NoMoreTrialError

from ._space import FlatSpace
from ._tuner_support import ObservationLog, check_search_space, parse_optimize_mode

__all__ = ["SMACTuner", "SMACClassArgsValidator"]

SMAC_TYPES = ("choice", "randint", "uniform", "quniform", "loguniform")

_N_TREES = 10
_RANDOM_PROB = 0.2  # SMAC's ChooserProb for the HPO facade
_N_RANDOM_CANDIDATES = 1000
_N_LOCAL_STARTS = 10
_MAX_LOCAL_STEPS = 30
_NEIGHBOUR_SD = 0.2
_NEIGHBOURS_PER_NUMERICAL = 4
_MAX_CATEGORICAL_NEIGHBOURS = 8


class SMACClassArgsValidator(ClassArgsValidator):
    def validate_class_args(self, **kwargs: Any) -> None:
        self.check(kwargs, optional={
            "optimize_mode": self.choices("optimize_mode", "maximize", "minimize"),
            "config_dedup": bool,
            "seed": self.range("seed", int, 0, None),
        })


class _Encoding:
    """FlatSpace rows <-> ConfigSpace vectors (one column per parameter)."""

    def __init__(self, space: FlatSpace, seed: int):
        try:
            from ConfigSpace import (CategoricalHyperparameter, ConfigurationSpace, UniformFloatHyperparameter,
                                     UniformIntegerHyperparameter)
        except ImportError:  # pragma: no cover - ConfigSpace is a dependency of nni-hpo
            raise ImportError("SMAC needs ConfigSpace: pip install ConfigSpace") from None
        self.space = space
        self.cs = ConfigurationSpace(seed=seed)
        self.hps: list[Any] = []  # None for a constant column
        self.kind: list[str] = []  # 'cat', 'int', 'float', 'log', 'const'
        for j, spec in enumerate(space.specs):
            name = f"{j}:{spec.name}"
            if j in space.constants or (spec.categorical and spec.size == 1):
                hp, kind = None, "const"
            elif spec.type == "choice":
                hp, kind = CategoricalHyperparameter(name, list(range(int(spec.size)))), "cat"
            elif spec.type == "randint":
                hp, kind = UniformIntegerHyperparameter(name, int(spec.low), int(spec.high) - 1), "int"
            elif spec.log_distributed:
                hp, kind = UniformFloatHyperparameter(name, math.exp(spec.low), math.exp(spec.high), log=True), "log"
            else:
                hp, kind = UniformFloatHyperparameter(name, float(spec.low), float(spec.high)), "float"
            if hp is not None:
                self.cs.add(hp)
            self.hps.append(hp)
            self.kind.append(kind)
        self.cat_sizes = [int(s.size) if k == "cat" else 0 for s, k in zip(space.specs, self.kind)]
        self.numerical = np.array([k in ("int", "float", "log") for k in self.kind], dtype=bool)

    def default_vector(self) -> np.ndarray:
        default = self.cs.get_default_configuration()
        vec = np.zeros(len(self.kind))
        for j, hp in enumerate(self.hps):
            if hp is not None:
                vec[j] = hp.to_vector(np.array([default[hp.name]], dtype=object if self.kind[j] == "cat" else float))[0]
        return self.snap(vec[None, :])[0]

    def to_rows(self, vecs: np.ndarray) -> np.ndarray:
        rows = np.zeros_like(vecs)
        for j, hp in enumerate(self.hps):
            kind = self.kind[j]
            if kind == "const":
                rows[:, j] = 0.0
            elif kind == "cat":
                rows[:, j] = np.round(vecs[:, j])
            else:
                values = np.asarray(hp.to_value(np.clip(vecs[:, j], 0.0, 1.0)), dtype=float)
                if kind == "int":
                    rows[:, j] = values - self.space.specs[j].low  # FlatSpace keeps randint as an index
                elif kind == "log":
                    rows[:, j] = np.log(values)
                else:
                    rows[:, j] = values
                rounder = self.space.dims[j].rounder
                if rounder is not None:
                    rows[:, j] = rounder(rows[:, j])
        return rows

    def to_vectors(self, rows: np.ndarray) -> np.ndarray:
        vecs = np.zeros_like(rows, dtype=float)
        for j, hp in enumerate(self.hps):
            kind = self.kind[j]
            if kind == "cat":
                vecs[:, j] = rows[:, j]
            elif kind == "int":
                vecs[:, j] = hp.to_vector(rows[:, j] + self.space.specs[j].low)
            elif kind == "log":
                vecs[:, j] = hp.to_vector(np.exp(rows[:, j]))
            elif kind == "float":
                vecs[:, j] = hp.to_vector(rows[:, j])
        return vecs

    def snap(self, vecs: np.ndarray) -> np.ndarray:
        """The vectors of what really gets returned (integers and ``q`` values rounded)."""
        return self.to_vectors(self.to_rows(vecs))

    def random(self, rng: np.random.Generator, n: int) -> np.ndarray:
        vecs = rng.random((n, len(self.kind)))
        for j, size in enumerate(self.cat_sizes):
            if size:
                vecs[:, j] = rng.integers(0, size, n)
        return self.snap(vecs)

    def neighbours(self, vecs: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One-exchange neighbours of every row of ``vecs``; returns (neighbours, origin index)."""
        out, origin = [], []
        for j, kind in enumerate(self.kind):
            if kind == "const":
                continue
            if kind == "cat":
                size = self.cat_sizes[j]
                for i, vec in enumerate(vecs):
                    others = [k for k in range(size) if k != int(vec[j])]
                    if len(others) > _MAX_CATEGORICAL_NEIGHBOURS:
                        others = list(rng.choice(others, _MAX_CATEGORICAL_NEIGHBOURS, replace=False))
                    for k in others:
                        new = vec.copy()
                        new[j] = k
                        out.append(new)
                        origin.append(i)
                continue
            step = rng.normal(0.0, _NEIGHBOUR_SD, (len(vecs), _NEIGHBOURS_PER_NUMERICAL))
            moved = np.clip(vecs[:, j][:, None] + step, 0.0, 1.0)
            for i, vec in enumerate(vecs):
                for value in moved[i]:
                    new = vec.copy()
                    new[j] = value
                    out.append(new)
                    origin.append(i)
        if not out:
            return np.empty((0, vecs.shape[1])), np.empty(0, dtype=int)
        return self.snap(np.array(out)), np.array(origin)


def _log_scaled(losses: np.ndarray) -> np.ndarray:
    """SMAC's log-scaled costs: min-max scaling with the minimum moved below the best, then log."""
    finite = losses[np.isfinite(losses)]
    if len(finite) == 0:
        return np.zeros(len(losses))
    worst = finite.max()
    y = np.where(np.isfinite(losses), losses, worst)  # a failed/NaN result counts as the worst seen
    lo, hi = y.min(), y.max()
    perc = np.percentile(y, 5)
    lo = lo - max(perc - lo, 1e-3 * (hi - lo), 1e-10)  # keep the best point off log(0)
    return np.log((y - lo) / (hi - lo if hi > lo else 1.0))


def _log_ei(mean: np.ndarray, var: np.ndarray, best: float) -> np.ndarray:
    """Expected improvement over ``exp(best)`` of a cost whose log is ``N(mean, var)``."""
    from scipy.special import ndtr

    std = np.sqrt(np.maximum(var, 1e-10))
    v = (best - mean) / std
    return np.exp(best) * ndtr(v) - np.exp(0.5 * var + mean) * ndtr(v - std)


class SMACTuner(ObservationLog, Tuner):
    """SMAC: random-forest SMBO (Hutter et al., 2011) over a ConfigSpace translation of the space.

    Args:
        optimize_mode: ``'maximize'`` (default) or ``'minimize'`` the reported metric.
        config_dedup: never propose a configuration already proposed (default ``False``).
        seed: random seed (``None``: not reproducible).

    Example:
        >>> tuner = SMACTuner(optimize_mode='minimize', seed=0)
        >>> tuner.update_search_space({'x': {'_type': 'uniform', '_value': [-1, 1]}})
        >>> params = tuner.generate_parameters(0)
        >>> tuner.receive_trial_result(0, params, params['x'] ** 2)
    """

    class_args_validator = SMACClassArgsValidator
    supported_types = SMAC_TYPES
    name = "SMAC"
    n_init = 8  # results before the forest is used

    def __init__(self, optimize_mode: str = "maximize", config_dedup: bool = False, seed: int | None = None):
        self.optimize_mode = parse_optimize_mode(optimize_mode, "SMAC")
        if not isinstance(config_dedup, bool):
            raise ValueError(f"SMAC: classArgs.config_dedup must be true or false, got {config_dedup!r}")
        self.config_dedup = config_dedup
        self.rng = np.random.default_rng(seed)
        self._seed = int(self.rng.integers(2**31 - 1))
        self._init_observations()
        self._enc: _Encoding | None = None
        self._proposed: set[tuple] = set()
        self._sobol: Any = None
        self._sent = 0

    # ------------------------------------------------------------------ Tuner API
    def update_search_space(self, search_space: dict) -> None:
        check_search_space(search_space, "SMAC", SMAC_TYPES, nested=False)
        space = FlatSpace(search_space)
        enc = _Encoding(space, self._seed)
        if self._set_space(space):
            self._proposed = {space.row_key(r) for r in self._rows}
        self._enc = enc
        self._sobol = None
        self._sent = 0

    def generate_parameters(self, parameter_id: Any, **kwargs: Any) -> dict:
        params = super().generate_parameters(parameter_id, **kwargs)
        self._proposed.add(self.space.row_key(self._pending[parameter_id]))
        self._sent += 1
        return params

    def _imported(self, row: np.ndarray) -> None:
        self._proposed.add(self.space.row_key(row))

    # ------------------------------------------------------------------ internals
    def _fresh(self, row: np.ndarray) -> bool:
        assert self.space is not None
        return not self.config_dedup or self.space.row_key(row) not in self._proposed

    def _initial(self) -> np.ndarray:
        assert self._enc is not None
        if (self._sent == 0 and not self._rows) or all(k == "const" for k in self._enc.kind):
            return self._enc.default_vector()
        if self._sobol is None:
            from scipy.stats import qmc

            self._sobol = qmc.Sobol(len(self._enc.kind), scramble=True, seed=self._seed)
        vec = self._sobol.random(1)[0]
        for j, size in enumerate(self._enc.cat_sizes):
            if size:
                vec[j] = min(int(vec[j] * size), size - 1)
        return self._enc.snap(vec[None, :])[0]

    def _suggest(self) -> np.ndarray:
        assert self.space is not None and self._enc is not None
        enc = self._enc
        if self.config_dedup and self.space.is_finite() and len(self._proposed) >= self.space.count():
            raise NoMoreTrialError(f"SMAC: all {self.space.count()} configurations of the search space have been proposed")
        if len(self._rows) < self.n_init:
            row = enc.to_rows(self._initial()[None, :])[0]
            return row if self._fresh(row) else self._random_fresh()
        if self.rng.random() < _RANDOM_PROB:
            row = enc.to_rows(enc.random(self.rng, 1))[0]
            return row if self._fresh(row) else self._random_fresh()
        ranked = enc.to_rows(self._maximise_acquisition())
        # like SMAC's intensifier on a deterministic problem: a configuration already proposed is
        # not run again while the acquisition offers another one (a forest predicts flat
        # plateaus, so the best seen point often ties with its surroundings)
        for row in ranked:
            if self.space.row_key(row) not in self._proposed:
                return row
        return ranked[0] if not self.config_dedup else self._random_fresh()

    def _random_fresh(self) -> np.ndarray:
        assert self.space is not None and self._enc is not None
        for _ in range(20):
            rows = self._enc.to_rows(self._enc.random(self.rng, 64))
            for row in rows:
                if self._fresh(row):
                    return row
        if self.space.is_finite():
            unseen = [r for r in self.space.enumerate_grid() if self._fresh(r)]
            if unseen:
                return unseen[int(self.rng.integers(len(unseen)))]
        raise NoMoreTrialError("SMAC: no configuration left that has not been proposed (config_dedup is on)")

    def _fit(self) -> Any:
        from sklearn.ensemble import RandomForestRegressor

        assert self._enc is not None
        x = self._enc.to_vectors(np.array(self._rows))
        y = _log_scaled(np.array(self._losses))
        forest = RandomForestRegressor(n_estimators=_N_TREES, bootstrap=True, max_features=1.0, min_samples_split=2,
                                       min_samples_leaf=1, random_state=int(self.rng.integers(2**31 - 1)))
        forest.fit(x, y)
        return forest, x, y

    @staticmethod
    def _predict(forest: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        per_tree = np.array([tree.predict(x) for tree in forest.estimators_])
        return per_tree.mean(axis=0), per_tree.var(axis=0)

    def _maximise_acquisition(self) -> np.ndarray:
        """Candidate vectors, best log-EI first (local search results, then random search)."""
        assert self._enc is not None
        enc = self._enc
        forest, x_seen, y_seen = self._fit()
        best = float(y_seen.min())

        def acq(vecs: np.ndarray) -> np.ndarray:
            mean, var = self._predict(forest, vecs)
            return _log_ei(mean, var, best)

        random_vecs = enc.random(self.rng, _N_RANDOM_CANDIDATES)
        random_acq = acq(random_vecs)
        # local search starts from the best configurations seen so far (by acquisition value)
        seen_acq = acq(x_seen)
        starts = x_seen[np.argsort(-seen_acq)[:_N_LOCAL_STARTS]]
        current, current_acq = starts.copy(), acq(starts)
        active = np.ones(len(current), dtype=bool)
        for _ in range(_MAX_LOCAL_STEPS):
            if not active.any():
                break
            idx = np.flatnonzero(active)
            neigh, origin = enc.neighbours(current[idx], self.rng)
            if len(neigh) == 0:
                break
            values = acq(neigh)
            for k, i in enumerate(idx):
                mine = origin == k
                if not mine.any():
                    active[i] = False
                    continue
                m = int(np.argmax(np.where(mine, values, -np.inf)))
                if values[m] > current_acq[i] + 1e-12:
                    current[i], current_acq[i] = neigh[m], values[m]
                else:
                    active[i] = False
        candidates = np.vstack([current, random_vecs])
        scores = np.concatenate([current_acq, random_acq])
        order = np.argsort(-scores, kind="stable")
        return candidates[order[:256]]
