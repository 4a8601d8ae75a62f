"""Gaussian-process machinery shared by :mod:`.gp_tuner` and :mod:`.metis_tuner` (not public API).

* :class:`UnitBox` maps a flat, numerical search space onto the unit cube ``[0, 1]^d`` (one
  column per non-constant parameter): ``uniform``/``quniform`` linearly, ``loguniform``/
  ``qloguniform`` linearly in ``log``, ``randint`` and numerical ``choice`` by the *rank* of the
  value (options sorted by value, evenly spaced), so distances follow the order of the values.
  Quantized and discrete columns are snapped when a point becomes parameters, and the model is
  fitted on the snapped points that were really evaluated.
* :class:`FittedGP` is scikit-learn's ``GaussianProcessRegressor`` (constant x Matern kernel with
  one length scale per dimension, targets normalised to mean 0 / std 1) plus a vectorised
  ``predict`` that reuses the inverse kernel matrix, so 100 000 warm-up points cost one
  matrix product.
* :func:`maximize` maximises an acquisition: random warm-up points, then L-BFGS-B from the best
  of them, all starting points optimised together as one problem (the acquisition of each point
  is independent, so the joint gradient is block-wise). The gradients are analytic for Matern
  ``nu`` in 0.5, 1.5, 2.5 and infinity (:meth:`FittedGP.predict_grad`, :func:`acquisition_grad`):
  one kernel evaluation per step instead of ``d + 1`` forward differences, which remain for
  other ``nu``. The joint problem gets a budget of 15 function evaluations: enough to polish the
  warm-up optima, and it bounds the latency (measured: more evaluations did not improve the
  Branin results).
* Latency (one suggestion after 100 observations, 6 parameters): the warm-up points are scored
  in cache-sized chunks with the kernel computed in place, the BLAS thread limit uses one
  ``ThreadpoolController`` per process, and the last optimised fit is reused while the data is
  unchanged (suggestions for concurrent trials).
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Callable

import numpy as np

from ._space import FlatSpace
from ._tuner_support import ObservationLog, check_numeric_choices, check_search_space, loss_of

NUMERIC_TYPES = ("choice", "randint", "uniform", "quniform", "loguniform", "qloguniform")


class UnitBox:
    """The non-constant columns of a :class:`FlatSpace` as the unit cube."""

    def __init__(self, space: FlatSpace):
        self.space = space
        self.columns: list[int] = []
        self._levels: list[np.ndarray | None] = []  # internal values of a discrete column, by rank
        for j, spec in enumerate(space.specs):
            if j in space.constants or (spec.categorical and spec.size == 1):
                continue
            self.columns.append(j)
            if spec.type == "choice":
                order = np.argsort(np.array(spec.values, dtype=float), kind="stable")
                self._levels.append(order.astype(float))  # rank r -> option index
            elif spec.type == "randint":
                self._levels.append(np.arange(int(spec.size), dtype=float))
            else:
                self._levels.append(None)
        self.dim = len(self.columns)

    def _span(self, k: int) -> tuple[float, float]:
        spec = self.space.specs[self.columns[k]]
        return float(spec.low), float(spec.high)

    def snap(self, u: np.ndarray) -> np.ndarray:
        """Points of the cube moved to the nearest point the space can really produce."""
        u = np.clip(np.asarray(u, dtype=float), 0.0, 1.0).copy()
        for k, levels in enumerate(self._levels):
            if levels is not None:
                n = len(levels)
                u[..., k] = np.round(u[..., k] * (n - 1)) / (n - 1)
        for k, j in enumerate(self.columns):
            rounder = self.space.dims[j].rounder
            if self._levels[k] is None and rounder is not None:
                lo, hi = self._span(k)
                u[..., k] = (rounder(lo + u[..., k] * (hi - lo)) - lo) / (hi - lo)
        return np.clip(u, 0.0, 1.0)

    def to_row(self, u: np.ndarray) -> np.ndarray:
        """A :class:`FlatSpace` row (internal values) for one point of the cube."""
        u = self.snap(u)
        row = np.zeros(len(self.space.dims))
        for k, j in enumerate(self.columns):
            levels = self._levels[k]
            if self.space.specs[j].categorical:
                row[j] = levels[int(round(u[k] * (len(levels) - 1)))]
            else:
                lo, hi = self._span(k)
                row[j] = lo + u[k] * (hi - lo)
        return row

    def from_row(self, row: np.ndarray) -> np.ndarray:
        u = np.zeros(self.dim)
        for k, j in enumerate(self.columns):
            levels = self._levels[k]
            if self.space.specs[j].categorical:
                rank = int(np.flatnonzero(levels == round(row[j]))[0])
                u[k] = rank / (len(levels) - 1)
            else:
                lo, hi = self._span(k)
                u[k] = (row[j] - lo) / (hi - lo)
        return np.clip(u, 0.0, 1.0)

    def to_parameters(self, u: np.ndarray) -> dict:
        return self.space.to_parameters(self.to_row(u))

    def from_parameters(self, parameters: dict) -> np.ndarray:
        return self.from_row(self.space.from_parameters(parameters))


def _short_lbfgs(obj_func: Callable, initial_theta: np.ndarray, bounds: np.ndarray) -> tuple[np.ndarray, float]:
    """Marginal-likelihood optimiser for a warm start: the previous optimum moves little with one
    more observation, so a few L-BFGS-B steps suffice (a full run is a third of a suggestion's time)."""
    from scipy.optimize import minimize

    result = minimize(obj_func, initial_theta, jac=True, method="L-BFGS-B", bounds=bounds,
                      options={"maxiter": 15, "maxfun": 20})
    return result.x, float(result.fun)


class FittedGP:
    """A GP fitted on ``x`` (unit cube) and ``y`` (higher is better), targets normalised."""

    def __init__(self, x: np.ndarray, y: np.ndarray, nu: float, alpha: float, seed: int,
                 kernel: Any = None, optimize: bool = True):
        from scipy.linalg import cho_solve
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern

        self.mean = float(np.mean(y))
        self.scale = float(np.std(y)) or 1.0
        yn = (y - self.mean) / self.scale
        d = x.shape[1]
        restarts = 0
        if kernel is None:
            kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(length_scale=np.full(d, 0.5),
                                                               length_scale_bounds=(1e-2, 1e2), nu=nu)
            restarts = 1
        # warm-started from the previous fit, one local optimisation of the marginal likelihood suffices
        optimizer: Any = None
        if optimize:
            optimizer = "fmin_l_bfgs_b" if restarts else _short_lbfgs
        self.gp = GaussianProcessRegressor(kernel=kernel, alpha=alpha, normalize_y=False, optimizer=optimizer,
                                           n_restarts_optimizer=restarts, random_state=seed)
        with warnings.catch_warnings():
            # bounds reached / convergence chatter of the marginal-likelihood optimiser
            warnings.simplefilter("ignore")
            self.gp.fit(x, yn)
        self.x = x
        self.kernel = self.gp.kernel_
        self.alpha_vec = self.gp.alpha_
        n = len(x)
        self.k_inv = cho_solve((self.gp.L_, True), np.eye(n))
        self.prior_var = float(self.kernel.diag(x[:1])[0])
        self.y_norm = yn

    def _closed_form(self) -> bool:
        return self.kernel.k2.nu in (0.5, 1.5, 2.5, math.inf)

    def cross_kernel(self, points: np.ndarray, grad: bool = False) -> Any:
        """``k(points, x)``; the closed-form Matern kernels directly (scikit-learn's generic
        kernel call is ten times slower on 100 000 points). With ``grad``, also ``g`` (``m x n``)
        such that ``d k(p_i, x_j) / d p_i = g_ij * (p_i - x_j) / length_scale**2``."""
        from scipy.spatial.distance import cdist

        constant, matern = self.kernel.k1.constant_value, self.kernel.k2
        if not self._closed_form():
            return self.kernel(points, self.x)
        scale = np.asarray(matern.length_scale, dtype=float)
        r = cdist(points / scale, self.x / scale)
        g = None
        # in place: these are the largest arrays of a suggestion, the temporaries cost more than the arithmetic
        if matern.nu == 0.5:
            dist = np.maximum(r, 1e-12) if grad else None
            k = np.exp(np.negative(r, out=r), out=r)
            k *= constant
            if grad:
                g = -k / dist
        elif matern.nu == math.inf:
            r *= r
            r *= -0.5
            k = np.exp(r, out=r)
            k *= constant
            if grad:
                g = -k
        elif matern.nu == 1.5:
            r *= math.sqrt(3)
            e = np.exp(-r)
            e *= constant
            if grad:
                g = -3.0 * e
            r += 1.0
            k = r
            k *= e
        else:
            r *= math.sqrt(5)
            e = np.exp(-r)
            e *= constant
            if grad:
                g = (-5.0 / 3.0) * (1.0 + r) * e
            k = r * r
            k *= 1.0 / 3.0
            k += r
            k += 1.0
            k *= e
        return (k, g) if grad else k

    def predict(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised mean and standard deviation at ``points`` (``m x d``)."""
        out_mu = np.empty(len(points))
        out_sd = np.empty(len(points))
        step = 2048  # chunks that stay in cache: twice as fast as one pass over 10 000 points
        for start in range(0, len(points), step):
            chunk = points[start:start + step]
            ks = self.cross_kernel(chunk)
            out_mu[start:start + len(chunk)] = ks @ self.alpha_vec
            var = self.prior_var - np.einsum("ij,ij->i", ks @ self.k_inv, ks)
            out_sd[start:start + len(chunk)] = np.sqrt(np.maximum(var, 1e-12))
        return out_mu, out_sd

    def predict_grad(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """Mean, standard deviation and their gradients (``m x d``) at ``points``; ``None`` when
        the kernel has no closed form here (callers fall back to finite differences)."""
        if not self._closed_form():
            return None
        ks, g = self.cross_kernel(points, grad=True)
        inv_l2 = 1.0 / np.asarray(self.kernel.k2.length_scale, dtype=float) ** 2
        mu = ks @ self.alpha_vec
        v = ks @ self.k_inv
        var = self.prior_var - np.einsum("ij,ij->i", v, ks)
        sd = np.sqrt(np.maximum(var, 1e-12))

        def weighted_grad(w: np.ndarray) -> np.ndarray:
            # sum_j w_ij g_ij (p_i - x_j) / l^2, for every point i at once
            wg = w * g
            return (wg.sum(axis=1)[:, None] * points - wg @ self.x) * inv_l2

        dmu = weighted_grad(np.broadcast_to(self.alpha_vec, ks.shape))
        dvar = -2.0 * weighted_grad(v)
        dsd = np.where((var > 1e-12)[:, None], dvar / (2.0 * sd[:, None]), 0.0)
        return mu, sd, dmu, dsd

    def normalise(self, y: float) -> float:
        return (y - self.mean) / self.scale


def acquisition(kind: str, mu: np.ndarray, sd: np.ndarray, best: float, kappa: float, xi: float) -> np.ndarray:
    """``'ei'``, ``'ucb'`` or ``'poi'`` for a maximised, normalised target."""
    from scipy.special import ndtr

    if kind == "ucb":
        return mu + kappa * sd
    z = (mu - best - xi) / sd
    if kind == "poi":
        return ndtr(z)
    return (mu - best - xi) * ndtr(z) + sd * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def acquisition_grad(kind: str, mu: np.ndarray, sd: np.ndarray, dmu: np.ndarray, dsd: np.ndarray, best: float,
                     kappa: float, xi: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`acquisition` and its gradient (``m x d``) from the model's mean and sd gradients."""
    from scipy.special import ndtr

    if kind == "ucb":
        return mu + kappa * sd, dmu + kappa * dsd
    z = (mu - best - xi) / sd
    pdf = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    if kind == "poi":
        return ndtr(z), (pdf / sd)[:, None] * (dmu - z[:, None] * dsd)
    cdf = ndtr(z)
    return (mu - best - xi) * cdf + sd * pdf, cdf[:, None] * dmu + pdf[:, None] * dsd


def maximize(func: Callable[[np.ndarray], np.ndarray], dim: int, rng: np.random.Generator, n_warm_up: int,
             n_starts: int, extra: np.ndarray | None = None, max_iter: int = 15,
             func_grad: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray] | None] | None = None,
             ) -> tuple[np.ndarray, np.ndarray]:
    """Maximise ``func`` (vectorised over rows) on ``[0, 1]^dim``.

    ``func_grad(points)`` may give the values and their gradients (``m x dim``) in one call;
    when it is missing or returns ``None``, gradients are forward differences.

    Returns candidate points sorted from best to worst and their values: the L-BFGS-B results
    followed by the remaining best warm-up points (callers skip candidates they cannot use).
    """
    from scipy.optimize import minimize

    warm = rng.random((max(n_warm_up, 1), dim))
    if extra is not None and len(extra):
        warm = np.vstack([warm, extra])
    values = func(warm)
    order = np.argsort(-values)
    starts = warm[order[:max(1, n_starts)]]
    m = len(starts)
    eps = 1e-6

    def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
        pts = flat.reshape(m, dim)
        exact = func_grad(pts) if func_grad is not None else None
        if exact is not None:
            return -float(exact[0].sum()), -exact[1].ravel()
        base = func(pts)
        grad = np.empty((m, dim))
        for k in range(dim):  # one forward difference of every point at once
            shifted = pts.copy()
            step = np.where(shifted[:, k] + eps <= 1.0, eps, -eps)
            shifted[:, k] += step
            grad[:, k] = (func(shifted) - base) / step
        return -float(base.sum()), -grad.ravel()

    result = minimize(objective, starts.ravel(), jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * (m * dim),
                      options={"maxiter": max_iter, "maxfun": max_iter})
    refined = np.clip(result.x.reshape(m, dim), 0.0, 1.0)
    refined_values = func(refined)
    # a start can only improve; keep the better of start and refined point
    better = refined_values >= values[order[:m]]
    pts = np.where(better[:, None], refined, starts)
    vals = np.where(better, refined_values, values[order[:m]])
    rest = order[m:m + 64]
    pts = np.vstack([pts, warm[rest]])
    vals = np.concatenate([vals, values[rest]])
    final = np.argsort(-vals, kind="stable")
    return pts[final], vals[final]


