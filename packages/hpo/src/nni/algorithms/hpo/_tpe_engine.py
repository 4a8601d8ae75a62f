"""The numerical core of the native TPE: vectorised Parzen estimators over a flat space.

The tuner (:mod:`nni.algorithms.hpo.tpe_tuner`) turns the formatted search space into a list of
:class:`Dim` (one per parameter, nested ones included) and every trial into one row of a float
matrix: the category index for categorical dimensions, the value (its logarithm for log types)
for numerical ones, ``NaN`` where the parameter was not active (a nested parameter whose branch was
not chosen). This module only sees those arrays.

Model (Bergstra et al. 2011, with the refinements that made Optuna's and hyperopt's TPE work):

* split the observations at the ``gamma`` quantile of the loss into "good" and "bad";
* ``l(x)`` / ``g(x)`` are mixtures of one kernel per observation plus one prior kernel
  (weight ``prior_weight``); numerical kernels are truncated Gaussians whose bandwidth is the
  larger distance to the neighbouring observations (adaptive), clipped below by
  ``range / min(100, n + 1)`` (hyperopt's "magic clip", with ``n`` the geometric mean of the
  estimator's and the whole history's observation counts, see ``TpeSettings.clip_count``) and
  above by the range; categorical
  kernels keep ``1 - b`` of their mass on the observed category and spread ``b`` uniformly;
* ``multivariate=True`` (the default) uses one joint kernel per observation over the top-level
  parameters (the product of their per-dimension kernels), which captures interactions between
  them; nested parameters get independent kernels fitted only on the trials in which their
  branch was chosen (measured better than joint kernels on conditional spaces);
* draw ``n_candidates`` points from ``l`` and return the one with the largest ``log l - log g``;
* in a space where configurations can repeat (every dimension categorical or quantised), skip
  candidates already tried or pending (``config_dedup``): ``l`` concentrates on the best few
  configurations, and without this about a fifth of the first 50 trials of the benchmark's
  random-forest task (5 discrete parameters) re-ran a configuration already measured, which
  teaches a deterministic objective nothing. Only when every candidate repeats is the draw
  widened (more candidates from ``l``, then from the prior), and a repeat is returned only when
  none of those is new (a nearly exhausted space).

Defaults (``TpeSettings``) were chosen on the HPO benchmark of ``packages/benchmarks``
(Branin, Hartmann-6, Rosenbrock-5, a conditional mixed space, noisy Hartmann-3) against
Optuna's ``TPESampler`` at 25, 50 and 100 trials: 6 warm-up configurations from a randomly
shifted Halton sequence, gamma 0.15 (at most 25 good points), 48 candidates, prior weight 1,
the geometric-mean magic clip. The clip count was the main cause of a slow start: counting only
the 2-4 good points (hyperopt's rule) kept the kernels of ``l(x)`` a third to a fifth of the
range wide at 10-25 trials.

Measured again for issue 12 (20 seeds; 60 on the synthetic tasks): at 25 and 50 trials the
differences to Optuna on the continuous and conditional tasks are inside the seed spread or in
this TPE's favour. The one systematic gap is the random-forest task, whose ordinal
``min_samples_leaf`` is a ``randint``, which TPE models as unordered categories as the docs
specify (Optuna orders it); declared ``quniform`` with q=1 the gap at 25 trials shrinks from
0.0083 to about 0.002 in log loss.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _ndtr(x: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return ndtr(x)


def _ndtri(p: np.ndarray) -> np.ndarray:
    from scipy.special import ndtri

    return ndtri(p)


def _log_ndtr_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log(Phi(b) - Phi(a)) for a <= b, stable in both tails."""
    from scipy.special import log_ndtr

    # use the upper tail where both are positive: Phi(b)-Phi(a) = Phi(-a)-Phi(-b)
    flip = a > 0
    lo = np.where(flip, -b, a)
    hi = np.where(flip, -a, b)
    lhi = log_ndtr(hi)
    llo = log_ndtr(lo)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = lhi + np.log1p(-np.exp(np.minimum(llo - lhi, 0.0)))
    return np.where(np.isfinite(out), out, -700.0)


