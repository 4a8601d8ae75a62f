"""The 12 parametric learning-curve models of Domhan et al. (2015).

"Speeding up Automatic Hyperparameter Optimization of Deep Neural Networks by Extrapolation
of Learning Curves" (IJCAI 2015) combines these increasing, saturating families into one
model; :mod:`.modelfactory` fits and weights them.

Every function takes the epoch ``x`` (a float array, ``x >= 1``) first and its parameters
after it, and is vectorised over ``x``. The initial parameters suit curves whose values are
around ``0.1 .. 1`` (accuracies); the model factory scales the observed curve to that range
before fitting, so they are good starting points for other scales too.

``ilog2`` is ``c - a / ln(x + 1)`` here instead of the paper's ``c - a / ln(x)``: the paper's
form is infinite at the first epoch (``x = 1``), which every learning curve has.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


def vap(x, a, b, c):
    """Vapor pressure: ``exp(a + b / x + c * ln x)``."""
    return np.exp(a + b / x + c * np.log(x))


def pow3(x, c, a, alpha):
    """``c - a * x ** -alpha``."""
    return c - a * x ** (-alpha)


def linear(x, a, b):
    """``a * x + b``."""
    return a * x + b


def logx_linear(x, a, b):
    """``a * ln x + b``."""
    return a * np.log(x) + b


def dr_hill_zero_background(x, theta, eta, kappa):
    """Hill equation without background: ``theta * x**eta / (kappa**eta + x**eta)``."""
    return theta * x**eta / (kappa**eta + x**eta)


def log_power(x, a, b, c):
    """``a / (1 + (x / e**b) ** c)``."""
    return a / (1.0 + (x / np.exp(b)) ** c)


def pow4(x, alpha, a, b, c):
    """``c - (a * x + b) ** -alpha``."""
    return c - (a * x + b) ** (-alpha)


def mmf(x, alpha, beta, kappa, delta):
    """Morgan-Mercer-Flodin: ``alpha - (alpha - beta) / (1 + (kappa * x) ** delta)``."""
    return alpha - (alpha - beta) / (1.0 + (kappa * x) ** delta)


def exp4(x, c, a, b, alpha):
    """``c - exp(-a * x**alpha + b)``."""
    return c - np.exp(-a * x**alpha + b)


def ilog2(x, c, a):
    """``c - a / ln(x + 1)`` (shifted by one so that it is finite at ``x = 1``)."""
    return c - a / np.log(x + 1.0)


def weibull(x, alpha, beta, kappa, delta):
    """``alpha - (alpha - beta) * exp(-(kappa * x) ** delta)``."""
    return alpha - (alpha - beta) * np.exp(-((kappa * x) ** delta))


def janoschek(x, alpha, beta, kappa, delta):
    """``alpha - (alpha - beta) * exp(-kappa * x ** delta)``."""
    return alpha - (alpha - beta) * np.exp(-kappa * x**delta)


@dataclass(frozen=True)
class CurveModel:
    """One parametric curve family: its function, parameter names and starting point."""

    name: str
    func: Callable[..., np.ndarray]
    param_names: tuple[str, ...]
    init: tuple[float, ...]

    @property
    def n_params(self) -> int:
        return len(self.init)

    def __call__(self, x, params) -> np.ndarray:
        return self.func(np.asarray(x, dtype=float), *params)


CURVE_MODELS: tuple[CurveModel, ...] = (
    CurveModel("vap", vap, ("a", "b", "c"), (-0.622028, -0.470050, 0.042322)),
    CurveModel("pow3", pow3, ("c", "a", "alpha"), (0.84, 0.52, 0.01)),
    CurveModel("linear", linear, ("a", "b"), (1.0, 0.0)),
    CurveModel("logx_linear", logx_linear, ("a", "b"), (0.378106, 0.046506)),
    CurveModel(
        "dr_hill_zero_background",
        dr_hill_zero_background,
        ("theta", "eta", "kappa"),
        (0.772320, 0.586449, 2.460843),
    ),
    CurveModel("log_power", log_power, ("a", "b", "c"), (0.77, 2.98, -0.51)),
    CurveModel("pow4", pow4, ("alpha", "a", "b", "c"), (0.1, 200.0, 0.0, 0.8)),
    CurveModel("mmf", mmf, ("alpha", "beta", "kappa", "delta"), (0.7, 0.1, 0.01, 5.0)),
    CurveModel("exp4", exp4, ("c", "a", "b", "alpha"), (0.7, 0.8, -0.8, 0.3)),
    CurveModel("ilog2", ilog2, ("c", "a"), (0.78, 0.43)),
    CurveModel("weibull", weibull, ("alpha", "beta", "kappa", "delta"), (0.7, 0.1, 0.01, 1.0)),
    CurveModel("janoschek", janoschek, ("alpha", "beta", "kappa", "delta"), (0.73, 0.07, 0.355, 0.46)),
)
"""The 12 models, in the order of the paper's table."""

CURVE_MODEL_NAMES: tuple[str, ...] = tuple(model.name for model in CURVE_MODELS)
