"""The evaluator base class (see the package docstring for the trial-side contract)."""
from __future__ import annotations

import abc
from typing import Any

from ..serializer import serialize_cls

__all__ = ["Evaluator"]


class Evaluator(abc.ABC):
    """Trains and evaluates one sampled model and reports its metrics through the trial API.

    Every subclass records its init arguments (it is made traceable when defined), so it can
    be written with :func:`nni.retiarii.serializer.dump` and re-made in a trial process.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        serialize_cls(cls)

    @abc.abstractmethod
    def _execute(self, model_cls_or_instance: Any) -> Any:
        """Train / evaluate the model and report its metrics (the engine's entry point).

        Args:
            model_cls_or_instance: a ``torch.nn.Module`` or a zero-argument callable making one.
        """

    def evaluate(self, model_cls_or_instance: Any) -> Any:
        """Run this evaluator on one model (what a trial does); see :meth:`_execute`."""
        return self._execute(model_cls_or_instance)
