"""GBDTSelector: feature importance of a LightGBM gradient-boosted tree model.

LightGBM is imported on first use (``pip install lightgbm`` or ``pip install nni-fe[gbdt]``).
"""
from __future__ import annotations

import math
import numbers

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin

from nni.feature_engineering.feature_selector import FeatureSelector

IMPORTANCE_TYPES = ("split", "gain")
_UNSET = object()


def import_lightgbm():
    """``lightgbm``, or a one-line ImportError that says how to install it."""
    try:
        import lightgbm
    except ImportError as err:
        raise ImportError(f"GBDTSelector needs LightGBM, which is not installed ({err}); "
                          "install it with: pip install lightgbm  (or: pip install 'nni-fe[gbdt]')") from None
    return lightgbm


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class GBDTSelector(FeatureSelector, SelectorMixin, BaseEstimator):
    """Select the features a LightGBM model uses most.

    The docs pass the training settings to ``fit`` and ``topk`` to ``get_selected_features``; they
    may also be given here, so the selector works inside a scikit-learn ``Pipeline`` (``fit``'s
    arguments override these for that call).

    Args:
        lgb_params: LightGBM parameters. Without an ``objective`` it is inferred from ``y``
            (``binary`` / ``multiclass`` for integer or string labels with few classes, else
            ``regression``); ``verbose`` defaults to -1.
        eval_ratio: share of the rows held out as LightGBM's validation set (0: none, then no
            early stopping).
        early_stopping_rounds: stop when the validation score has not improved for this many
            rounds (``None`` or 0: never).
        importance_type: ``split`` (times a feature is used) or ``gain`` (total gain of its splits).
        num_boost_round: boosting rounds.
        topk: features kept by ``transform`` / ``get_support`` and by ``get_selected_features()``
            without an argument; ``None``: every feature with non-zero importance.
        random_state: seed of the train/validation split and of LightGBM.

    Attributes (after ``fit``):
        feature_importances_: importance per column (``importance_type``).
        booster_: the trained ``lightgbm.Booster``.
        n_features_in_: number of input columns.
    """

    def __init__(self, lgb_params=None, eval_ratio=0.2, early_stopping_rounds=10, importance_type="gain",
                 num_boost_round=100, topk=None, random_state=0):
        self.lgb_params = lgb_params
        self.eval_ratio = eval_ratio
        self.early_stopping_rounds = early_stopping_rounds
        self.importance_type = importance_type
        self.num_boost_round = num_boost_round
        self.topk = topk
        self.random_state = random_state
        self._check(lgb_params, eval_ratio, early_stopping_rounds, importance_type, num_boost_round, topk)

    @staticmethod
    def _check(lgb_params, eval_ratio, early_stopping_rounds, importance_type, num_boost_round, topk):
        def fail(name, value, allowed):
            raise ValueError(f"GBDTSelector: {name}={value!r} is invalid; allowed: {allowed}")

        if lgb_params is not None and not isinstance(lgb_params, dict):
            fail("lgb_params", lgb_params, "None or a dict of LightGBM parameters")
        if isinstance(eval_ratio, bool) or not isinstance(eval_ratio, numbers.Real) or not 0 <= eval_ratio < 1:
            fail("eval_ratio", eval_ratio, "a number in [0, 1)")
        if early_stopping_rounds is not None and (not _is_int(early_stopping_rounds) or early_stopping_rounds < 0):
            fail("early_stopping_rounds", early_stopping_rounds, "None or an integer >= 0")
        if importance_type not in IMPORTANCE_TYPES:
            fail("importance_type", importance_type, ", ".join(IMPORTANCE_TYPES))
        if not _is_int(num_boost_round) or num_boost_round < 1:
            fail("num_boost_round", num_boost_round, "an integer >= 1")
        if topk is not None and (not _is_int(topk) or topk < 1):
            fail("topk", topk, "None or an integer >= 1")

    def fit(self, X, y, lgb_params=_UNSET, eval_ratio=_UNSET, early_stopping_rounds=_UNSET,
            importance_type=_UNSET, num_boost_round=_UNSET, **kwargs):
        """Train a LightGBM model on ``X`` ``[n_samples, n_features]`` (array or scipy sparse) and
        ``y`` ``[n_samples]``, and keep its feature importances. Arguments left out take the
        constructor's values."""
        lgb = import_lightgbm()
        from sklearn.model_selection import train_test_split
        from sklearn.utils import check_X_y

        if kwargs:
            raise TypeError(f"GBDTSelector.fit() got an unexpected keyword argument {next(iter(kwargs))!r}")
        pick = lambda given, own: own if given is _UNSET else given  # noqa: E731
        lgb_params = pick(lgb_params, self.lgb_params)
        eval_ratio = pick(eval_ratio, self.eval_ratio)
        early_stopping_rounds = pick(early_stopping_rounds, self.early_stopping_rounds)
        importance_type = pick(importance_type, self.importance_type)
        num_boost_round = pick(num_boost_round, self.num_boost_round)
        self._check(lgb_params, eval_ratio, early_stopping_rounds, importance_type, num_boost_round, self.topk)
        try:
            X, y = check_X_y(X, y, accept_sparse="csr", dtype=np.float64, y_numeric=False)
        except ValueError as err:
            raise ValueError(f"GBDTSelector: X, y: {str(err).splitlines()[0]}") from None
        self.n_features_in_ = X.shape[1]

        params = {"verbose": -1, "seed": self.random_state if self.random_state is not None else 0}
        params.update(lgb_params or {})
        y = self._encode_target(y, params)
        fit_rows, eval_rows = np.arange(len(y)), None
        if eval_ratio > 0:
            stratify = y if params["objective"] in ("binary", "multiclass") else None
            try:
                fit_rows, eval_rows = train_test_split(fit_rows, test_size=eval_ratio,
                                                       random_state=self.random_state, stratify=stratify)
            except ValueError:  # too few rows of a class to stratify
                fit_rows, eval_rows = train_test_split(fit_rows, test_size=eval_ratio, random_state=self.random_state)
        train_set = lgb.Dataset(X[fit_rows], label=y[fit_rows])
        callbacks, valid_sets = [], []
        if eval_rows is not None and len(eval_rows) > 0:
            valid_sets = [lgb.Dataset(X[eval_rows], label=y[eval_rows], reference=train_set)]
            if early_stopping_rounds:
                callbacks.append(lgb.early_stopping(early_stopping_rounds, verbose=False))
        self.booster_ = lgb.train(params, train_set, num_boost_round=num_boost_round, valid_sets=valid_sets,
                                  callbacks=callbacks)
        self.feature_importances_ = np.asarray(
            self.booster_.feature_importance(importance_type=importance_type), dtype=np.float64)
        order = np.argsort(-self.feature_importances_, kind="stable")
        self._ranking = order
        self.selected_features_ = self._top(self.topk)
        return self

    def _encode_target(self, y, params):
        objective = params.get("objective")
        y = np.asarray(y)
        is_label = y.dtype.kind in "OUSb" or (y.dtype.kind in "iu")
        if y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0):
            is_label = len(np.unique(y)) <= max(2, min(50, int(math.sqrt(len(y)))))
        if objective is None:
            if not is_label:
                params["objective"] = "regression"
            else:
                n_classes = len(np.unique(y))
                params["objective"] = "binary" if n_classes <= 2 else "multiclass"
                if n_classes > 2:
                    params["num_class"] = n_classes
        if params["objective"] in ("binary", "multiclass", "multiclassova", "cross_entropy"):
            self.classes_, codes = np.unique(y, return_inverse=True)
            if params["objective"] in ("multiclass", "multiclassova"):
                params.setdefault("num_class", len(self.classes_))
            return codes
        if y.dtype.kind not in "iuf":
            raise ValueError(f"GBDTSelector: y: objective {params['objective']!r} needs numeric targets")
        return y.astype(np.float64)

    def _top(self, topk):
        if topk is None:
            return [int(i) for i in self._ranking if self.feature_importances_[i] > 0] or [int(self._ranking[0])]
        if topk > self.n_features_in_:
            raise ValueError(f"GBDTSelector: topk={topk} is more than the {self.n_features_in_} features of X")
        return [int(i) for i in self._ranking[:topk]]

    def get_selected_features(self, topk=None):
        """The indices of the ``topk`` most important features, most important first (``topk``
        defaults to the constructor's; ``None`` there: every feature with non-zero importance)."""
        if not hasattr(self, "feature_importances_"):
            raise ValueError("GBDTSelector: not fitted yet; call fit(X, y, ...) first")
        if topk is not None and (not _is_int(topk) or topk < 1):
            raise ValueError(f"GBDTSelector: topk={topk!r} is invalid; allowed: an integer >= 1")
        return self._top(self.topk if topk is None else topk)
