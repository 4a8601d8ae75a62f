"""NNI v2.5's module path of the curve-fitting model: ``from
nni.algorithms.hpo.curvefitting_assessor.model_factory import CurveModel``.

:class:`CurveModel` is the v2.5 interface (``CurveModel(target_pos).predict(trial_history)``)
over :class:`~.modelfactory.CurveModelEnsemble`, which does the work; the other names of
:mod:`.modelfactory` are available here too.
"""
from __future__ import annotations

from typing import Sequence

from .modelfactory import MIN_POINTS, CurveFit, CurveModelEnsemble

__all__ = ["CurveModel", "CurveModelEnsemble", "CurveFit", "MIN_POINTS"]


class CurveModel(CurveModelEnsemble):
    """Predict where a learning curve ends up (v2.5 name and signature).

    Args:
        target_pos: the epoch to predict (1-based: the first reported value is epoch 1).

    Attributes:
        trial_history: the history given to the last :meth:`predict` call.
        point_num: its length.

    Example::

        model = CurveModel(target_pos=20)
        final = model.predict([0.3, 0.45, 0.55, 0.61, 0.66])   # None if no curve fits
    """

    def __init__(self, target_pos: int, **kwargs):
        super().__init__(target_pos, **kwargs)
        self.trial_history: list[float] = []
        self.point_num = 0

    def predict(self, trial_history: Sequence[float]) -> float | None:
        """The predicted value at ``target_pos``, or ``None`` when the curves could not be fitted
        (fewer than :data:`MIN_POINTS` values, non-finite values, or no curve family fits)."""
        self.trial_history = list(trial_history)
        self.point_num = len(self.trial_history)
        return super().predict(self.trial_history)
