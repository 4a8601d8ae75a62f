"""Metis: GP + GMM exploration/exploitation with re-sampling (builtin name ``MetisTuner``).

Example config::

    tuner:
      name: MetisTuner
      classArgs:
        optimize_mode: maximize
        no_resampling: true
        no_candidates: false
        selection_num_starting_points: 600
        cold_start_num: 10
        exploration_probability: 0.9

Search-space types: ``choice`` (numbers only), ``randint``, ``uniform``, ``quniform``; no nested
choices (the support table of the v2.5 docs).

The docs describe Metis only at a high level; this implementation decides:

* After ``cold_start_num`` random configurations, a Gaussian process (Matern 2.5, the same model
  as :class:`~nni.algorithms.hpo.gp_tuner.GPTuner`) is fitted on every result (repeated
  configurations averaged).
* **Exploitation** candidate: the GP's predicted optimum (best mean), found from
  ``selection_num_starting_points`` random points refined by L-BFGS-B.
* **Exploration** candidates: (a) the point with the best optimistic bound ``mean + 2 std`` of
  the GP, (b) the best point under a Gaussian mixture model of the *good* results (top quarter)
  against a mixture of the others, scored by ``log p_good - log p_bad`` over samples of the good
  mixture. With probability ``exploration_probability`` one exploration candidate is sent, the
  one with the higher GP probability of improving on the best result (the larger expected
  information gain); otherwise the exploitation candidate.
* **Re-sampling** (``no_resampling: false``): a result whose leave-one-out GP prediction misses
  it by more than 3 standard deviations is an outlier; if it is among the best quarter of the
  results and has been evaluated only once, it is sent again (once) before anything else.
  Repeated results of one configuration are averaged by the model.
* ``no_candidates: true`` skips the exploration candidates: every model-based suggestion is the
  GP's predicted optimum.
* A suggestion that equals a configuration already tried or running gives way to the next best
  candidate, else a random one; running trials count at the model's mean.
"""
from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from nni.tuner import Tuner
from nni.utils import ClassArgsValidator

from ._gp_core import GpTunerBase, first_new, maximize, point_key
from ._tuner_support import check_search_space, parse_optimize_mode

__all__ = ["MetisTuner", "MetisClassArgsValidator"]

_logger = logging.getLogger(__name__)

METIS_TYPES = ("choice", "randint", "uniform", "quniform")


class MetisClassArgsValidator(ClassArgsValidator):
    def validate_class_args(self, **kwargs: Any) -> None:
        self.check(kwargs, optional={
            "optimize_mode": self.choices("optimize_mode", "maximize", "minimize"),
            "no_resampling": bool,
            "no_candidates": bool,
            "selection_num_starting_points": self.range("selection_num_starting_points", int, 1, None),
            "cold_start_num": self.range("cold_start_num", int, 0, None),
            "exploration_probability": self.range("exploration_probability", float, 0, 1),
            "seed": self.range("seed", int, 0, None),
        })


