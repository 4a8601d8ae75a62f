"""Model evaluators: what a multi-trial NAS trial runs on each sampled model.

Contract between an evaluator and the execution engine (trial side)
-------------------------------------------------------------------
* An evaluator is a subclass of :class:`Evaluator`. Subclasses are traceable automatically
  (:func:`nni.retiarii.serializer.serialize_cls`): the engine ships one to a trial as
  ``nni.retiarii.serializer.dump(evaluator)`` and re-makes it there with
  ``nni.retiarii.serializer.load(text)``. Its init arguments must therefore be primitives,
  traceable objects (``serialize(cls, ...)``, ``pl.DataLoader``) or objects that cloudpickle
  can pickle by value.
* In the trial, the engine calls ``evaluator._execute(model)`` once. ``model`` is either a
  ``torch.nn.Module`` instance or a zero-argument callable that builds one (a model class,
  ``functools.partial``, or a factory that applies the sampled architecture). ``_execute``
  trains / validates and reports through the trial API: ``nni.report_intermediate_result``
  for periodic metrics (optional) and ``nni.report_final_result`` exactly once for the
  metric the strategy optimises. Its return value is informational; the engine ignores it.
* ``_execute`` must not depend on state left by an earlier ``_execute`` call: built-in
  evaluators re-make their trainer and LightningModule from the recorded init arguments on
  every call, so one evaluator object can be run on several models in one process.
* :meth:`Evaluator.evaluate` is the public name of ``_execute`` for user code and debugging.

Importing this package imports neither torch nor Lightning; the Lightning evaluators live in
``nni.retiarii.evaluator.pytorch.lightning``.
"""
from __future__ import annotations

from .base import Evaluator
from .functional import FunctionalEvaluator

__all__ = ["Evaluator", "FunctionalEvaluator"]
