"""DNGO tuner (builtin name ``DNGOTuner``): Bayesian optimisation with a neural-network surrogate.

Example config::

    tuner:
      name: DNGOTuner
      classArgs:
        optimize_mode: maximize
        sample_size: 1000
        trials_per_update: 20
        num_epochs_per_training: 500

DNGO (Snoek et al., 2015, "Scalable Bayesian Optimization Using Deep Neural Networks"): a small
MLP (3 tanh layers of 50 units) is trained on the normalised observations; its last hidden layer
is the basis of a Bayesian linear regression whose prior precision ``alpha`` and noise precision
``beta`` maximise the marginal likelihood (evidence fixed-point updates). The next trial is the
best of ``sample_size`` random configurations by expected improvement.

Decisions on what the docs leave open: the first ``trials_per_update`` trials are random (no
network before that many results); the network is retrained every ``trials_per_update`` new
results, while the linear head and ``alpha``/``beta`` are refitted on every result with the
current features (cheap), so each suggestion uses all data. Training runs on the CPU with one
thread, Adam (lr 0.01), at most 2 mini-batches per epoch (of at least 10 points): pybnn's
batches of 10 take 5x the time at 100 results for a Branin result within noise (median best
at 50 trials 0.42 against 0.44). PyTorch is imported on first training only; without it the
tuner fails with a one-line install hint. Search space: numerical types and ``choice``
of numbers only, no nesting (the docs' support table); a choice enters the model as its
(min-max scaled) value, ``randint`` as its integer. Extra classArg ``seed`` (int).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from nni.tuner import Tuner
from nni.utils import ClassArgsValidator

from ._space import FlatSpace
from ._tuner_support import ObservationLog, check_numeric_choices, check_search_space, parse_optimize_mode

__all__ = ["DNGOTuner", "DNGOClassArgsValidator"]

DNGO_TYPES = ("choice", "randint", "uniform", "quniform", "loguniform", "qloguniform")

_HIDDEN = 50
_BATCH = 10
_MAX_BATCHES = 2
_LR = 0.01


class DNGOClassArgsValidator(ClassArgsValidator):
    def validate_class_args(self, **kwargs: Any) -> None:
        self.check(kwargs, optional={
            "optimize_mode": self.choices("optimize_mode", "maximize", "minimize"),
            "sample_size": self.range("sample_size", int, 1, None),
            "trials_per_update": self.range("trials_per_update", int, 1, None),
            "num_epochs_per_training": self.range("num_epochs_per_training", int, 1, None),
            "seed": self.range("seed", int, 0, None),
        })


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError("DNGOTuner needs PyTorch: pip install torch (or pip install 'nni-hpo[torch]')") from None
    return torch


def _fit_blr(phi: np.ndarray, t: np.ndarray, iterations: int = 100) -> tuple[np.ndarray, np.ndarray, float]:
    """Bayesian linear regression with evidence-maximising ``alpha``/``beta`` (MacKay's updates).

    Returns the posterior mean ``m``, covariance ``S`` and the noise precision ``beta``."""
    n, d = phi.shape
    eig = np.linalg.eigvalsh(phi.T @ phi)
    alpha, beta = 1.0, 1000.0
    for _ in range(iterations):
        a = alpha * np.eye(d) + beta * phi.T @ phi
        m = beta * np.linalg.solve(a, phi.T @ t)
        lam = beta * eig
        gamma = float(np.sum(lam / (alpha + lam)))
        new_alpha = gamma / max(float(m @ m), 1e-12)
        resid = float(np.sum((t - phi @ m) ** 2))
        new_beta = max(n - gamma, 1e-6) / max(resid, 1e-12)
        new_alpha = min(max(new_alpha, 1e-6), 1e6)
        new_beta = min(max(new_beta, 1e-3), 1e6)  # cap: observations are never noise-free to the model
        done = abs(math.log(new_alpha / alpha)) < 1e-4 and abs(math.log(new_beta / beta)) < 1e-4
        alpha, beta = new_alpha, new_beta
        if done:
            break
    a = alpha * np.eye(d) + beta * phi.T @ phi
    s = np.linalg.inv(a)
    m = beta * s @ phi.T @ t
    return m, s, beta


class DNGOTuner(ObservationLog, Tuner):
    """DNGO: neural-network features + Bayesian linear regression as the BO surrogate.

    Args:
        optimize_mode: ``'maximize'`` (default) or ``'minimize'`` the reported metric.
        sample_size: random configurations scored per suggestion; the best is the next trial.
        trials_per_update: results collected between two trainings of the network.
        num_epochs_per_training: epochs of one training.
        seed: random seed (``None``: not reproducible).

    Example:
        >>> tuner = DNGOTuner(optimize_mode='minimize', trials_per_update=5, seed=0)
        >>> tuner.update_search_space({'x': {'_type': 'uniform', '_value': [-1, 1]}})
        >>> params = tuner.generate_parameters(0)
        >>> tuner.receive_trial_result(0, params, params['x'] ** 2)
    """

    class_args_validator = DNGOClassArgsValidator
    supported_types = DNGO_TYPES
    name = "DNGOTuner"

    def __init__(self, optimize_mode: str = "maximize", sample_size: int = 1000, trials_per_update: int = 20,
                 num_epochs_per_training: int = 500, seed: int | None = None):
        self.optimize_mode = parse_optimize_mode(optimize_mode, "DNGOTuner")
        for key, value in (("sample_size", sample_size), ("trials_per_update", trials_per_update),
                           ("num_epochs_per_training", num_epochs_per_training)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DNGOTuner: classArgs.{key} must be an integer >= 1, got {value!r}")
        self.sample_size = sample_size
        self.trials_per_update = trials_per_update
        self.num_epochs_per_training = num_epochs_per_training
        self.rng = np.random.default_rng(seed)
        self._init_observations()
        self._net: list[tuple[np.ndarray, np.ndarray]] | None = None  # hidden layers' (W, b)
        self._trained_at = 0  # number of results the network was last trained on
        self._scale: tuple[np.ndarray, np.ndarray] | None = None  # input offset, width per column
        self._choice_values: dict[int, np.ndarray] = {}

    # ------------------------------------------------------------------ Tuner API
    def update_search_space(self, search_space: dict) -> None:
        check_search_space(search_space, "DNGOTuner", DNGO_TYPES, nested=False)
        check_numeric_choices(search_space, "DNGOTuner")
        changed = self._set_space(FlatSpace(search_space))
        self._prepare_encoding()
        if changed:
            self._net, self._trained_at = None, 0

    # ------------------------------------------------------------------ encoding
    def _prepare_encoding(self) -> None:
        assert self.space is not None
        offset, width = [], []
        self._choice_values = {}
        for j, spec in enumerate(self.space.specs):
            if j in self.space.constants:
                lo, hi = 0.0, 0.0
            elif spec.type == "choice":
                values = np.array([float(v) for v in spec.values])
                self._choice_values[j] = values
                lo, hi = float(values.min()), float(values.max())
            elif spec.type == "randint":
                lo, hi = 0.0, float(spec.size - 1)  # FlatSpace keeps randint as its offset from lower
            else:
                lo, hi = float(spec.low), float(spec.high)
            offset.append(lo)
            width.append(hi - lo if hi > lo else 1.0)
        self._scale = (np.array(offset), np.array(width))

    def _encode(self, rows: np.ndarray) -> np.ndarray:
        assert self._scale is not None
        x = np.array(rows, dtype=float, copy=True)
        for j, values in self._choice_values.items():
            x[:, j] = values[x[:, j].astype(int)]
        x = (x - self._scale[0]) / self._scale[1]
        return np.nan_to_num(x)

    # ------------------------------------------------------------------ model
    def _train(self, x: np.ndarray, t: np.ndarray) -> None:
        torch = _torch()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # tiny network: threads cost more than they give
        try:
            gen = torch.Generator().manual_seed(int(self.rng.integers(2**31 - 1)))
            torch.manual_seed(int(self.rng.integers(2**31 - 1)))
            d = x.shape[1]
            net = torch.nn.Sequential(
                torch.nn.Linear(d, _HIDDEN), torch.nn.Tanh(),
                torch.nn.Linear(_HIDDEN, _HIDDEN), torch.nn.Tanh(),
                torch.nn.Linear(_HIDDEN, _HIDDEN), torch.nn.Tanh(),
                torch.nn.Linear(_HIDDEN, 1),
            ).double()
            opt = torch.optim.Adam(net.parameters(), lr=_LR)
            xt = torch.from_numpy(x)
            tt = torch.from_numpy(t)[:, None]
            n = len(x)
            # at most _MAX_BATCHES steps per epoch: the per-step overhead of torch, not the
            # arithmetic, is the cost of training a network this small
            batch = max(_BATCH, -(-n // _MAX_BATCHES))
            for _ in range(self.num_epochs_per_training):
                perm = torch.randperm(n, generator=gen)
                for start in range(0, n, batch):
                    idx = perm[start:start + batch]
                    opt.zero_grad()
                    loss = torch.mean((net(xt[idx]) - tt[idx]) ** 2)
                    loss.backward()
                    opt.step()
            # the feature map is evaluated in numpy: no torch (or its thread pool) per suggestion
            self._net = [(layer.weight.detach().numpy().T.copy(), layer.bias.detach().numpy().copy())
                         for layer in net if isinstance(layer, torch.nn.Linear)][:-1]
        finally:
            torch.set_num_threads(threads)

    def _features(self, x: np.ndarray) -> np.ndarray:
        """The last hidden layer's activations (plus a bias column): the basis of the regression."""
        h = x
        for weight, bias in self._net:
            h = np.tanh(h @ weight + bias)
        return np.hstack([h, np.ones((len(h), 1))])

    def _suggest(self) -> np.ndarray:
        assert self.space is not None
        n = len(self._rows)
        if n < self.trials_per_update or not self.space.dims:
            return self.space.sample(self.rng, 1)[0]
        x = self._encode(np.array(self._rows))
        losses = np.array(self._losses)
        finite = np.isfinite(losses)
        y = np.where(finite, losses, losses[finite].max() if finite.any() else 0.0)
        mu, sd = y.mean(), y.std() or 1.0
        t = (y - mu) / sd
        if self._net is None or n - self._trained_at >= self.trials_per_update:
            self._train(x, t)
            self._trained_at = n
        m, s, beta = _fit_blr(self._features(x), t)
        cand = self.space.sample(self.rng, self.sample_size)
        phi = self._features(self._encode(cand))
        mean = phi @ m
        var = 1.0 / beta + np.einsum("ij,jk,ik->i", phi, s, phi)
        std = np.sqrt(np.maximum(var, 1e-12))
        from scipy.special import ndtr

        z = (t.min() - mean) / std
        ei = std * (z * ndtr(z) + np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi))
        return cand[int(np.argmax(ei))]
