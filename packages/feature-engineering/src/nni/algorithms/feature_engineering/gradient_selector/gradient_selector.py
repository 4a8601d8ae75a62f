"""FeatureGradientSelector: gradient-based feature selection over a relaxed feature mask.

Each feature (or group of features) gets a score ``z``; the data is fed through the soft mask
``s = sigmoid(z)`` and ``z`` follows the gradient of a mini-batch, unbiased learnability estimate
(see :mod:`.learnability`) minus ``penalty`` times the mask's size (a sparse-group penalty when
``soft_grouping``). Informative features gain score; pure noise has zero expected gradient and the
penalty switches it off. With ``n_features`` given, the search also narrows: from 20 % to 60 % of
the planned steps the features (groups) still in play shrink geometrically to ``n_features``,
each step eliminating those whose first-order saliency (the learnability they would take with
them, ``-mask * d loss / d mask``, averaged over the steps so far, then over recent ones) is
lowest. Among correlated features the mask alone ranks poorly (early on they share the credit
and all rise together); the saliency, measured against the features still left, keeps the one
that adds the most to the others. The selected features are then the survivors, or with
``n_features=None`` those whose mask ends above 0.5 (or the elbow of the sorted scores, up to
``max_features``).
"""
from __future__ import annotations

import math
import numbers
import time

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin

from nni.feature_engineering.feature_selector import FeatureSelector

