"""Feature engineering: the :class:`FeatureSelector` base class of NNI's feature selectors.

The built-in selectors live in ``nni.algorithms.feature_engineering``:
``gradient_selector.FeatureGradientSelector`` (torch) and ``gbdt_selector.GBDTSelector`` (LightGBM).
"""
from __future__ import annotations

from .feature_selector import FeatureSelector

__all__ = ["FeatureSelector"]