@dataclass
class Dim:
    """One parameter in the flat space seen by the engine.

    ``categorical``: ``size`` choices, values are indices. Otherwise numerical on the internal
    scale (log for log types) with bounds ``low``/``high`` (``-inf``/``inf`` for normal types) and
    the prior ``N(mu, sigma)`` for normal types; ``rounder`` maps a proposed internal value to the
    internal value of what will really be returned (q rounding, clipping).
    ``parent``/``parent_choice``: the dimension index and option index that activate this one.
    """

    categorical: bool
    size: int = 0
    low: float = -math.inf
    high: float = math.inf
    mu: float = 0.0
    sigma: float = 1.0
    parent: int | None = None
    parent_choice: int | None = None
    rounder: object = None

    @property
    def bounded(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    @property
    def prior_mu(self) -> float:
        return 0.5 * (self.low + self.high) if self.bounded else self.mu

    @property
    def span(self) -> float:
        return (self.high - self.low) if self.bounded else 6.0 * self.sigma

    @property
    def prior_sigma(self) -> float:
        return (self.high - self.low) if self.bounded else self.sigma


@dataclass
class TpeSettings:
    n_startup: int = 6
    n_candidates: int = 48
    gamma_ratio: float = 0.15
    gamma_max: int = 25
    prior_weight: float = 1.0
    multivariate: bool = True
    magic_clip: bool = True
    magic_clip_count: str = "geometric"  # or "estimator" (hyperopt's), "total"
    categorical_bandwidth: float | None = None  # None: prior_weight-based, shrinks with n
    consider_endpoints: bool = False
    bandwidth: str = "neighbor"  # or "scott"
    bandwidth_factor: float = 1.0
    startup: str = "halton"  # or "maximin", "random"
    config_dedup: bool = True

    def n_good(self, n: int) -> int:
        return max(1, min(int(math.ceil(self.gamma_ratio * n)), self.gamma_max))

    def clip_count(self, n_estimator: int, n_total: int) -> float:
        """The ``n`` of the magic clip ``range / min(100, 1 + n)`` for an estimator of ``n_estimator``
        of the ``n_total`` observations.

        hyperopt counts the estimator's own points, so the 2-4 good points of ``l(x)`` keep kernels
        at least a third to a fifth of the range wide at 10-25 trials and TPE barely exploits at
        short budgets; the whole history's count narrows ``l`` too fast in high dimensions. The
        geometric mean of the two (the default) does neither.
        """
        if self.magic_clip_count == "estimator":
            return float(n_estimator)
        if self.magic_clip_count == "total":
            return float(max(n_total, n_estimator))
        return math.sqrt(max(n_total, n_estimator) * n_estimator)


class ParzenEstimator:
    """Mixture of per-observation kernels plus a prior kernel over the flat space."""

    def __init__(self, dims: list[Dim], x: np.ndarray, settings: TpeSettings, n_total: int):
        self.dims = dims
        self.settings = settings
        n, d = x.shape
        self.n = n
        # row 0 is the prior component; rows 1.. the observations
        self.active = np.ones((n + 1, d), dtype=bool)
        self.active[1:] = ~np.isnan(x)
        self.values = np.zeros((n + 1, d))
        self.values[1:] = np.where(self.active[1:], x, 0.0)
        self.sigmas = np.ones((n + 1, d))
        w = np.ones(n + 1)
        w[0] = settings.prior_weight
        self.weights = w / w.sum()
        self.log_weights = np.log(self.weights)
        self.cat_bw: list[float] = []
        self._norm_cache: dict[int, np.ndarray] = {}
        # multivariate: one joint kernel over the always-active (top-level) parameters; nested
        # parameters get independent kernels built only from the trials where they were active
        self.joint = np.array([settings.multivariate and dim.parent is None for dim in dims], dtype=bool)
        for j, dim in enumerate(dims):
            if dim.categorical:
                self.values[0, j] = -1  # prior: uniform
                b = settings.categorical_bandwidth
                if b is None:
                    # Optuna's kernel: the observed option plus prior_weight/(n+1) on every option
                    c = settings.prior_weight / (int(self.active[1:, j].sum()) + 1)
                    b = dim.size * c / (1 + dim.size * c)
                self.cat_bw.append(b)
                continue
            self.cat_bw.append(0.0)
            self.values[0, j] = dim.prior_mu
            self.sigmas[0, j] = dim.prior_sigma
            act = self.active[1:, j]
            if not act.any():
                continue
            self.sigmas[1:, j][act] = self._bandwidths(dim, self.values[1:, j][act], n_total, d)

    def _bandwidths(self, dim: Dim, v: np.ndarray, n_total: int, d: int) -> np.ndarray:
        s = self.settings
        span = dim.span
        if s.bandwidth == "scott":
            # Scott's rule with the robust spread (std or IQR/1.34, whichever is smaller)
            if len(v) > 1:
                q75, q25 = np.percentile(v, [75, 25])
                spread = min(float(np.std(v)), (q75 - q25) / 1.34) or float(np.std(v))
            else:
                spread = span
            sig = np.full(len(v), 1.059 * spread * len(v) ** (-1.0 / (d + 4)))
        else:
            order = np.argsort(v, kind="stable")
            sv = v[order]
            ext = np.concatenate([[dim.low if dim.bounded else sv[0] - span], sv,
                                  [dim.high if dim.bounded else sv[-1] + span]])
            # hyperopt/Optuna: prior mean acts as an extra point among the neighbours
            left = sv - ext[:-2]
            right = ext[2:] - sv
            if not s.consider_endpoints and len(sv) >= 2:
                left[0] = right[0]
                right[-1] = left[-1]
            sig_sorted = np.maximum(left, right)
            sig = np.empty_like(sig_sorted)
            sig[order] = sig_sorted
        hi = span
        lo = span / min(100.0, 1.0 + s.clip_count(len(v), n_total)) if s.magic_clip else span * 1e-3
        return np.clip(sig * s.bandwidth_factor, lo, hi)

    # ------------------------------------------------------------------ sampling
    def sample(self, rng: np.random.Generator, count: int) -> np.ndarray:
        n1, d = self.values.shape
        out = np.full((count, d), np.nan)
        comps = np.empty((count, d), dtype=int)
        shared = rng.choice(n1, size=count, p=self.weights)
        for j in range(d):
            if self.joint[j]:
                comps[:, j] = shared
            else:
                w = self.weights * self.active[:, j]
                comps[:, j] = rng.choice(n1, size=count, p=w / w.sum())
        for j, dim in enumerate(self.dims):
            c = comps[:, j]
            act = self.active[c, j]
            c = np.where(act, c, 0)  # inactive in that observation: draw from the prior
            if dim.categorical:
                centre = self.values[c, j].astype(int)
                uniform = rng.integers(0, dim.size, size=count)
                keep = (centre >= 0) & (rng.random(count) >= self.cat_bw[j])
                out[:, j] = np.where(keep, centre, uniform)
            else:
                mu = self.values[c, j]
                sg = self.sigmas[c, j]
                if dim.bounded:
                    a = _ndtr((dim.low - mu) / sg)
                    b = _ndtr((dim.high - mu) / sg)
                    u = a + (b - a) * rng.random(count)
                    u = np.clip(u, 1e-12, 1 - 1e-12)
                    val = np.clip(mu + sg * _ndtri(u), dim.low, dim.high)
                else:
                    val = mu + sg * rng.standard_normal(count)
                if dim.rounder is not None:
                    val = dim.rounder(val)
                out[:, j] = val
        return deactivate(self.dims, out)

    # ------------------------------------------------------------------ density
    def _log_norm(self, j: int) -> np.ndarray:
        """Per-kernel log normaliser of dimension ``j`` (truncation included)."""
        cached = self._norm_cache.get(j)
        if cached is None:
            dim = self.dims[j]
            mu = self.values[:, j]
            sg = self.sigmas[:, j]
            cached = -np.log(sg) - _LOG_SQRT_2PI
            if dim.bounded:
                cached = cached - _log_ndtr_diff((dim.low - mu) / sg, (dim.high - mu) / sg)
            self._norm_cache[j] = cached
        return cached

    def _log_kernels(self, j: int, xj: np.ndarray) -> np.ndarray:
        """log K_j(x; i) for candidates ``xj`` (C,) and every kernel i: (C, N+1)."""
        dim = self.dims[j]
        if dim.categorical:
            b = self.cat_bw[j]
            centre = self.values[:, j]
            k = np.where(xj[:, None] == centre[None, :], math.log(1 - b + b / dim.size), math.log(b / dim.size))
            k[:, 0] = -math.log(dim.size)
        else:
            z = (xj[:, None] - self.values[None, :, j]) / self.sigmas[None, :, j]
            k = -0.5 * z * z + self._log_norm(j)[None, :]
        inactive = ~self.active[:, j]
        if inactive.any():
            # an observation where this dimension was inactive contributes the prior kernel
            k[:, inactive] = k[:, :1]
        return k

    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        """log density of candidates ``x`` (C, D); dimensions inactive in a candidate are skipped."""
        c, d = x.shape
        n1 = self.values.shape[0]
        xact = ~np.isnan(x)
        joint = np.zeros((c, n1))
        total = np.zeros(c)
        any_joint = False
        for j in range(d):
            act = xact[:, j]
            if not act.any():
                continue
            k = self._log_kernels(j, np.where(act, x[:, j], 0.0))
            if not act.all():
                k[~act] = 0.0
            if self.joint[j]:
                joint += k
                any_joint = True
            else:
                w = self.weights * self.active[:, j]
                lw = np.log(w / w.sum(), where=w > 0, out=np.full(n1, -np.inf))
                total += np.where(act, _logsumexp(k + lw[None, :], axis=1), 0.0)
        if any_joint:
            total += _logsumexp(joint + self.log_weights[None, :], axis=1)
        return total


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(a - m), axis=axis))


