"""Bayesian optimisation over architectures (after Auto-Keras): a Gaussian process whose kernel
is built on an edit distance between networks, and a simulated-annealing search of morphs that
maximises an upper-confidence acquisition.

Simplifications (documented, the docs only name the method): the edit distance is a
Levenshtein distance over the conv/dense width sequences (substitution cost
``|a - b| / max(a, b)``, insertion/deletion 1) plus a matching distance between the skip
connections; the kernel is ``exp(-d^2 / 2)`` with a jitter on the diagonal (the distance is not
guaranteed to give a positive-definite kernel, so the solve falls back to least squares).
"""
from __future__ import annotations

import math
import random

import numpy as np

from .graph import Graph

__all__ = ["edit_distance", "EditDistanceGP", "BayesianOptimizer"]

_MAX_STEPS = 20


def _encode(layers: list[tuple[str, int]]) -> tuple[np.ndarray, np.ndarray]:
    kinds = np.array([0 if k == "StubConv" else 1 for k, _ in layers], dtype=np.int8)
    widths = np.array([max(w, 1) for _, w in layers], dtype=float)
    return kinds, widths


def _layers_distance_encoded(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """Levenshtein distance, one DP row at a time: ``cur[j] = j + cummin(base[k] - k)`` resolves
    the insertion chain without a Python loop over ``j``."""
    (ka, wa), (kb, wb) = a, b
    n, m = len(wa), len(wb)
    if n == 0 or m == 0:
        return float(n + m)
    sub = np.abs(wa[:, None] - wb[None, :]) / np.maximum(wa[:, None], wb[None, :])
    sub[ka[:, None] != kb[None, :]] = 1.0
    idx = np.arange(m + 1, dtype=float)
    prev = idx.copy()
    for i in range(1, n + 1):
        base = np.empty(m + 1)
        base[0] = i
        base[1:] = np.minimum(prev[1:] + 1.0, prev[:-1] + sub[i - 1])
        prev = idx + np.minimum.accumulate(base - idx)
    return float(prev[m])


def _layers_distance(a: list[tuple[str, int]], b: list[tuple[str, int]]) -> float:
    return _layers_distance_encoded(_encode(a), _encode(b))


def _skip_distance(a: list[tuple[int, int, str]], b: list[tuple[int, int, str]]) -> float:
    """Matching distance between two sorted skip-connection lists."""
    d = float(abs(len(a) - len(b)))
    for (s1, e1, k1), (s2, e2, k2) in zip(a, b):
        d += (abs(s1 - s2) + abs(e1 - e2)) / max(e1, e2, 1) + (0.5 if k1 != k2 else 0.0)
    return d


def edit_distance(x: Graph, y: Graph) -> float:
    """Distance between two architectures (0 for the same layer widths and skip connections)."""
    return (_layers_distance(x.layer_widths(), y.layer_widths())
            + _skip_distance(sorted(x.skip_connections()), sorted(y.skip_connections())))


class _Features:
    """The parts of a graph the distance looks at, computed once."""

    __slots__ = ("widths", "skips")

    def __init__(self, graph: Graph):
        self.widths = _encode(graph.layer_widths())
        self.skips = sorted(graph.skip_connections())

    def distance(self, other: "_Features") -> float:
        return _layers_distance_encoded(self.widths, other.widths) + _skip_distance(self.skips, other.skips)


def _batch_layers_distance(a: tuple[np.ndarray, np.ndarray], kinds: np.ndarray, widths: np.ndarray,
                           lengths: np.ndarray) -> np.ndarray:
    """:func:`_layers_distance_encoded` from ``a`` to many sequences at once (rows of the padded
    ``kinds``/``widths``; padding never affects the columns before it)."""
    ka, wa = a
    h, m = widths.shape
    if len(wa) == 0:
        return lengths.astype(float)
    idx = np.arange(m + 1, dtype=float)
    prev = np.broadcast_to(idx, (h, m + 1)).copy()
    base = np.empty((h, m + 1))
    for i in range(len(wa)):
        sub = np.abs(wa[i] - widths) / np.maximum(wa[i], widths)
        sub[kinds != ka[i]] = 1.0
        base[:, 0] = i + 1
        np.minimum(prev[:, 1:] + 1.0, prev[:, :-1] + sub, out=base[:, 1:])
        prev = idx + np.minimum.accumulate(base - idx, axis=1)
    return prev[np.arange(h), lengths]


class EditDistanceGP:
    """GP regression of a loss over graphs, with the edit-distance kernel."""

    def __init__(self, jitter: float = 1e-2):
        self.jitter = jitter
        self.features: list[_Features] = []
        self.y = np.zeros(0)
        self._alpha = np.zeros(0)
        self._kinv = np.zeros((0, 0))
        self._mean = 0.0
        self._scale = 1.0

    def _distances(self, f: _Features) -> np.ndarray:
        d = _batch_layers_distance(f.widths, self._kinds, self._widths, self._lengths)
        if f.skips or self._any_skips:
            d = d + np.array([_skip_distance(f.skips, o.skips) for o in self.features])
        return d

    def fit(self, graphs: list[Graph], losses: list[float]) -> None:
        self.features = [_Features(g) for g in graphs]
        n = len(self.features)
        m = max([len(f.widths[1]) for f in self.features] + [1])
        self._kinds = np.full((n, m), -1, dtype=np.int8)
        self._widths = np.ones((n, m))
        self._lengths = np.array([len(f.widths[1]) for f in self.features], dtype=int)
        for i, f in enumerate(self.features):
            self._kinds[i, :len(f.widths[0])] = f.widths[0]
            self._widths[i, :len(f.widths[1])] = f.widths[1]
        self._any_skips = any(f.skips for f in self.features)
        y = np.asarray(losses, dtype=float)
        self._mean = float(y.mean()) if len(y) else 0.0
        self._scale = float(y.std()) or 1.0
        self.y = (y - self._mean) / self._scale
        k = np.array([np.exp(-0.5 * self._distances(f) ** 2) for f in self.features]).reshape(n, n)
        k = 0.5 * (k + k.T) + np.eye(n) * self.jitter
        self._kinv = np.linalg.pinv(k)
        self._alpha = self._kinv @ self.y

    def predict(self, graph: Graph) -> tuple[float, float]:
        """Predicted loss mean and standard deviation."""
        if not self.features:
            return 0.0, 1.0
        kx = np.exp(-0.5 * self._distances(_Features(graph)) ** 2)
        mean = float(kx @ self._alpha)
        var = max(1.0 + self.jitter - float(kx @ self._kinv @ kx), 1e-9)
        return mean * self._scale + self._mean, math.sqrt(var) * self._scale


class BayesianOptimizer:
    """Pick the next architecture: simulated annealing over morphs of the best graphs, scored by
    the lower confidence bound ``mean - beta * std`` of the loss (``t_min``: final temperature)."""

    def __init__(self, rng: random.Random, beta: float = 2.576, t_min: float = 1e-4, max_model_size: int = 1 << 24):
        self.rng = rng
        self.beta = beta
        self.t_min = t_min
        self.max_model_size = max_model_size
        self.gp = EditDistanceGP()

    def fit(self, graphs: list[Graph], losses: list[float]) -> None:
        self.gp.fit(graphs, losses)

    def acquisition(self, graph: Graph) -> float:
        mean, std = self.gp.predict(graph)
        return mean - self.beta * std

    def generate(self, parents: list[tuple[Graph, int]], seen: set[str]) -> tuple[Graph, int] | None:
        """The best-scoring unseen child graph found by annealing from ``parents`` (graph, id)."""
        best: tuple[float, Graph, int] | None = None
        # Auto-Keras cools by 0.9 per step down to t_min (88 steps at 1e-4); at most
        # _MAX_STEPS steps here keep a suggestion well under a second
        temp, decay = 1.0, min(0.9, self.t_min ** (1.0 / _MAX_STEPS))
        current = [(self.acquisition(g), g, pid) for g, pid in parents]
        while temp > self.t_min and current:
            nxt = []
            for score, graph, father in current:
                try:
                    child = graph.random_morph(self.rng)
                except ValueError:
                    continue
                if child.n_params() > self.max_model_size:
                    continue
                child_score = self.acquisition(child)
                if child.signature() not in seen and (best is None or child_score < best[0]):
                    best = (child_score, child, father)
                # Metropolis acceptance: a worse child is kept with probability exp(-delta / T)
                delta = child_score - score
                if delta < 0 or self.rng.random() < math.exp(-delta / max(temp, 1e-12)):
                    nxt.append((child_score, child, father))
                else:
                    nxt.append((score, graph, father))
            current = nxt
            temp *= decay
        return None if best is None else (best[1], best[2])
