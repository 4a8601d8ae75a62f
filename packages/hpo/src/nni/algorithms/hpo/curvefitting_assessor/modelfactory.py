"""Learn a trial's learning curve and extrapolate it (the L and P of LPA).

:class:`CurveModelEnsemble` follows the three steps of the Curve Fitting Assessor's docs:

1. **Learning.** :meth:`~CurveModelEnsemble.fit_theta` fits each of the 12 curve families
   of :mod:`.curvefunctions` to the observed history by least squares
   (``scipy.optimize.least_squares``); :meth:`~CurveModelEnsemble.filter_curve` drops the
   fits that failed, fit much worse than the best one, or extrapolate to an outlier;
   :meth:`~CurveModelEnsemble.mcmc_sampling` then samples the ensemble weights and the noise
   level with a Metropolis-Hastings sampler.
2. **Predicting.** :meth:`~CurveModelEnsemble.f_comb` is the weighted combination
   ``f_comb(x) = sum_k w_k f_k(x | theta_k)``; :meth:`~CurveModelEnsemble.predict` returns its
   posterior mean at the target epoch.
3. Assessing is done by :class:`~.curvefitting_assessor.CurvefittingAssessor`.

The model (Domhan et al., 2015) is ``y_t = f_comb(t) + eps``, ``eps ~ N(0, sigma^2)``. The
sampler treats the curve parameters ``theta_k`` as fixed at their least-squares values and
samples what the docs call "the weight of each curve" plus ``sigma``:

* weights ``w = u / sum(u)`` with ``u_k ~ Exp(1)`` (so ``w`` is uniform on the simplex and
  the combination stays inside the range of the fitted curves);
* ``sigma`` with the scale-invariant prior ``p(sigma) ∝ 1/sigma``, started at its maximum
  likelihood estimate for equal weights, as the docs describe;
* random-walk proposals on ``log u`` and ``log sigma``, many chains advanced together as
  numpy arrays: a prediction takes a few milliseconds after the fits.

The observed values are divided by their largest magnitude before fitting (the initial
parameters of the curve families assume accuracies in ``0 .. 1``), and the prediction is
scaled back. The sampler's random generator is seeded per call, so one history always gets
the same prediction.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .curvefunctions import CURVE_MODELS, CurveModel

_logger = logging.getLogger(__name__)

MIN_POINTS = 3
"""Fewer observed points than this give no prediction (``None``)."""


@dataclass
class CurveFit:
    """One curve family fitted to the observed history (values in scaled units)."""

    model: CurveModel
    params: np.ndarray
    fitted: np.ndarray
    target_value: float
    rmse: float


class CurveModelEnsemble:
    """Fit the 12 learning-curve models to a history and predict the value at ``target_pos``.

    Args:
        target_pos: The epoch to predict (1-based, like the positions of the history:
            the first reported value is epoch 1).
        n_chains: Metropolis-Hastings chains run side by side.
        n_steps: Steps per chain; the first ``burn_in`` are discarded.
        burn_in: Steps discarded per chain.
        seed: Seed of the sampler (fixed: predictions are reproducible).
        models: The curve families to use (default: all 12).

    Example:
        >>> import numpy as np
        >>> epochs = np.arange(1, 11)
        >>> history = 0.9 - 0.5 * epochs ** -0.8
        >>> prediction = CurveModelEnsemble(target_pos=50).predict(history)
        >>> abs(prediction - (0.9 - 0.5 * 50 ** -0.8)) < 0.02  # the true value is 0.878
        True
    """

    def __init__(
        self,
        target_pos: int,
        *,
        n_chains: int = 32,
        n_steps: int = 200,
        burn_in: int = 100,
        seed: int = 0,
        models: Sequence[CurveModel] = CURVE_MODELS,
    ):
        if n_steps <= burn_in:
            raise ValueError(f"n_steps ({n_steps}) must be larger than burn_in ({burn_in})")
        self.target_pos = float(target_pos)
        self.n_chains = n_chains
        self.n_steps = n_steps
        self.burn_in = burn_in
        self.seed = seed
        self.models = tuple(models)

    # ---- step 1: learning ------------------------------------------------------------------

    def fit_theta(self, y: np.ndarray) -> list[CurveFit]:
        """Least-squares fit of every curve family that has fewer parameters than points.

        ``y`` is the (scaled) history; position ``t`` (0-based) is epoch ``t + 1``.
        Families whose fit raises or gives non-finite values are left out.
        """
        from scipy.optimize import least_squares  # scipy is heavy: import where first used

        x = np.arange(1, len(y) + 1, dtype=float)
        target = np.array([self.target_pos])
        fits: list[CurveFit] = []
        for model in self.models:
            if model.n_params >= len(y):
                continue

            def residual(params, model=model):
                return _finite(model(x, params) - y)

            def jacobian(params, model=model):
                # Forward differences, all parameters in one vectorised call (rows = shifted params).
                steps = 1e-6 * np.maximum(1.0, np.abs(params))
                shifted = params[None, :] + np.diag(steps)  # (P, P)
                columns = [shifted[:, j : j + 1] for j in range(len(params))]
                moved = _finite(model.func(x[None, :], *columns) - y)
                return ((moved - residual(params)) / steps[:, None]).T  # (T, P)

            try:
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    # Few evaluations and loose tolerances: a rough fit is enough to be weighted
                    # by the sampler, and a family that needs more is a poor fit anyway.
                    result = least_squares(
                        residual, np.array(model.init, dtype=float), jac=jacobian, method="lm",
                        max_nfev=30 * model.n_params, ftol=1e-6, xtol=1e-6,
                    )
                    fitted = model(x, result.x)
                    target_value = float(model(target, result.x)[0])
            except (ValueError, FloatingPointError, OverflowError, np.linalg.LinAlgError) as err:
                _logger.debug("curve %s did not fit: %s", model.name, err)
                continue
            if not (np.all(np.isfinite(fitted)) and np.isfinite(target_value)):
                continue
            rmse = float(np.sqrt(np.mean((fitted - y) ** 2)))
            fits.append(CurveFit(model, result.x, fitted, target_value, rmse))
        return fits

    def filter_curve(self, fits: list[CurveFit], y: np.ndarray) -> list[CurveFit]:
        """Drop fits that are much worse than the best one or that extrapolate to outliers.

        Kept are the fits whose RMSE is at most ``5 * best + 0.02``, whose prediction lies
        within two observed spans (plus 0.05) of the observed range, and whose prediction is
        not a robust outlier among the remaining predictions (more than three scaled median
        absolute deviations, plus 0.02, from their median). All in units of the scaled history.
        """
        if not fits:
            return []
        best_rmse = min(fit.rmse for fit in fits)
        fits = [fit for fit in fits if fit.rmse <= 5 * best_rmse + 0.02]
        low, high = float(np.min(y)), float(np.max(y))
        margin = 2 * (high - low) + 0.05
        fits = [fit for fit in fits if low - margin <= fit.target_value <= high + margin]
        if len(fits) >= 3:
            preds = np.array([fit.target_value for fit in fits])
            median = np.median(preds)
            mad = 1.4826 * np.median(np.abs(preds - median))
            fits = [fit for fit in fits if abs(fit.target_value - median) <= 3 * mad + 0.02]
        return fits

    def mcmc_sampling(self, fits: list[CurveFit], y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sample ensemble weights and noise level; returns ``(weights (S, K), sigmas (S,))``."""
        rng = np.random.default_rng(self.seed)
        F = np.stack([fit.fitted for fit in fits])  # (K, T)
        n_models, n_points = F.shape
        n_chains = self.n_chains

        def log_posterior(log_u: np.ndarray, log_sigma: np.ndarray) -> np.ndarray:
            u = np.exp(log_u)
            w = u / u.sum(axis=1, keepdims=True)
            sse = np.sum((w @ F - y) ** 2, axis=1)
            sigma = np.exp(log_sigma)
            # Exp(1) prior on u with the Jacobian of log u; 1/sigma prior is flat in log sigma.
            log_prior = np.sum(log_u - u, axis=1)
            return log_prior - n_points * log_sigma - sse / (2 * sigma**2)

        equal = F.mean(axis=0)
        sigma_mle = max(float(np.sqrt(np.mean((equal - y) ** 2))), 1e-4)
        log_u = rng.normal(0.0, 0.1, size=(n_chains, n_models))
        log_sigma = np.full(n_chains, np.log(sigma_mle))
        log_p = log_posterior(log_u, log_sigma)
        kept_w, kept_sigma = [], []
        for step in range(self.n_steps):
            prop_u = log_u + rng.normal(0.0, 0.3, size=log_u.shape)
            prop_sigma = np.maximum(log_sigma + rng.normal(0.0, 0.1, size=n_chains), np.log(1e-4))
            prop_p = log_posterior(prop_u, prop_sigma)
            accept = np.log(rng.random(n_chains)) < prop_p - log_p
            log_u = np.where(accept[:, None], prop_u, log_u)
            log_sigma = np.where(accept, prop_sigma, log_sigma)
            log_p = np.where(accept, prop_p, log_p)
            if step >= self.burn_in:
                u = np.exp(log_u)
                kept_w.append(u / u.sum(axis=1, keepdims=True))
                kept_sigma.append(np.exp(log_sigma))
        return np.concatenate(kept_w), np.concatenate(kept_sigma)

    # ---- step 2: predicting ----------------------------------------------------------------

    @staticmethod
    def f_comb(x, fits: list[CurveFit], weights: np.ndarray) -> np.ndarray:
        """The weighted combination at positions ``x``; ``weights`` is ``(K,)`` or ``(S, K)``."""
        with np.errstate(all="ignore"):
            values = np.stack([fit.model(np.atleast_1d(x), fit.params) for fit in fits])  # (K, X)
        return np.asarray(weights) @ values

    def predict(self, trial_history: Sequence[float]) -> float | None:
        """Posterior mean of the learning curve at ``target_pos``, or ``None``.

        ``None`` means the fit did not converge: fewer than :data:`MIN_POINTS` values, no
        finite values, or no curve family survived the filter.
        """
        y = np.asarray(trial_history, dtype=float)
        if len(y) < MIN_POINTS or not np.all(np.isfinite(y)):
            return None
        scale = float(np.max(np.abs(y))) or 1.0
        y = y / scale
        fits = self.filter_curve(self.fit_theta(y), y)
        if not fits:
            return None
        weights, _sigmas = self.mcmc_sampling(fits, y)
        targets = np.array([fit.target_value for fit in fits])
        prediction = float(np.mean(weights @ targets))
        if not np.isfinite(prediction):
            return None
        return prediction * scale


def _finite(residuals: np.ndarray) -> np.ndarray:
    """Residuals with NaN / infinities replaced by a large finite penalty (keeps the solver going)."""
    if np.isfinite(residuals).all():
        return residuals
    return np.nan_to_num(residuals, nan=1e3, posinf=1e3, neginf=-1e3)
