"""The contract test suite every multi-trial strategy must pass (a pytest base class).

A package (or a user with a custom strategy) subclasses it in its tests::

    from nni.retiarii.strategy.contract import StrategyContract

    class TestMyStrategyContract(StrategyContract):
        exhausts_space = False       # True if run() returns once every architecture was tried

        def make_strategy(self):
            return MyStrategy(seed=0)

Each check runs the strategy on a tiny pure-python model space with the in-process engine, in a thread
with a time limit (a strategy that never returns fails instead of hanging the test run).
"""
from __future__ import annotations

import threading
from typing import Any, List, Tuple

import pytest

import nni
import nni.retiarii.nn.pytorch as nn
from ..evaluator import FunctionalEvaluator
from ..execution.inprocess import InProcessExecutionEngine
from ..graph import Model, ModelStatus
from ..space import mutators_for, python_model
from ..wrapper import model_wrapper
from .base import BaseStrategy

__all__ = ['StrategyContract']


@model_wrapper
class _ContractSpace(nn.Module):
    def __init__(self, counts: List[int]):
        super().__init__()
        self.xs = nn.ModuleList([nn.ValueChoice(list(range(n)), label=f'x{i}') for i, n in enumerate(counts)])

    def forward(self, x: Any) -> Any:
        return x


def _score(model_cls: Any) -> None:
    nni.report_final_result(sum((i + 1) * vc() for i, vc in enumerate(model_cls().xs)))


def _fail_on_even_x0(model_cls: Any) -> None:
    values = [vc() for vc in model_cls().xs]
    if values[0] % 2 == 0:
        raise RuntimeError('this architecture does not train')
    nni.report_final_result(sum(values))


class _StrictEngine(InProcessExecutionEngine):
    """Fails a submission made while no resource is available."""

    def submit_models(self, *models: Model) -> None:
        if self.query_available_resource() < len(models):
            self.violations.append(f'{len(models)} model(s) submitted with {self.query_available_resource()} slot(s) free')
        super().submit_models(*models)


class StrategyContract:
    """Checks shared by every strategy; subclasses implement :meth:`make_strategy`."""

    #: whether ``run`` returns by itself once every architecture of a finite space was tried
    exhausts_space = False
    #: seconds a run may take
    time_limit = 20.0

    def make_strategy(self) -> BaseStrategy:
        raise TypeError(f'{type(self).__name__} must implement make_strategy()')

    def _run(self, counts: List[int], fit: Any = _score, concurrency: int = 2,
             max_trial_number: Any = None) -> Tuple[Model, List[Model], _StrictEngine]:
        space = _ContractSpace(counts)
        base = python_model(space)
        base.evaluator = FunctionalEvaluator(fit)
        engine = _StrictEngine(concurrency=concurrency, max_trial_number=max_trial_number)
        engine.violations = []
        errors: List[BaseException] = []
        strategy = self.make_strategy()

        def target() -> None:
            try:
                strategy.run(base, mutators_for(space))
            except BaseException as err:  # reported in the test's thread
                errors.append(err)

        with engine:
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            thread.join(self.time_limit)
            assert not thread.is_alive(), f'{type(strategy).__name__}.run did not return within {self.time_limit} s'
        if errors:
            raise errors[0]
        return base, engine.models, engine

    def test_stops_at_the_trial_budget(self) -> None:
        _, models, engine = self._run([4, 4, 4, 4], max_trial_number=8)
        assert len(models) == 8
        assert not engine.violations, engine.violations

    def test_submits_frozen_models_of_the_space(self) -> None:
        base, models, _ = self._run([3, 2, 4], max_trial_number=10)
        assert base.sample == {} and base.status == ModelStatus.Frozen  # the base model is never mutated
        assert len({id(m) for m in models}) == len(models)
        for model in models:
            assert set(model.sample) == {'x0', 'x1', 'x2'}
            assert model.sample['x0'] in range(3) and model.sample['x1'] in range(2) and model.sample['x2'] in range(4)
            assert model.status in (ModelStatus.Training, ModelStatus.Trained)

    def test_survives_failing_models(self) -> None:
        _, models, _ = self._run([4, 3, 3], fit=_fail_on_even_x0, max_trial_number=12)
        assert len(models) == 12
        assert any(m.status == ModelStatus.Failed for m in models)

    def test_respects_concurrency(self) -> None:
        _, models, engine = self._run([3, 3, 3], concurrency=1, max_trial_number=6)
        assert len(models) == 6
        assert not engine.violations, engine.violations

    def test_returns_when_the_space_is_exhausted(self) -> None:
        if not self.exhausts_space:
            pytest.skip('this strategy does not claim to stop on an exhausted space')
        _, models, _ = self._run([3, 2])
        assert len({tuple(sorted(m.sample.items())) for m in models}) == len(models) == 6
        assert all(m.status == ModelStatus.Trained for m in models)  # it waited for the running ones