def first_new(candidates: np.ndarray, box: UnitBox, taken: set) -> np.ndarray | None:
    """The first candidate whose snapped point is not in ``taken`` (keys of :func:`point_key`)."""
    for point in candidates:
        snapped = box.snap(point)
        if point_key(snapped) not in taken:
            return snapped
    return None


def point_key(u: np.ndarray) -> tuple:
    return tuple(np.round(np.asarray(u, dtype=float), 9).tolist())


_CONTROLLER: Any = None


def _threadpools() -> Any:
    """One ``ThreadpoolController`` per process: finding the BLAS libraries costs ~10 ms a call."""
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


class GpTunerBase(ObservationLog):
    """Observation bookkeeping shared by the GP-based tuners (mixed into a ``Tuner``).

    Subclasses set ``name``, ``optimize_mode``, ``cold_start_num``, ``rng`` and implement
    ``_model_suggest(x, y, taken)`` returning a point of the cube (or ``None`` for random).
    Observations are kept in the cube with ``y`` = the metric as a utility (higher is better);
    results of configurations still running are "believed" to equal the model's mean while
    concurrent suggestions are made, so parallel trials do not all get the same point.
    """

    name = "GP"
    parameter_errors = (ValueError, IndexError, KeyError, TypeError)

    def _init_state(self) -> None:
        self.space: FlatSpace | None = None
        self.box: UnitBox | None = None
        self._x: list[np.ndarray] = []
        self._y: list[float] = []
        self._pending: dict[Any, np.ndarray] = {}
        self._kernel: Any = None  # the last fitted kernel, the next fit starts from it
        self._last_fit: tuple | None = None  # (data key, FittedGP) of the last optimised fit
        self._believer = False  # the current fit includes running trials at the model's mean

    # ------------------------------------------------------------------ Tuner API
    def update_search_space(self, search_space: dict) -> None:
        check_search_space(search_space, self.name, NUMERIC_TYPES, nested=False)
        check_numeric_choices(search_space, self.name)
        old_box = self.box
        space = FlatSpace(search_space)
        self.box = UnitBox(space)
        self.space = space
        if old_box is not None and old_box.space.formatted != self.space.formatted:
            xs, ys = [], []
            for u, y in zip(self._x, self._y):
                try:
                    xs.append(self.box.from_parameters(old_box.to_parameters(u)))
                except (ValueError, IndexError, KeyError):
                    continue
                ys.append(y)
            self._x, self._y, self._pending = xs, ys, {}

    # ------------------------------------------------------------------ internals
    def _point_of(self, parameters: Any) -> np.ndarray:
        return self.box.from_parameters(parameters)

    def _parameters_of(self, u: np.ndarray) -> dict:
        return self.box.to_parameters(u)

    def _add(self, u: np.ndarray, value: Any) -> None:
        y = -loss_of(value, self.optimize_mode)
        self._x.append(np.asarray(u, dtype=float))
        self._y.append(y)

    def _data(self) -> tuple[np.ndarray, np.ndarray]:
        """Observations with duplicates averaged and failed (infinite) results set to the worst."""
        y = np.array(self._y, dtype=float)
        finite = np.isfinite(y)
        if not finite.any():
            y = np.zeros_like(y)
        else:
            y = np.where(finite, y, y[finite].min() - (np.ptp(y[finite]) or 1.0))
        groups: dict[tuple, list[int]] = {}
        for i, u in enumerate(self._x):
            groups.setdefault(point_key(u), []).append(i)
        x = np.array([self._x[idx[0]] for idx in groups.values()])
        yy = np.array([y[idx].mean() for idx in groups.values()])
        return x.reshape(len(x), self.box.dim), yy

    def _random_point(self) -> np.ndarray:
        from ._tpe_engine import space_filling_sample

        space = self.space
        seen = [self.box.to_row(u) for u in self._x + list(self._pending.values())]
        row = space_filling_sample(space.dims, np.array(seen).reshape(len(seen), len(space.dims)), self.rng)
        return self.box.from_row(row)

    def _suggest(self) -> np.ndarray:
        # the matrices are small: BLAS threads only contend with the manager (and other processes)
        with _threadpools().limit(limits=1):
            return self._suggest_now()

    def _suggest_now(self) -> np.ndarray:
        if self.box.dim == 0:
            return np.zeros(0)
        distinct = len({point_key(u) for u in self._x})
        if distinct < max(self.cold_start_num, 2):
            return self._random_point()
        x, y = self._data()
        taken = {point_key(u) for u in self._x} | {point_key(u) for u in self._pending.values()}
        if self._pending:
            # kriging believer: pending points count as observed at the model's mean
            gp = self._fit(x, y)
            px = np.array(list(self._pending.values()))
            mu, _ = gp.predict(px)
            x = np.vstack([x, px])
            y = np.concatenate([y, mu * gp.scale + gp.mean])
            self._believer = True
        u = self._model_suggest(x, y, taken)
        self._believer = False
        if u is None:
            return self._random_point()
        return u

    def _fit(self, x: np.ndarray, y: np.ndarray, optimize: bool = True) -> FittedGP:
        """The GP of ``(x, y)``; ``optimize`` re-optimises the kernel hyperparameters, warm-started
        from the last fit. The last optimised fit is reused while the data is the same (suggestions for
        concurrent trials between two results). Re-optimising only every few observations was
        measured and dropped: GP on Hartmann-6, 20 seeds, median best at 50 trials -2.78 with it
        against -3.14 without."""
        key = (x.shape, x.tobytes(), y.tobytes())
        last = getattr(self, "_last_fit", None)
        if last is not None and last[0] == key:
            return last[1]
        kernel = getattr(self, "_kernel", None)
        if kernel is not None and np.atleast_1d(kernel.k2.length_scale).size != x.shape[1]:
            kernel = None
        gp = FittedGP(x, y, nu=self.nu, alpha=self.alpha, seed=int(self.rng.integers(2**31)), kernel=kernel,
                      optimize=optimize or kernel is None)
        self._kernel = gp.kernel
        if optimize:  # fits with running trials at the model's mean (not optimised) are not kept
            self._last_fit = (key, gp)
        return gp
