"""The base class of NNI's feature selectors.

A selector is fitted on tabular data (``fit(X, y, **kwargs)``) and then names the columns it keeps
(``get_selected_features()`` returns their indices). Subclasses set ``selected_features_`` (the
indices) and ``n_features_in_`` (the number of input columns) in ``fit``; with those two set, the
class also follows scikit-learn's ``SelectorMixin`` protocol (``_get_support_mask``), so a subclass
that adds ``sklearn.feature_selection.SelectorMixin`` and ``sklearn.base.BaseEstimator`` to its bases
gets ``get_support``, ``transform`` and ``inverse_transform`` and works in a ``Pipeline``. The built-in
selectors do exactly that.

Example (the docs' custom selector)::

    from sklearn.base import BaseEstimator
    from sklearn.feature_selection import SelectorMixin
    from nni.feature_engineering.feature_selector import FeatureSelector

    class VarianceTopK(FeatureSelector, BaseEstimator, SelectorMixin):
        def __init__(self, k=2):
            self.k = k

        def fit(self, X, y=None, **kwargs):
            self.n_features_in_ = X.shape[1]
            self.selected_features_ = list(np.argsort(-X.var(axis=0))[: self.k])
            return self
"""
from __future__ import annotations

import numpy as np


class FeatureSelector:
    """Base of the feature selectors: ``fit`` then ``get_selected_features``.

    This module imports only numpy: scikit-learn is the subclass's choice.
    """

    def __init__(self, **kwargs):
        # The docs' custom selectors call this with their own settings; keep them as attributes.
        for key, value in kwargs.items():
            setattr(self, key, value)

    def fit(self, X, y, **kwargs):
        """Fit the selector to ``X`` (shape ``[n_samples, n_features]``) and ``y`` (``[n_samples]``).

        The base implementation keeps the data (``self.X``, ``self.y``) as the docs' template does;
        subclasses compute ``selected_features_`` and ``n_features_in_`` and return ``self``.
        """
        self.X = X
        self.y = y
        self.n_features_in_ = np.shape(X)[1]
        return self

    def get_selected_features(self):
        """The indices of the selected features (a list of ints, most important first where the
        selector ranks them)."""
        selected = getattr(self, "selected_features_", None)
        if selected is None:
            raise ValueError(f"{type(self).__name__}: not fitted yet; call fit(X, y) first")
        return [int(i) for i in selected]

    # scikit-learn's SelectorMixin builds get_support / transform / inverse_transform on this.
    def _get_support_mask(self):
        selected = self.get_selected_features()
        n_features = getattr(self, "n_features_in_", None)
        if n_features is None:
            raise ValueError(f"{type(self).__name__}: n_features_in_ is not set; fit(X, y) must set it")
        mask = np.zeros(int(n_features), dtype=bool)
        mask[selected] = True
        return mask
