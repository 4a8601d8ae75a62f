"""The differentiable learnability estimate that FeatureGradientSelector maximises.

For a feature mask ``s`` (each column ``d`` scaled by ``s_d``), the target is the share of the
target's variance that a linear model on the masked features explains, ``r_s^T Sigma_s^{-1} r_s``
(``r_s = E[x_s y]``, ``Sigma_s = E[x_s x_s^T]``, features and target centred, target variance 1).

Two ideas make it cheap and honest on small batches (both from the "sublinear learnability"
line of work the docs' paper builds on):

* ``Sigma^{-1}`` is replaced by a polynomial of degree ``order - 1``: the truncated Neumann series
  ``p(Sigma) = (1/alpha) sum_{m<K} (I - Sigma/alpha)^m``, ``alpha`` the top eigenvalue of the
  *unmasked* covariance (a bound for every mask ``s <= 1``), so ``lambda p(lambda) = 1 - (1 -
  lambda/alpha)^K`` lies in ``[0, 1]`` and grows towards 1 with the order ``K``: a lower estimate of
  R^2 that tightens with higher order (and higher-order chains see longer feature-feature
  interaction paths). The exact R^2 does not change when a feature is scaled, so it would give the
  mask no gradient; with ``alpha`` fixed, shrinking ``s_d`` shrinks feature ``d``'s eigen-directions
  towards the low end where the polynomial gives them little weight, so a feature's share of the
  estimate rises smoothly from 0 (off) to its full share (on). Expanding the powers gives
  ``f = sum_{k=1..K} (-1)^(k-1) C(K, k) r^T Sigma^(k-1) r / alpha^k``.
* ``r^T Sigma^(k-1) r`` is estimated without bias by averaging
  ``y_i1 x_i1^T x_i2 x_i2^T ... x_ik+1 y_ik+1`` over chains of *distinct* rows ``i1 < ... < ik+1``:
  with ``U`` the strictly upper triangle of the batch Gram matrix ``X_s X_s^T``, the sum over all
  chains is ``y^T U^k y`` and there are ``C(b, k+1)`` of them. Because no row meets itself, a
  column of pure noise has gradient zero in expectation, so the sparsity penalty switches it off
  instead of the noise's chance correlation switching it on.

Cost per batch of ``b`` rows and ``D`` columns: ``O(b^2 D)`` for the Gram matrix plus
``O(order b^2)``: linear in the number of features and (batch by batch) in the number of rows.
"""
from __future__ import annotations

import math

import torch


def chain_coefficients(order: int, batch_rows: int) -> list[float]:
    """``c_k`` for ``k = 1..order`` such that ``f = sum_k c_k * y^T (U/(alpha b))^k y`` (``U`` unscaled).

    ``c_k = (-1)^(k-1) C(order, k) b^k / C(b, k+1)``: the Neumann coefficient times the chain
    normaliser, with the ``b^k`` that keeps the iterated products near unit scale.
    """
    b = batch_rows
    coefficients = []
    for k in range(1, order + 1):
        log_norm = k * math.log(b) - (math.lgamma(b + 1) - math.lgamma(k + 2) - math.lgamma(b - k))
        coefficients.append((-1) ** (k - 1) * math.comb(order, k) * math.exp(log_norm))
    return coefficients


def top_eigenvalue(matvec, size: int, iterations: int = 50, seed: int = 0) -> float:
    """The largest eigenvalue of a symmetric positive semi-definite operator given by ``matvec``
    (power iteration from a fixed random start)."""
    import numpy as np

    vector = np.random.default_rng(seed).standard_normal(size)
    vector /= np.linalg.norm(vector)
    value = 0.0
    for _ in range(iterations):
        product = matvec(vector)
        norm = float(np.linalg.norm(product))
        if norm == 0.0:
            return 0.0
        converged = abs(norm - value) <= 1e-4 * norm
        value, vector = norm, product / norm
        if converged:
            break
    return value


def learnability(features: torch.Tensor, targets: torch.Tensor, order: int, alpha: float,
                 constant: torch.Tensor | None = None, row_scale: torch.Tensor | None = None) -> torch.Tensor:
    """The estimate ``f`` on one batch (differentiable in ``features``).

    Args:
        features: ``[b, D]`` masked, centred (and row-weighted) feature block.
        targets: ``[b, C]`` centred (and row-weighted) target columns; total variance 1.
        order: ``K``, the number of chain lengths (1..12).
        alpha: the top eigenvalue of the unmasked feature covariance.
        constant: optional scalar added to every Gram entry (before ``row_scale``): the part of
            the columns that are all-zero in a sparse batch, which centring turns into a constant.
        row_scale: optional ``[b]`` square roots of the row weights, applied to that constant.
    """
    b = features.shape[0]
    gram = features @ features.T
    if constant is not None:
        extra = constant if row_scale is None else constant * torch.outer(row_scale, row_scale)
        gram = gram + extra
    if alpha <= 0.0:
        return gram.sum() * 0.0
    upper = torch.triu(gram, diagonal=1) / (alpha * b)
    value = torch.zeros((), dtype=gram.dtype, device=gram.device)
    chain = targets
    for coefficient in chain_coefficients(order, b):
        chain = upper @ chain
        value = value + coefficient * (targets * chain).sum()
    return value