class MetisTuner(GpTunerBase, Tuner):
    """Metis: a GP for exploitation, a GMM over good/bad results for exploration, re-sampling of noisy points.

    Args:
        optimize_mode: ``'maximize'`` (default) or ``'minimize'`` the reported metric.
        no_resampling: ``True`` (default) never re-sends a configuration to check a noisy result.
        no_candidates: ``True`` sends only the GP's predicted optimum (no exploration candidates).
        selection_num_starting_points: random starting points of the searches over the model (600).
        cold_start_num: random configurations before the model is used (10).
        exploration_probability: probability of sending an exploration candidate (0.9).
        seed: random seed (``None``: not reproducible).

    Example:
        >>> tuner = MetisTuner(optimize_mode='minimize', cold_start_num=3, seed=0)
        >>> tuner.update_search_space({'x': {'_type': 'uniform', '_value': [-1, 1]}})
        >>> for i in range(5):
        ...     p = tuner.generate_parameters(i)
        ...     tuner.receive_trial_result(i, p, p['x'] ** 2)
    """

    class_args_validator = MetisClassArgsValidator
    supported_types = METIS_TYPES
    name = "MetisTuner"
    nu = 2.5
    alpha = 1e-6

    def __init__(self, optimize_mode: str = "maximize", no_resampling: bool = True, no_candidates: bool = False,
                 selection_num_starting_points: int = 600, cold_start_num: int = 10,
                 exploration_probability: float = 0.9, seed: int | None = None):
        self.optimize_mode = parse_optimize_mode(optimize_mode, "MetisTuner")
        self.no_resampling = bool(no_resampling)
        self.no_candidates = bool(no_candidates)
        if isinstance(selection_num_starting_points, bool) or not isinstance(selection_num_starting_points, int) \
                or selection_num_starting_points < 1:
            raise ValueError("MetisTuner: classArgs.selection_num_starting_points must be an integer >= 1, "
                             f"got {selection_num_starting_points!r}")
        self.selection_num_starting_points = selection_num_starting_points
        self.cold_start_num = int(cold_start_num)
        if not 0 <= exploration_probability <= 1:
            raise ValueError("MetisTuner: classArgs.exploration_probability must be in [0, 1], "
                             f"got {exploration_probability!r}")
        self.exploration_probability = float(exploration_probability)
        self.rng = np.random.default_rng(seed)
        self._resampled: set[tuple] = set()
        self.last_choice = "random"  # which rule made the last suggestion (for logs and tests)
        self._init_state()

    # The GP tuner's points are restricted to the Metis types by the validation.
    def update_search_space(self, search_space: dict) -> None:
        check_search_space(search_space, self.name, METIS_TYPES, nested=False)
        super().update_search_space(search_space)

    def _suggest_now(self) -> np.ndarray:
        self.last_choice = "random"
        return super()._suggest_now()

    def _model_suggest(self, x: np.ndarray, y: np.ndarray, taken: set) -> np.ndarray | None:
        n_obs = len(self._x)
        if not self.no_resampling and not self._believer:
            again = self._noisy_point(x, y)
            if again is not None:
                self._resampled.add(point_key(again))
                self.last_choice = "resample"
                return again
        gp = self._fit(x, y, optimize=not self._believer)
        dim = self.box.dim
        n_start = self.selection_num_starting_points
        best = float(gp.normalise(y.max()))

        def mean(points: np.ndarray) -> np.ndarray:
            return gp.predict(points)[0]

        def mean_grad(points: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
            model = gp.predict_grad(points)
            return None if model is None else (model[0], model[2])

        exploit, _ = maximize(mean, dim, self.rng, n_start, 8, extra=x, func_grad=mean_grad)
        exploit_point = first_new(exploit, self.box, taken)
        if self.no_candidates or self.rng.random() >= self.exploration_probability:
            self.last_choice = "exploit"
            return exploit_point

        def optimistic(points: np.ndarray) -> np.ndarray:
            mu, sd = gp.predict(points)
            return mu + 2.0 * sd

        def optimistic_grad(points: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
            model = gp.predict_grad(points)
            return None if model is None else (model[0] + 2.0 * model[1], model[2] + 2.0 * model[3])

        explore, _ = maximize(optimistic, dim, self.rng, n_start, 8, func_grad=optimistic_grad)
        candidates = [c for c in (first_new(explore, self.box, taken), self._gmm_candidate(x, y, taken))
                      if c is not None]
        if not candidates:
            self.last_choice = "exploit"
            return exploit_point
        from scipy.special import ndtr

        mu, sd = gp.predict(np.array(candidates))
        gain = ndtr((mu - best) / sd)  # probability of improving on the best result
        self.last_choice = "explore"
        _logger.debug("MetisTuner: n=%d exploration candidates %s gains %s", n_obs, candidates, gain)
        return candidates[int(np.argmax(gain))]

    def _gmm_candidate(self, x: np.ndarray, y: np.ndarray, taken: set) -> np.ndarray | None:
        import warnings

        from sklearn.mixture import GaussianMixture

        n_good = max(2, int(math.ceil(0.25 * len(y))))
        if len(y) - n_good < 2:
            return None
        order = np.argsort(-y)
        good, bad = x[order[:n_good]], x[order[n_good:]]
        seed = int(self.rng.integers(2**31))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter on tiny samples
            gmm_good = GaussianMixture(min(3, len(good)), covariance_type="diag", reg_covar=1e-3,
                                       random_state=seed).fit(good)
            gmm_bad = GaussianMixture(min(3, len(bad)), covariance_type="diag", reg_covar=1e-3,
                                      random_state=seed).fit(bad)
            samples, _ = gmm_good.sample(self.selection_num_starting_points)
        samples = np.clip(samples, 0.0, 1.0)
        score = gmm_good.score_samples(samples) - gmm_bad.score_samples(samples)
        return first_new(samples[np.argsort(-score)], self.box, taken)

    def _noisy_point(self, x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
        """A good result that its neighbours contradict (leave-one-out), not re-sampled yet."""
        counts: dict[tuple, int] = {}
        for u in self._x:
            counts[point_key(u)] = counts.get(point_key(u), 0) + 1
        if len(y) < 4:
            return None
        gp = self._fit(x, y)
        # leave-one-out residuals of a GP in closed form: (K^-1 y)_i / (K^-1)_ii
        k_inv = gp.k_inv
        yn = gp.y_norm
        loo_resid = (k_inv @ yn) / np.diag(k_inv)
        loo_sd = np.sqrt(1.0 / np.diag(k_inv))
        z = np.abs(loo_resid) / loo_sd
        top = set(np.argsort(-y)[:max(1, len(y) // 4)].tolist())
        for i in np.argsort(-z):
            if z[i] <= 3.0:
                break
            key = point_key(x[i])
            if i in top and counts.get(key, 0) == 1 and key not in self._resampled:
                return x[i]
        return None
