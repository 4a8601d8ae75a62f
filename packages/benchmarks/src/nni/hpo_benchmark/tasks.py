"""Benchmark tasks: an NNI search space and an objective to minimise.

Synthetic functions with known optima (Branin, Hartmann-6, Rosenbrock-5, a mixed categorical +
conditional function and Hartmann-3 with seeded observation noise) and two small real tasks
built from data that scikit-learn ships (a support-vector regressor on ``diabetes``, a random
forest on ``wine``), scored by 3-fold cross-validation. Both real tasks report a continuous
loss (MSE, log loss) rather than an error rate, whose ties would hide differences between
tuners.

A :class:`Task` separates what a tuner *observes* (:meth:`Task.observe`, noisy for the noisy
task) from what the benchmark *reports* (:meth:`Task.evaluate`, the noiseless value of a
configuration), so the best-so-far curve of a noisy task is the true value of the incumbent.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from . import space as _space


@dataclass
class Task:
    """One benchmark problem.

    Attributes:
        name: short identifier used on the command line.
        description: one line for tables and plots.
        search_space: NNI search-space JSON.
        function: noiseless objective ``params -> float`` (lower is better).
        optimum: the known global minimum, or ``None`` (real tasks).
        optimum_params: a parameter set reaching ``optimum`` (for tests), or ``None``.
        noise_sd: standard deviation of the Gaussian noise added to observations.
        synthetic: cheap closed-form function (``False`` for the scikit-learn tasks).
    """

    name: str
    description: str
    search_space: dict
    function: Callable[[dict], float]
    optimum: float | None = None
    optimum_params: dict | None = None
    noise_sd: float = 0.0
    synthetic: bool = True
    metric: str = "value"

    def evaluate(self, params: dict) -> float:
        """The noiseless objective of ``params`` (what the benchmark reports)."""
        return float(self.function(params))

    def observe(self, params: dict, rng: np.random.Generator) -> float:
        """What a tuner is told: the objective plus seeded noise for a noisy task."""
        value = self.evaluate(params)
        if self.noise_sd:
            value += float(rng.normal(0.0, self.noise_sd))
        return value


# ------------------------------------------------------------------------- synthetic
def branin(x1: float, x2: float) -> float:
    """Branin-Hoo on [-5, 10] x [0, 15]; global minimum 0.397887 at three points."""
    a, b, c = 1.0, 5.1 / (4 * math.pi ** 2), 5 / math.pi
    r, s, t = 6.0, 10.0, 1 / (8 * math.pi)
    return a * (x2 - b * x1 ** 2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H6_A = np.array([
    [10, 3, 17, 3.5, 1.7, 8],
    [0.05, 10, 17, 0.1, 8, 14],
    [3, 3.5, 1.7, 10, 17, 8],
    [17, 8, 0.05, 10, 0.1, 14],
])
_H6_P = 1e-4 * np.array([
    [1312, 1696, 5569, 124, 8283, 5886],
    [2329, 4135, 8307, 3736, 1004, 9991],
    [2348, 1451, 3522, 2883, 3047, 6650],
    [4047, 8828, 8732, 5743, 1091, 381],
])
_H3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_H3_P = 1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]])
HARTMANN6_ARGMIN = (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)
HARTMANN3_ARGMIN = (0.114614, 0.555649, 0.852547)


def hartmann(x: np.ndarray, a: np.ndarray, p: np.ndarray) -> float:
    x = np.asarray(x, dtype=float)
    return float(-np.sum(_H_ALPHA * np.exp(-np.sum(a * (x - p) ** 2, axis=1))))


def hartmann6(x) -> float:
    """Hartmann-6 on [0, 1]^6; global minimum -3.32237."""
    return hartmann(x, _H6_A, _H6_P)


def hartmann3(x) -> float:
    """Hartmann-3 on [0, 1]^3; global minimum -3.86278."""
    return hartmann(x, _H3_A, _H3_P)


def rosenbrock(x) -> float:
    """Rosenbrock; global minimum 0 at (1, ..., 1)."""
    x = np.asarray(x, dtype=float)
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


def _box(names, low, high) -> dict:
    return {n: {"_type": "uniform", "_value": [low, high]} for n in names}


_MIXED_SPACE = {
    "model": {"_type": "choice", "_value": [
        {"_name": "linear", "x": {"_type": "uniform", "_value": [-5, 5]}},
        {"_name": "poly", "x": {"_type": "uniform", "_value": [-5, 5]},
         "degree": {"_type": "randint", "_value": [1, 6]}},
        {"_name": "constant", "level": {"_type": "randint", "_value": [0, 5]}},
    ]},
    "color": {"_type": "choice", "_value": ["red", "green", "blue"]},
    "y": {"_type": "quniform", "_value": [0, 10, 1]},
    "lr": {"_type": "loguniform", "_value": [1e-4, 1.0]},
}
_COLOR_COST = {"red": 0.3, "green": 0.0, "blue": 0.6}


def mixed_conditional(p: dict) -> float:
    """A nested-choice function: three branches with their own parameters, plus shared ones.

    Minimum 0 at ``model = {poly, x = 1, degree = 3}``, ``color = green``, ``y = 7``,
    ``lr = 10 ** -2.5``; the ``linear`` branch bottoms out at 1, ``constant`` at 2.
    """
    model = p["model"]
    branch = model["_name"]
    if branch == "linear":
        g = 1.0 + 0.5 * (float(model["x"]) - 2.0) ** 2
    elif branch == "poly":
        g = 0.5 * (float(model["x"]) - 1.0) ** 2 + 0.25 * abs(int(model["degree"]) - 3)
    elif branch == "constant":
        g = 2.0 + 0.1 * int(model["level"])
    else:
        raise ValueError(f"model._name: unknown branch {branch!r}; allowed: linear, poly, constant")
    return (g + _COLOR_COST[p["color"]] + (float(p["y"]) - 7.0) ** 2 / 25.0
            + (math.log10(float(p["lr"])) + 2.5) ** 2 / 4.0)


# ------------------------------------------------------------------------------- real
def _round_sig(x: float, digits: int = 4) -> float:
    if x == 0 or not math.isfinite(x):
        return float(x)
    return float(round(x, digits - 1 - int(math.floor(math.log10(abs(x))))))


def _freeze(params: Any) -> Any:
    """A hashable cache key; continuous values rounded to 4 significant digits."""
    if isinstance(params, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in params.items()))
    if isinstance(params, (list, tuple)):
        return tuple(_freeze(v) for v in params)
    if isinstance(params, (float, np.floating)):
        return _round_sig(float(params))
    if isinstance(params, np.integer):
        return int(params)
    return params


def _thaw(key: Any) -> Any:
    if isinstance(key, tuple) and all(isinstance(k, tuple) and len(k) == 2 and isinstance(k[0], str) for k in key):
        return {k: _thaw(v) for k, v in key}
    return key


class CachedCV:
    """A cross-validated scikit-learn objective with a per-process cache.

    Parameters are rounded to 4 significant digits before evaluation, so the objective is a
    deterministic function of the cache key and repeated configurations (common with
    quantised spaces and converging tuners) cost nothing.
    """

    def __init__(self, build: Callable[[dict], Any], load: Callable[[], tuple], scoring: str,
                 stratified: bool = True):
        self._stratified = stratified
        self._build = build
        self._load = load
        self._scoring = scoring
        self._data: tuple | None = None
        self.cache: dict = {}
        self.evaluations = 0

    def __call__(self, params: dict) -> float:
        key = _freeze(params)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

        if self._data is None:
            self._data = self._load()
        x, y = self._data
        cv = (StratifiedKFold if self._stratified else KFold)(n_splits=3, shuffle=True, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning of capped SVR iterations
            scores = cross_val_score(self._build(_thaw(key)), x, y, cv=cv, scoring=self._scoring)
        value = float(-np.mean(scores)) if self._scoring.startswith("neg_") else float(1.0 - np.mean(scores))
        self.cache[key] = value
        self.evaluations += 1
        return value


def _load_diabetes() -> tuple:
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    return (x - x.mean(0)) / x.std(0), (y - y.mean()) / y.std()  # MSE 1.0 = predicting the mean


def _build_svr(p: dict):
    from sklearn.svm import SVR

    kernel = p["kernel"]
    kwargs: dict[str, Any] = {"C": float(p["C"]), "gamma": float(p["gamma"]), "epsilon": float(p["epsilon"]),
                              "kernel": kernel["_name"],
                              "max_iter": 3000}  # caps ill-conditioned poly fits at ~0.15 s
    if kernel["_name"] == "poly":
        kwargs["degree"] = int(kernel["degree"])
    if kernel["_name"] in ("poly", "sigmoid"):
        kwargs["coef0"] = float(kernel["coef0"])
    return SVR(**kwargs)


_SVR_SPACE = {
    "C": {"_type": "loguniform", "_value": [0.01, 1000.0]},
    "gamma": {"_type": "loguniform", "_value": [1e-4, 1.0]},
    "epsilon": {"_type": "loguniform", "_value": [1e-3, 1.0]},
    "kernel": {"_type": "choice", "_value": [
        {"_name": "rbf"},
        {"_name": "poly", "degree": {"_type": "randint", "_value": [2, 5]},
         "coef0": {"_type": "uniform", "_value": [0.0, 1.0]}},
        {"_name": "sigmoid", "coef0": {"_type": "uniform", "_value": [-1.0, 1.0]}},
    ]},
}


def _load_wine() -> tuple:
    from sklearn.datasets import load_wine

    return load_wine(return_X_y=True)


def _build_rf(p: dict):
    from sklearn.ensemble import RandomForestClassifier

    depth = int(p["max_depth"])
    return RandomForestClassifier(
        n_estimators=int(round(float(p["n_estimators"]))),
        max_depth=None if depth == 0 else depth,  # 0 means unlimited, as in NNI's RF benchmark space
        min_samples_leaf=int(p["min_samples_leaf"]),
        max_features=float(p["max_features"]),
        criterion=p["criterion"],
        random_state=0,
        n_jobs=1,
    )


_RF_SPACE = {
    "n_estimators": {"_type": "quniform", "_value": [2, 20, 2]},
    "max_depth": {"_type": "choice", "_value": [1, 2, 3, 4, 6, 8, 0]},
    # an ordered integer: the docs (SearchSpaceSpec, randint) say TPE and GridSearch treat randint as
    # unordered and "if you want all the tuners to respect the ordering, please use quniform with
    # q=1"; the Optuna adapter gives Optuna an ordered suggest_int, so both sides now solve the same problem
    "min_samples_leaf": {"_type": "quniform", "_value": [1, 8, 1]},
    "max_features": {"_type": "quniform", "_value": [0.1, 1.0, 0.1]},
    "criterion": {"_type": "choice", "_value": ["gini", "entropy"]},
}


# ---------------------------------------------------------------------------- registry
def _make_branin() -> Task:
    return Task(
        "branin", "Branin-Hoo, 2 continuous", _box(["x1"], -5.0, 10.0) | _box(["x2"], 0.0, 15.0),
        lambda p: branin(float(p["x1"]), float(p["x2"])),
        optimum=0.397887, optimum_params={"x1": math.pi, "x2": 2.275},
    )


def _make_hartmann6() -> Task:
    names = [f"x{i}" for i in range(1, 7)]
    return Task(
        "hartmann6", "Hartmann-6, 6 continuous", _box(names, 0.0, 1.0),
        lambda p: hartmann6([float(p[n]) for n in names]),
        optimum=-3.32237, optimum_params=dict(zip(names, HARTMANN6_ARGMIN)),
    )


def _make_rosenbrock5() -> Task:
    names = [f"x{i}" for i in range(1, 6)]
    return Task(
        "rosenbrock5", "Rosenbrock-5 on [-2.048, 2.048]^5", _box(names, -2.048, 2.048),
        lambda p: rosenbrock([float(p[n]) for n in names]),
        optimum=0.0, optimum_params={n: 1.0 for n in names},
    )


def _make_mixed() -> Task:
    return Task(
        "mixed_conditional", "nested choice (3 branches) + categorical + quniform + loguniform",
        _MIXED_SPACE, mixed_conditional, optimum=0.0,
        optimum_params={"model": {"_name": "poly", "x": 1.0, "degree": 3}, "color": "green",
                        "y": 7.0, "lr": 10 ** -2.5},
    )


def _make_noisy() -> Task:
    names = ["x1", "x2", "x3"]
    return Task(
        "noisy_hartmann3", "Hartmann-3 + N(0, 0.1^2) noise; reports the noiseless value",
        _box(names, 0.0, 1.0), lambda p: hartmann3([float(p[n]) for n in names]),
        optimum=-3.86278, optimum_params=dict(zip(names, HARTMANN3_ARGMIN)), noise_sd=0.1,
    )


def _make_svr() -> Task:
    return Task(
        "svr_diabetes", "SVR on diabetes, 3-fold CV MSE (standardised target); kernel is a nested choice",
        _SVR_SPACE, CachedCV(_build_svr, _load_diabetes, "neg_mean_squared_error", stratified=False),
        synthetic=False, metric="CV MSE",
    )


def _make_rf() -> Task:
    return Task(
        "rf_wine", "random forest on wine, 3-fold CV log loss", _RF_SPACE,
        CachedCV(_build_rf, _load_wine, "neg_log_loss"), synthetic=False, metric="CV log loss",
    )


TASK_FACTORIES: dict[str, Callable[[], Task]] = {
    "branin": _make_branin,
    "hartmann6": _make_hartmann6,
    "rosenbrock5": _make_rosenbrock5,
    "mixed_conditional": _make_mixed,
    "noisy_hartmann3": _make_noisy,
    "svr_diabetes": _make_svr,
    "rf_wine": _make_rf,
}
TASK_NAMES = tuple(TASK_FACTORIES)
QUICK_TASKS = ("branin", "hartmann6", "mixed_conditional")

_TASKS: dict[str, Task] = {}


def get_task(name: str) -> Task:
    """The task called ``name`` (one instance per process, so its evaluation cache is shared)."""
    if name not in TASK_FACTORIES:
        raise ValueError(f"--tasks: unknown task {name!r}; choose from {', '.join(TASK_NAMES)}")
    if name not in _TASKS:
        task = TASK_FACTORIES[name]()
        _space.validate(task.search_space, f"task {name}")
        _TASKS[name] = task
    return _TASKS[name]