def deactivate(dims: list[Dim], x: np.ndarray) -> np.ndarray:
    """Set nested dimensions whose branch is not chosen to NaN (in place; returns ``x``)."""
    changed = True
    while changed:  # repeats only when a child column comes before its parent
        changed = False
        for j, dim in enumerate(dims):
            if dim.parent is not None:
                off = (x[:, dim.parent] != dim.parent_choice) & ~np.isnan(x[:, j])  # NaN != k
                if off.any():
                    x[off, j] = np.nan
                    changed = True
    return x


def sample_prior(dims: list[Dim], rng: np.random.Generator, count: int, only_active: bool = True) -> np.ndarray:
    """Independent draws from the search space's own distributions (flat, NaN where inactive;
    ``only_active=False`` keeps a value in every column)."""
    out = np.empty((count, len(dims)))
    for j, dim in enumerate(dims):
        if dim.categorical:
            out[:, j] = rng.integers(0, dim.size, size=count)
        else:
            if dim.bounded:
                val = rng.uniform(dim.low, dim.high, size=count)
            else:
                val = dim.mu + dim.sigma * rng.standard_normal(count)
            if dim.rounder is not None:
                val = dim.rounder(val)
            out[:, j] = val
    return deactivate(dims, out) if only_active else out


def normalised(dims: list[Dim], x: np.ndarray) -> np.ndarray:
    """Map flat points to [0, 1]-ish coordinates for distance computations (NaN kept)."""
    z = np.empty_like(x)
    for j, dim in enumerate(dims):
        if dim.categorical:
            z[:, j] = x[:, j] / max(dim.size - 1, 1)
        elif dim.bounded:
            z[:, j] = (x[:, j] - dim.low) / max(dim.high - dim.low, 1e-300)
        else:
            z[:, j] = (x[:, j] - dim.mu) / (6 * dim.sigma) + 0.5
    return z