INITS = ("zero", "on", "off", "onhigh", "offhigh", "sklearn")
PREPROCESSES = ("zscore", "center")
MAX_ORDER = 12
ELIMINATION_START, ELIMINATION_END = 0.2, 0.6  # shares of the planned steps
SALIENCY_DECAY = 0.5
_INIT_LOGITS = {"zero": 0.0, "on": 1.0, "off": -1.0, "onhigh": 3.0, "offhigh": -3.0}
# The docs spell two arguments differently from their own example code; accept both spellings.
_DOC_SPELLINGS = {"penatly": "penalty", "prerocess": "preprocess"}


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class FeatureGradientSelector(FeatureSelector, SelectorMixin, BaseEstimator):
    """Feature selection by gradient ascent on a relaxed feature mask.

    Args:
        order: highest interaction order (chain length) of the learnability estimate, 1..12.
        penalty: multiplier of the sparsity term (the mask's mean; including every feature costs
            ``penalty`` units of R^2). Also accepted as ``penatly`` (the docs' spelling).
        n_features: number of features (groups) to select; ``None`` chooses automatically. When
            given, the search eliminates features down to this many (see the module docs).
        max_features: with ``n_features=None``, pick the number by the elbow of the sorted scores,
            at most this many.
        learning_rate: step size of the (RMS-normalised, momentum) gradient steps.
        init: initial scores: ``zero``, ``on``, ``off``, ``onhigh``, ``offhigh`` or ``sklearn``
            (univariate F-test scores).
        n_epochs: passes over the data.
        shuffle: shuffle the rows before each epoch.
        batch_size: rows per Gram-matrix batch (memory is ``batch_size^2``).
        target_batch_size: rows whose gradients are accumulated into one step.
        max_time: stop the search after this many seconds.
        classification: classification (``y`` are labels) or regression.
        ordinal: classification with ordered classes (the target is the class rank); with
            ``False`` each class is a target column. Ignored for regression.
        balanced: weight the classes equally (else by their support). Ignored for regression.
        preprocess: ``zscore`` (centre and scale to unit variance) or ``center``. Also accepted
            as ``prerocess`` (the docs' spelling).
        soft_grouping: with ``groups``, one score per feature and a sparse-group penalty (groups
            still selected as units); with ``False`` one shared score per group.
        verbose: print progress every ``verbose`` steps (0: silent).
        device: torch device, ``cpu`` or ``cuda``.
        random_state: seed of the row shuffling (``None``: fresh randomness).

    Attributes (after ``fit``):
        selected_features_: selected column indices, best first.
        scores_: final mask value ``sigmoid(z)`` per column (0 for eliminated ones).
        eliminated_: with ``n_features``, the feature (group) indices eliminated during the search,
            first eliminated first.
        n_features_in_: number of input columns.
        n_steps_: gradient steps taken.
    """

    def __init__(self, order=4, penalty=1, n_features=None, max_features=None, learning_rate=1e-1,
                 init="zero", n_epochs=1, shuffle=True, batch_size=1000, target_batch_size=1000,
                 max_time=np.inf, classification=True, ordinal=True, balanced=True, preprocess="zscore",
                 soft_grouping=True, verbose=0, device="cpu", random_state=None, **doc_spellings):
        for key in doc_spellings:
            if key not in _DOC_SPELLINGS:
                raise TypeError(f"FeatureGradientSelector() got an unexpected keyword argument {key!r}")
        penalty = doc_spellings.get("penatly", penalty)
        preprocess = doc_spellings.get("prerocess", preprocess)
        self.order = order
        self.penalty = penalty
        self.n_features = n_features
        self.max_features = max_features
        self.learning_rate = learning_rate
        self.init = init
        self.n_epochs = n_epochs
        self.shuffle = shuffle
        self.batch_size = batch_size
        self.target_batch_size = target_batch_size
        self.max_time = max_time
        self.classification = classification
        self.ordinal = ordinal
        self.balanced = balanced
        self.preprocess = preprocess
        self.soft_grouping = soft_grouping
        self.verbose = verbose
        self.device = device
        self.random_state = random_state
        self._check_params()

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> None:
        def fail(name, value, allowed):
            raise ValueError(f"FeatureGradientSelector: {name}={value!r} is invalid; allowed: {allowed}")

        if not _is_int(self.order) or not 1 <= self.order <= MAX_ORDER:
            fail("order", self.order, f"an integer from 1 to {MAX_ORDER}")
        if not _is_number(self.penalty) or not self.penalty >= 0 or not math.isfinite(self.penalty):
            fail("penalty", self.penalty, "a finite number >= 0")
        if self.n_features is not None and (not _is_int(self.n_features) or self.n_features < 1):
            fail("n_features", self.n_features, "None or an integer >= 1")
        if self.max_features is not None and (not _is_int(self.max_features) or self.max_features < 1):
            fail("max_features", self.max_features, "None or an integer >= 1")
        if not _is_number(self.learning_rate) or not 0 < self.learning_rate < math.inf:
            fail("learning_rate", self.learning_rate, "a finite number > 0")
        if self.init not in INITS:
            fail("init", self.init, ", ".join(INITS))
        if not _is_int(self.n_epochs) or self.n_epochs < 1:
            fail("n_epochs", self.n_epochs, "an integer >= 1")
        for name in ("shuffle", "classification", "ordinal", "balanced", "soft_grouping"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                fail(name, getattr(self, name), "True or False")
        if not _is_int(self.batch_size) or self.batch_size < self.order + 1:
            fail("batch_size", self.batch_size, f"an integer >= order + 1 = {self.order + 1 if _is_int(self.order) else 2}")
        if not _is_int(self.target_batch_size) or self.target_batch_size < 1:
            fail("target_batch_size", self.target_batch_size, "an integer >= 1")
        if not _is_number(self.max_time) or not self.max_time > 0:
            fail("max_time", self.max_time, "a number of seconds > 0 (np.inf: no limit)")
        if self.preprocess not in PREPROCESSES:
            fail("preprocess", self.preprocess, ", ".join(PREPROCESSES))
        if not _is_int(self.verbose) or self.verbose < 0:
            fail("verbose", self.verbose, "an integer >= 0")
        if self.random_state is not None and not _is_int(self.random_state) \
                and not isinstance(self.random_state, np.random.Generator):
            fail("random_state", self.random_state, "None, an integer or a numpy Generator")
        self._torch_device()

    def _torch_device(self):
        import torch

        try:
            device = torch.device(self.device)
        except (RuntimeError, TypeError):
            raise ValueError(f"FeatureGradientSelector: device={self.device!r} is invalid; allowed: 'cpu', 'cuda', "
                             "'cuda:N'") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"FeatureGradientSelector: device={self.device!r} is not available here "
                             "(torch.cuda.is_available() is False); use device='cpu'")
        if device.type not in ("cpu", "cuda"):
            raise ValueError(f"FeatureGradientSelector: device={self.device!r} is invalid; allowed: 'cpu', 'cuda', "
                             "'cuda:N'")
        return device

    # ------------------------------------------------------------------ data
    def _prepare_x(self, X):
        if sp.issparse(X):
            X = sp.csr_matrix(X, dtype=np.float64)
            if X.ndim != 2:
                raise ValueError(f"X: expected a 2-d matrix, got shape {X.shape}")
            if not np.all(np.isfinite(X.data)):
                raise ValueError("X: contains NaN or infinity; allowed: finite numbers")
            mean = np.asarray(X.mean(axis=0)).ravel()
            var = np.asarray(X.multiply(X).mean(axis=0)).ravel() - mean ** 2
        else:
            try:
                X = np.asarray(X, dtype=np.float64)
            except (TypeError, ValueError) as err:
                raise ValueError(f"X: cannot be read as a numeric matrix ({err}); allowed: numbers") from None
            if X.ndim != 2:
                raise ValueError(f"X: expected a 2-d array [n_samples, n_features], got shape {X.shape}")
            if not np.all(np.isfinite(X)):
                raise ValueError("X: contains NaN or infinity; allowed: finite numbers")
            mean = X.mean(axis=0)
            var = X.var(axis=0)
        if X.shape[1] < 1:
            raise ValueError("X: has no columns; allowed: at least one feature")
        std = np.sqrt(np.maximum(var, 0.0))
        # Constant columns keep scale 1: centred they are all zero and carry no signal.
        scale = np.where(std > 1e-12, std, 1.0) if self.preprocess == "zscore" else np.ones_like(std)
        return X, mean, scale

    def _prepare_y(self, y, n_samples):
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        if y.ndim != 1 or y.shape[0] != n_samples:
            raise ValueError(f"y: expected shape [{n_samples}] (one target per row of X), got {y.shape}")
        weights = np.ones(n_samples)
        if self.classification:
            classes, codes = np.unique(y, return_inverse=True)
            if len(classes) < 2:
                raise ValueError(f"y: classification needs at least 2 classes, got {len(classes)}; "
                                 "set classification=False for a numeric target")
            self.classes_ = classes
            if self.balanced:
                counts = np.bincount(codes)
                weights = n_samples / (len(classes) * counts[codes])
            if self.ordinal or len(classes) == 2:
                targets = codes[:, None].astype(np.float64)
            else:
                targets = np.eye(len(classes))[codes]
        else:
            try:
                targets = y.astype(np.float64)[:, None]
            except (TypeError, ValueError):
                raise ValueError("y: regression (classification=False) needs numbers") from None
            if not np.all(np.isfinite(targets)):
                raise ValueError("y: contains NaN or infinity; allowed: finite numbers")
        weights = weights / weights.mean()
        targets = targets - (weights[:, None] * targets).sum(axis=0) / weights.sum()
        variance = float((weights[:, None] * targets ** 2).sum() / weights.sum())
        if variance <= 0.0:
            raise ValueError("y: is constant; a feature selector needs a target that varies")
        return targets / math.sqrt(variance), weights

    def _prepare_groups(self, groups, n_features):
        if groups is None:
            return np.arange(n_features), n_features
        groups = np.asarray(groups)
        if groups.shape != (n_features,):
            raise ValueError(f"groups: expected one group id per column of X, shape [{n_features}], got {groups.shape}")
        _, index = np.unique(groups, return_inverse=True)
        return index, int(index.max()) + 1

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, groups=None):
        """Search the feature scores on ``X`` ``[n_samples, n_features]`` (numpy array or scipy sparse
        matrix) and ``y`` ``[n_samples]``; ``groups`` ``[n_features]`` gives columns that are
        selected as a unit (e.g. ``[0, 0, 1, 2]``: the first two columns form one unit)."""
        import torch

        from .learnability import learnability, top_eigenvalue

        self._check_params()
        device = self._torch_device()
        X, mean, scale = self._prepare_x(X)
        n_samples, n_columns = X.shape
        if n_samples < self.order + 1:
            raise ValueError(f"X: has {n_samples} rows; order={self.order} needs at least order + 1 = {self.order + 1}")
        targets, weights = self._prepare_y(y, n_samples)
        group_index, n_groups = self._prepare_groups(groups, n_columns)
        if self.n_features is not None and self.n_features > n_groups:
            unit = "groups" if groups is not None else "features"
            raise ValueError(f"n_features: {self.n_features} is more than the {n_groups} {unit} of X")
        self.n_features_in_ = n_columns

        rng = np.random.default_rng(self.random_state)

        def covariance_matvec(vector):
            # (X - mean) / scale, rows weighted, times vector, without densifying a sparse X
            u = vector / scale
            w = weights * (np.asarray(X @ u).ravel() - mean @ u)
            return (np.asarray(X.T @ w).ravel() - mean * w.sum()) / scale / n_samples

        # alpha stays the bound of *all* columns while features are eliminated: recomputed for the
        # survivors it would push their polynomial into saturation, where the mask gradient (and
        # so the saliency of the strongest features) vanishes
        alpha = top_eigenvalue(covariance_matvec, n_columns)
        alive_cols = np.ones(n_columns, dtype=bool)
        dtype = torch.float32
        hard = groups is not None and not self.soft_grouping
        n_scores = n_groups if hard else n_columns
        logits = torch.full((n_scores,), 0.0, dtype=torch.float64, device=device)
        if self.init == "sklearn":
            logits += torch.as_tensor(self._sklearn_init(X, y, group_index, n_groups, hard), device=device)
        else:
            logits += _INIT_LOGITS[self.init]
        logits.requires_grad_(True)
        group_t = torch.as_tensor(group_index, device=device)
        group_sizes = torch.bincount(group_t, minlength=n_groups).to(torch.float64)
        inv_scale = torch.as_tensor(1.0 / scale, dtype=dtype, device=device)
        # Sparse batches densify only the columns they touch; centring turns each untouched column
        # into the constant -mean/scale, whose share of the Gram matrix is a constant per entry.
        offset_sq = torch.as_tensor((mean / scale) ** 2, dtype=dtype, device=device)
        mean_t = torch.as_tensor(mean, dtype=dtype, device=device)
        sparse = sp.issparse(X)

        n_batches = max(1, n_samples // self.batch_size)
        per_step = max(1, round(self.target_batch_size / self.batch_size))
        planned_steps = self.n_epochs * math.ceil(n_batches / per_step)
        schedule = self._elimination_schedule(n_groups, planned_steps)
        warmup_steps = int(ELIMINATION_START * planned_steps)
        unit_alive = np.ones(n_groups, dtype=bool)
        alive_t = torch.ones(n_scores, dtype=torch.float64, device=device)
        dropped: list[int] = []  # units eliminated, earliest (worst) first
        saliency = None
        momentum, second, beta1, beta2 = torch.zeros_like(logits), 0.0, 0.9, 0.999
        start = time.perf_counter()
        self.n_steps_ = 0
        self.objective_ = float("nan")
        out_of_time = False
        for _ in range(self.n_epochs):
            order = rng.permutation(n_samples) if self.shuffle else np.arange(n_samples)
            batches = np.array_split(order, n_batches)
            for first in range(0, len(batches), per_step):
                chunk = batches[first:first + per_step]
                mask = (self._feature_mask(logits, group_t, hard) * alive_t[group_t if hard else slice(None)]).to(dtype)
                value = 0.0
                for rows in chunk:
                    row_scale = torch.as_tensor(np.sqrt(weights[rows]), dtype=dtype, device=device)
                    target_t = torch.as_tensor(targets[rows], dtype=dtype, device=device) * row_scale[:, None]
                    if sparse:
                        block = X[rows]
                        cols = np.unique(block.indices)
                        dense = torch.as_tensor(block[:, cols].toarray(), dtype=dtype, device=device)
                        cols_t = torch.as_tensor(cols, device=device)
                        masked = (dense - mean_t[cols_t]) * (inv_scale[cols_t] * mask[cols_t])
                        untouched = torch.ones(n_columns, dtype=torch.bool, device=device)
                        untouched[cols_t] = False
                        constant = (offset_sq[untouched] * mask[untouched] ** 2).sum()
                    else:
                        dense = torch.as_tensor(X[rows], dtype=dtype, device=device)
                        masked = (dense - mean_t) * (inv_scale * mask)
                        constant = None
                    masked = masked * row_scale[:, None]
                    value = value + learnability(masked, target_t, self.order, alpha, constant, row_scale)
                value = value / len(chunk)
                loss = -value.to(torch.float64) + self.penalty * self._size_penalty(logits, group_t, group_sizes,
                                                                                    n_columns, hard, alive_t)
                if len(schedule) > 1:
                    grad, mask_grad = torch.autograd.grad(loss, [logits, mask])
                    # first-order estimate of the learnability each column would take with it if
                    # switched off (-d loss / d mask * mask; the size penalty does not enter it),
                    # averaged over recent steps against mini-batch noise
                    with torch.no_grad():
                        column_saliency = (-(mask_grad * mask)).to(torch.float64).cpu().numpy()
                    unit_saliency = np.bincount(group_index, weights=column_saliency, minlength=n_groups)
                    # plain mean until eliminations start (a full batch of evidence for the first,
                    # largest cut), then an exponential average that follows the shrinking set
                    weight = 1.0 / (self.n_steps_ + 1) if self.n_steps_ < warmup_steps else 1 - SALIENCY_DECAY
                    saliency = unit_saliency if saliency is None else (1 - weight) * saliency + weight * unit_saliency
                else:
                    (grad,) = torch.autograd.grad(loss, logits)
                with torch.no_grad():
                    # Momentum steps normalised by the gradient's RMS over all scores (not per
                    # score as Adam would): the step keeps the relative size of the gradients,
                    # so the ranking reflects how much each feature helps, not just its sign.
                    self.n_steps_ += 1
                    momentum.mul_(beta1).add_(grad, alpha=1 - beta1)
                    second = beta2 * second + (1 - beta2) * float((grad ** 2).sum() / alive_t.sum())
                    m_hat = momentum / (1 - beta1 ** self.n_steps_)
                    v_hat = second / (1 - beta2 ** self.n_steps_)
                    logits -= self.learning_rate * m_hat / (math.sqrt(v_hat) + 1e-12)
                self.objective_ = float(value.detach())
                target_alive = schedule[min(self.n_steps_, len(schedule) - 1)]
                if target_alive < unit_alive.sum():
                    # drop the units whose removal costs the least learnability now, not those with
                    # the lowest mask: the mask integrates early gradients, when correlated features
                    # shared the credit, while the saliency sees what each adds to the others left
                    candidates = np.flatnonzero(unit_alive)
                    n_drop = unit_alive.sum() - target_alive
                    worst = candidates[np.argsort(saliency[candidates], kind="stable")[:n_drop]]
                    # worst first within this round, so `dropped` stays ordered worst to best
                    dropped.extend(int(u) for u in worst)
                    unit_alive[worst] = False
                    alive_cols = unit_alive[group_index]
                    alive_t = torch.as_tensor(unit_alive if hard else alive_cols, dtype=torch.float64, device=device)
                    with torch.no_grad():
                        momentum.mul_(alive_t)  # an eliminated score stays where it was
                if self.verbose and self.n_steps_ % self.verbose == 0:
                    on = int((self._feature_mask(logits, group_t, hard) > 0.5).sum())
                    print(f"FeatureGradientSelector step {self.n_steps_}: learnability {self.objective_:.4f}, "
                          f"loss {float(loss.detach()):.4f}, {on} features on, {time.perf_counter() - start:.1f}s", flush=True)
                if time.perf_counter() - start > self.max_time:
                    out_of_time = True
                    break
            if out_of_time:
                break
        self.fit_time_ = time.perf_counter() - start

        with torch.no_grad():
            mask = self._feature_mask(logits, group_t, hard).cpu().numpy()
        self.scores_ = mask * alive_cols
        unit_scores = np.bincount(group_index, weights=mask, minlength=n_groups) / np.bincount(group_index)
        if dropped:
            # eliminated units rank below every survivor, later eliminations above earlier ones
            unit_scores = unit_scores.copy()
            unit_scores[dropped] = -1.0 - np.arange(len(dropped))[::-1]
        self.eliminated_ = dropped
        self.selected_features_ = self._select(unit_scores, group_index)
        return self

    @staticmethod
    def _feature_mask(logits, group_t, hard):
        import torch

        mask = torch.sigmoid(logits)
        return mask[group_t] if hard else mask

    def _elimination_schedule(self, n_units, planned_steps):
        """Units still in the search after each step: with ``n_features`` given, all of them until
        ``ELIMINATION_START`` of the planned steps (saliency evidence accumulates), then shrinking
        geometrically to ``n_features`` at ``ELIMINATION_END`` (the rest refine the survivors'
        order); else never shrink."""
        k = self.n_features
        begin, end = int(ELIMINATION_START * planned_steps), int(ELIMINATION_END * planned_steps)
        if k is None or k >= n_units or end <= begin:
            return [n_units]
        ratio = n_units / k
        return [max(k, min(n_units, int(math.ceil(k * ratio ** (1 - min(max(t - begin, 0), end - begin)
                                                              / (end - begin)) - 1e-9))))
                for t in range(planned_steps + 1)]

    @staticmethod
    def _size_penalty(logits, group_t, group_sizes, n_columns, hard, alive=None):
        """The mask's size per column of X: every column that is on costs ``1 / n_columns``."""
        import torch

        mask = torch.sigmoid(logits) if alive is None else torch.sigmoid(logits) * alive
        if hard:
            return (group_sizes * mask).sum() / n_columns
        # Sparse-group penalty: half on the features, half on the group norms (equal for singletons).
        group_sq = torch.zeros_like(group_sizes).index_add(0, group_t, mask ** 2)
        group_norm = (group_sizes.sqrt() * group_sq.clamp_min(1e-24).sqrt()).sum()
        return 0.5 * (mask.sum() + group_norm) / n_columns

    def _sklearn_init(self, X, y, group_index, n_groups, hard):
        from sklearn.feature_selection import f_classif, f_regression

        scorer = f_classif if self.classification else f_regression
        scores, _ = scorer(X, np.asarray(y).ravel())
        scores = np.nan_to_num(scores, nan=0.0, posinf=0.0)
        median = np.median(scores[scores > 0]) if np.any(scores > 0) else 1.0
        logits = np.clip(np.log(np.maximum(scores, 1e-12) / median), -3.0, 3.0)
        if hard:
            logits = np.bincount(group_index, weights=logits, minlength=n_groups) / np.bincount(group_index)
        return logits

    def _select(self, unit_scores, group_index):
        ranking = np.argsort(-unit_scores, kind="stable")
        if self.n_features is not None:
            chosen = ranking[: self.n_features]
        elif self.max_features is not None:
            chosen = ranking[: _elbow(unit_scores[ranking][: self.max_features])]
        else:
            chosen = ranking[unit_scores[ranking] > 0.5]
            if len(chosen) == 0:
                chosen = ranking[:1]
        selected = []
        for unit in chosen:
            selected.extend(int(i) for i in np.flatnonzero(group_index == unit))
        return selected


def _elbow(sorted_scores: np.ndarray) -> int:
    """How many of the (descending) scores to keep: the scores before the point that lies farthest
    below the chord from the first to the last score; without such a point (a curve that bends the
    other way), the scores before the largest drop. At least 1."""
    y = np.asarray(sorted_scores, dtype=np.float64)
    m = len(y)
    if m <= 2:
        return m
    x = np.arange(m, dtype=np.float64)
    below = (y[0] + (y[-1] - y[0]) * x / (m - 1)) - y
    if below.max() > 1e-12:
        return max(1, int(np.argmax(below)))
    return int(np.argmax(y[:-1] - y[1:])) + 1
