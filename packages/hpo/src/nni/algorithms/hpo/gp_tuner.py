"""Gaussian-process Bayesian optimisation (builtin name ``GPTuner``).

Example config::

    tuner:
      name: GPTuner
      classArgs:
        optimize_mode: maximize
        utility: ei
        kappa: 5
        xi: 0
        nu: 2.5
        alpha: 0.000001
        cold_start_num: 10
        selection_num_warm_up: 10000
        selection_num_starting_points: 250

Search-space types: ``choice`` (numbers only), ``randint``, ``uniform``, ``quniform``,
``loguniform``, ``qloguniform``; no nested choices (the support table of the v2.5 docs).

Decisions on points the NNI v2.5 docs leave open:

* The model is scikit-learn's ``GaussianProcessRegressor`` with ``ConstantKernel * Matern(nu)``,
  one length scale per parameter, fitted by maximum marginal likelihood; ``alpha`` is added to
  the diagonal of the kernel matrix of the *normalised* targets (mean 0, std 1). ``xi`` is in
  the same normalised units (``xi: 0.01`` asks for an improvement of 1 % of the spread of the
  results seen so far); ``kappa`` multiplies the normalised standard deviation.
* Parameters live in the unit cube: log types on the log scale, ``randint`` and numerical
  ``choice`` by the rank of their value; discrete and quantized values are snapped after the
  acquisition has been maximised, and a snapped point that was already tried (or is running)
  gives way to the next best candidate.
* The first ``cold_start_num`` configurations are random draws that keep away from the points
  already tried; imported data counts towards them.
* The acquisition is maximised over ``selection_num_warm_up`` uniform random points (one
  vectorised batch), then L-BFGS-B runs from the best ``selection_num_starting_points`` of them,
  all at once (one joint problem with a budget of 15 evaluations, so it costs about as much as
  a single start).
  ``selection_num_warm_up`` defaults to **10 000**, not the documented 100 000: scoring 100 000
  points under a 100-observation GP costs 0.3-0.6 s of CPU on its own (measured), against a target
  of 150 ms per suggestion, and 10 000 points followed by L-BFGS-B reached the same Branin
  results. A configured value is honoured.
* Running trials are counted at the model's mean ("kriging believer") so that concurrent
  suggestions differ. Failed results (NaN) count as the worst result seen.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from nni.tuner import Tuner
from nni.utils import ClassArgsValidator

from ._gp_core import NUMERIC_TYPES, GpTunerBase, acquisition, acquisition_grad, first_new, maximize
from ._tuner_support import parse_optimize_mode

__all__ = ["GPTuner", "GPClassArgsValidator"]

_logger = logging.getLogger(__name__)


class GPClassArgsValidator(ClassArgsValidator):
    def validate_class_args(self, **kwargs: Any) -> None:
        self.check(kwargs, optional={
            "optimize_mode": self.choices("optimize_mode", "maximize", "minimize"),
            "utility": self.choices("utility", "ei", "ucb", "poi"),
            "kappa": self.range("kappa", float, 0, None),
            "xi": self.range("xi", float, 0, None),
            "nu": self.range("nu", float, 1e-3, None),
            "alpha": self.range("alpha", float, 0, None),
            "cold_start_num": self.range("cold_start_num", int, 0, None),
            "selection_num_warm_up": self.range("selection_num_warm_up", float, 1, None),
            "selection_num_starting_points": self.range("selection_num_starting_points", float, 1, None),
            "seed": self.range("seed", int, 0, None),
        })


def _count(value: Any, key: str) -> int:
    # the docs write selection_num_warm_up as 1e5, which YAML may give as a float
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 1 or value != int(value):
        raise ValueError(f"GPTuner: classArgs.{key} must be a whole number >= 1, got {value!r}")
    return int(value)


class GPTuner(GpTunerBase, Tuner):
    """Bayesian optimisation with a Gaussian-process surrogate and an ``ei``/``ucb``/``poi`` acquisition.

    Args:
        optimize_mode: ``'maximize'`` (default) or ``'minimize'`` the reported metric.
        utility: acquisition: ``'ei'`` expected improvement (default), ``'ucb'`` upper confidence
            bound, ``'poi'`` probability of improvement.
        kappa: exploration weight of ``ucb`` (default 5).
        xi: required improvement of ``ei`` and ``poi``, in normalised units (default 0).
        nu: smoothness of the Matern kernel (default 2.5).
        alpha: noise added to the kernel diagonal (default 1e-6).
        cold_start_num: random configurations before the model is used (default 10).
        selection_num_warm_up: random points scored when maximising the acquisition (default 10000,
            see the module docstring).
        selection_num_starting_points: L-BFGS-B starting points (default 250).
        seed: random seed (``None``: not reproducible).

    Example:
        >>> tuner = GPTuner(optimize_mode='minimize', cold_start_num=3, seed=0)
        >>> tuner.update_search_space({'x': {'_type': 'uniform', '_value': [-1, 1]}})
        >>> for i in range(5):
        ...     p = tuner.generate_parameters(i)
        ...     tuner.receive_trial_result(i, p, p['x'] ** 2)
    """

    class_args_validator = GPClassArgsValidator
    supported_types = NUMERIC_TYPES
    name = "GPTuner"

    def __init__(self, optimize_mode: str = "maximize", utility: str = "ei", kappa: float = 5, xi: float = 0,
                 nu: float = 2.5, alpha: float = 1e-6, cold_start_num: int = 10, selection_num_warm_up: int = 10000,
                 selection_num_starting_points: int = 250, seed: int | None = None):
        self.optimize_mode = parse_optimize_mode(optimize_mode, "GPTuner")
        if utility not in ("ei", "ucb", "poi"):
            raise ValueError(f"GPTuner: classArgs.utility must be 'ei', 'ucb' or 'poi', got {utility!r}")
        self.utility = utility
        self.kappa = float(kappa)
        self.xi = float(xi)
        self.nu = float(nu)
        self.alpha = float(alpha)
        self.cold_start_num = _count(cold_start_num, "cold_start_num") if cold_start_num else 0
        self.selection_num_warm_up = _count(selection_num_warm_up, "selection_num_warm_up")
        self.selection_num_starting_points = _count(selection_num_starting_points, "selection_num_starting_points")
        self.rng = np.random.default_rng(seed)
        self._init_state()

    def _model_suggest(self, x: np.ndarray, y: np.ndarray, taken: set) -> np.ndarray | None:
        gp = self._fit(x, y, optimize=not self._believer)
        best = float(gp.normalise(y.max()))

        def acq(points: np.ndarray) -> np.ndarray:
            mu, sd = gp.predict(points)
            return acquisition(self.utility, mu, sd, best, self.kappa, self.xi)

        def acq_grad(points: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
            model = gp.predict_grad(points)
            return None if model is None else acquisition_grad(self.utility, *model, best, self.kappa, self.xi)

        # the observed points perturbed a little: the acquisition optimum is often close to one
        local = np.clip(x[None] + self.rng.normal(0, 0.02, (4,) + x.shape), 0, 1).reshape(-1, x.shape[1])
        candidates, _ = maximize(acq, self.box.dim, self.rng, self.selection_num_warm_up,
                                 self.selection_num_starting_points, extra=local, func_grad=acq_grad)
        return first_new(candidates, self.box, taken)

    def acquisition_values(self, points: list[dict]) -> np.ndarray:
        """The acquisition at configurations ``points`` under the current model (for inspection)."""
        x, y = self._data()
        gp = self._fit(x, y)
        u = np.array([self.box.from_parameters(p) for p in points])
        mu, sd = gp.predict(u)
        return acquisition(self.utility, mu, sd, float(gp.normalise(y.max())), self.kappa, self.xi)
