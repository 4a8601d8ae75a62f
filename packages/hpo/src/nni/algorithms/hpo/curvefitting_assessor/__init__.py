"""Curve Fitting Assessor (builtin ``Curvefitting``).

* :mod:`.curvefunctions` -- the 12 learning-curve families and their initial parameters;
* :mod:`.modelfactory` -- least-squares fits, curve filter, MCMC ensemble weights, prediction;
* :mod:`.model_factory` -- the same under NNI v2.5's module path, with v2.5's ``CurveModel``;
* :mod:`.curvefitting_assessor` -- the assessor.
"""
from .curvefitting_assessor import CurvefittingAssessor, CurvefittingClassArgsValidator

__all__ = ["CurvefittingAssessor", "CurvefittingClassArgsValidator"]