def space_filling_sample(dims: list[Dim], seen: np.ndarray, rng: np.random.Generator,
                         n_candidates: int = 32) -> np.ndarray:
    """One prior draw that keeps away from ``seen``: the best of ``n_candidates`` by min distance."""
    cand = sample_prior(dims, rng, n_candidates)
    if len(seen) == 0:
        return cand[0]
    zc = normalised(dims, cand)
    zs = normalised(dims, seen)
    diff = zc[:, None, :] - zs[None, :, :]
    both = ~np.isnan(diff)
    # a dimension active in only one of the two points counts as a full unit apart
    one = np.isnan(zc)[:, None, :] ^ np.isnan(zs)[None, :, :]
    dist = np.where(both, diff * diff, 0.0).sum(axis=2) + one.sum(axis=2)
    return cand[int(np.argmax(dist.min(axis=1)))]


def _primes(count: int) -> list[int]:
    primes: list[int] = []
    n = 2
    while len(primes) < count:
        if all(n % p for p in primes if p * p <= n):
            primes.append(n)
        n += 1
    return primes


def halton_sample(dims: list[Dim], index: int, shift: np.ndarray) -> np.ndarray:
    """Point ``index`` of a randomly shifted Halton sequence mapped onto the space.

    A low-discrepancy warm-up covers the space evenly without the edge bias of maximin designs;
    ``shift`` (one uniform number per dimension) randomises it per seed.
    """
    u = np.empty(len(dims))
    for j, base in enumerate(_primes(len(dims))):
        f, r, i = 1.0, 0.0, index + 1
        while i > 0:
            f /= base
            r += f * (i % base)
            i //= base
        u[j] = (r + shift[j]) % 1.0
    out = np.empty(len(dims))
    for j, dim in enumerate(dims):
        if dim.categorical:
            out[j] = min(int(u[j] * dim.size), dim.size - 1)
            continue
        if dim.bounded:
            val = np.array([dim.low + u[j] * (dim.high - dim.low)])
        else:
            val = dim.mu + dim.sigma * _ndtri(np.clip(np.array([u[j]]), 1e-9, 1 - 1e-9))
        if dim.rounder is not None:
            val = dim.rounder(val)
        out[j] = val[0]
    return deactivate(dims, out[None, :])[0]


