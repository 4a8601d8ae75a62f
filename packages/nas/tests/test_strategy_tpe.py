"""TPEStrategy (nni-hpo's native TPE) on synthetic objectives, with the in-process engine."""
import statistics

import pytest

import nni
import nni.retiarii.nn.pytorch as nn
import nni.retiarii.strategy as strategy
from nni.retiarii import model_wrapper
from nni.retiarii.evaluator import FunctionalEvaluator
from nni.retiarii.execution.inprocess import InProcessExecutionEngine
from nni.retiarii.graph import ModelStatus
from nni.retiarii.space import mutators_for, python_model

pytest.importorskip('nni.algorithms.hpo.tpe_tuner')

TARGET = [3, 1, 0, 2, 3, 1]


@model_wrapper
class Space(nn.Module):
    def __init__(self, counts):
        super().__init__()
        self.xs = nn.ModuleList([nn.ValueChoice(list(range(n)), label=f'x{i}') for i, n in enumerate(counts)])

    def forward(self, x):
        return x


def closeness(model_cls):
    values = [vc() for vc in model_cls().xs]
    nni.report_final_result(-sum((a - b) ** 2 for a, b in zip(values, TARGET)))


def search(s, fit=closeness, counts=(4,) * 6, max_trial_number=None):
    space = Space(list(counts))
    base = python_model(space)
    base.evaluator = FunctionalEvaluator(fit)
    with InProcessExecutionEngine(concurrency=2, max_trial_number=max_trial_number) as engine:
        s.run(base, mutators_for(space))
    return engine.models


def test_beats_random_median():
    # 4096 architectures, 30 trials, 3 seeds: TPE's median trial is better than random search's for every seed
    for seed in range(3):
        tpe = [m.metric for m in search(strategy.TPEStrategy(seed=seed), max_trial_number=30)]
        rand = [m.metric for m in search(strategy.Random(seed=seed), max_trial_number=30)]
        assert len(tpe) == len(rand) == 30
        assert statistics.median(tpe) > statistics.median(rand) + 2, (seed, sorted(tpe), sorted(rand))


def test_minimize():
    def distance(model_cls):
        values = [vc() for vc in model_cls().xs]
        nni.report_final_result(sum((a - b) ** 2 for a, b in zip(values, TARGET)))

    metrics = [m.metric for m in search(strategy.TPEStrategy(optimize_mode='minimize', seed=0), fit=distance, max_trial_number=30)]
    assert statistics.mean(metrics[-10:]) < 10  # random search averages 6 * 2.5 = 15


def test_never_repeats_and_stops_when_exhausted():
    models = search(strategy.TPEStrategy(seed=0), counts=(3, 2))  # 6 architectures, no trial budget
    archs = [tuple(sorted(m.sample.items())) for m in models]
    assert len(archs) == 6 and len(set(archs)) == 6
    assert all(m.status == ModelStatus.Trained for m in models)


def test_failed_models_do_not_stop_the_search():
    def flaky(model_cls):
        values = [vc() for vc in model_cls().xs]
        if values[0] == 0:
            raise RuntimeError('does not train')
        nni.report_final_result(sum(values))

    models = search(strategy.TPEStrategy(seed=1), fit=flaky, counts=(2, 4, 4), max_trial_number=20)
    assert len(models) == 20
    assert any(m.status == ModelStatus.Failed for m in models)
    assert any(m.status == ModelStatus.Trained for m in models)


def test_bad_optimize_mode():
    with pytest.raises(ValueError, match="optimize_mode must be 'maximize' or 'minimize'"):
        strategy.TPEStrategy(optimize_mode='max')
