"""``FunctionalEvaluator``: an evaluator made of one user function."""
from __future__ import annotations

from typing import Any, Callable

from .base import Evaluator

__all__ = ["FunctionalEvaluator"]


class FunctionalEvaluator(Evaluator):
    """Evaluator that calls ``function(model_cls_or_instance, **kwargs)``.

    The function trains and tests the model and reports through ``nni.report_final_result``
    (and optionally ``nni.report_intermediate_result``)::

        def fit(model_cls, dataloader):
            model = model_cls()
            train(model, dataloader)
            nni.report_final_result(test(model, dataloader))

        evaluator = FunctionalEvaluator(fit, dataloader=pl.DataLoader(dataset, batch_size=32))

    Unlike NNI v2.5, ``function`` may live in the main script (or be a lambda or a closure):
    what cannot be imported by name in the trial process is shipped pickled by value
    (cloudpickle). It must still only use packages installed where the trial runs.

    Args:
        function: called with the model (a class / zero-argument callable, or an instance) as
            the only positional argument.
        kwargs: keyword arguments for ``function``; see the package docstring for what can
            be shipped to a trial.

    Attributes:
        function: the function (its full name is ``function.__module__`` + ``__qualname__``).
        arguments: the keyword arguments other than the model.
    """

    def __init__(self, function: Callable[..., Any], **kwargs: Any):
        if not callable(function):
            raise TypeError(f"FunctionalEvaluator: function must be callable, got {type(function).__qualname__}")
        self.function = function
        self.arguments = kwargs

    def _execute(self, model_cls_or_instance: Any) -> Any:
        return self.function(model_cls_or_instance, **self.arguments)

    def __repr__(self) -> str:
        name = getattr(self.function, "__qualname__", repr(self.function))
        return f"FunctionalEvaluator({name}, {', '.join(f'{k}={v!r}' for k, v in self.arguments.items())})"