def _row_keys(x: np.ndarray) -> list[bytes]:
    """Hashable keys of flat rows (NaN-aware, rounded so that re-parsed values still match)."""
    z = np.where(np.isnan(x), np.inf, np.round(x, 9)) + 0.0  # + 0.0 turns -0.0 into 0.0
    return [r.tobytes() for r in z]


def has_repeatable_values(dims: list[Dim]) -> bool:
    """Whether a configuration can be drawn twice: every dimension categorical or quantised."""
    return bool(dims) and all(d.categorical or d.rounder is not None for d in dims)


def suggest(dims: list[Dim], x: np.ndarray, losses: np.ndarray, settings: TpeSettings,
            rng: np.random.Generator, avoid: np.ndarray | None = None) -> np.ndarray:
    """One TPE suggestion from observations ``x`` (N, D) with ``losses`` (N,) (lower is better).

    ``avoid`` (M, D): configurations already tried or pending. With ``settings.config_dedup``
    and a space where configurations can repeat (only categorical and quantised dimensions), the
    best candidate that is not among them is returned; the candidate set is refilled from
    ``l(x)`` and then from the prior when every candidate repeats one, and a repeat is returned
    only when none of those draws is new.
    """
    n = len(losses)
    order = np.argsort(losses, kind="stable")
    n_good = settings.n_good(n)
    l_est = ParzenEstimator(dims, x[order[:n_good]], settings, n)
    g_est = ParzenEstimator(dims, x[order[n_good:]], settings, n)
    cand = l_est.sample(rng, settings.n_candidates)
    score = l_est.log_pdf(cand) - g_est.log_pdf(cand)
    if avoid is None or not len(avoid) or not settings.config_dedup or not has_repeatable_values(dims):
        return cand[int(np.argmax(score))]
    seen = set(_row_keys(avoid))
    best_repeat = cand[int(np.argmax(score))]
    for draw in range(3):
        fresh = np.array([k not in seen for k in _row_keys(cand)])
        if fresh.any():
            return cand[int(np.argmax(np.where(fresh, score, -np.inf)))]
        # every candidate repeats a tried configuration: widen the draw, l(x) first, then the prior
        count = 4 * settings.n_candidates
        cand = l_est.sample(rng, count) if draw == 0 else sample_prior(dims, rng, count)
        score = l_est.log_pdf(cand) - g_est.log_pdf(cand)
    return best_repeat
