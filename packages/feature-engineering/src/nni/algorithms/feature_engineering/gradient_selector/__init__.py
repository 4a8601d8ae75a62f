"""``FeatureGradientSelector``: gradient-based feature selection (torch), from the docs'
"Feature Gradients: Scalable Feature Selection via Discrete Relaxation"."""
from __future__ import annotations

from .gradient_selector import FeatureGradientSelector

__all__ = ["FeatureGradientSelector"]
