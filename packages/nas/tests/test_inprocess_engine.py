"""The in-process execution engine: metric capture per thread, statuses, concurrency and budget."""
import threading
import time

import pytest

import nni
import nni.retiarii.nn.pytorch as nn
import nni.trial
from nni.retiarii import execution, model_wrapper
from nni.retiarii.evaluator import FunctionalEvaluator
from nni.retiarii.execution.inprocess import InProcessExecutionEngine
from nni.retiarii.graph import ModelStatus
from nni.retiarii.space import mutators_for, python_model
from nni.retiarii.strategy.utils import ChoiceSpace


@model_wrapper
class Space(nn.Module):
    def __init__(self, counts):
        super().__init__()
        self.xs = nn.ModuleList([nn.ValueChoice(list(range(n)), label=f'x{i}') for i, n in enumerate(counts)])

    def forward(self, x):
        return x


def models_for(fit, counts=(4, 4), n=None):
    """All (or the first n) models of the space, with ``fit`` as evaluator."""
    space = Space(list(counts))
    base = python_model(space)
    base.evaluator = FunctionalEvaluator(fit)
    choices = ChoiceSpace(base, mutators_for(space))
    models = [choices.build(base, choices.decode(code)) for code in range(choices.size)]
    return models[:n] if n else models


def values(model_cls):
    return [vc() for vc in model_cls().xs]


def test_metrics_are_captured_per_model_and_thread():
    def fit(model_cls):
        x0, x1 = values(model_cls)
        for step in range(3):
            nni.report_intermediate_result({'default': step * x0, 'extra': 1})
            time.sleep(0.002)  # interleave the threads
        nni.report_final_result({'default': 10 * x0 + x1, 'loss': 0.5})

    models = models_for(fit)
    with InProcessExecutionEngine(concurrency=3) as engine:
        assert execution.get_execution_engine() is engine
        execution.submit_models(*models)
        execution.wait_models(*models)
    for model in models:
        x0, x1 = model.sample['x0'], model.sample['x1']
        assert model.status == ModelStatus.Trained
        assert model.metric == 10 * x0 + x1
        assert model.intermediate_metrics == [0, x0, 2 * x0]
    assert engine.list_models() == models
    # the engine is unset afterwards, and the main thread's trial channel is the ordinary one
    with pytest.raises(RuntimeError, match='no execution engine'):
        execution.get_execution_engine()
    assert type(nni.trial.get_channel()).__name__ != '_ModelChannel'


def test_trial_api_inside_a_worker():
    seen = {}

    def fit(model_cls):
        seen['trial_id'] = nni.get_trial_id()
        nni.report_final_result(1.0)

    model = models_for(fit, n=1)[0]
    with InProcessExecutionEngine() as engine:
        engine.submit_models(model)
        engine.wait_models(model)
    assert seen['trial_id'] == f'model_{model.model_id}'


def test_every_model_gets_its_own_parameters_in_one_worker():
    seen = {}

    def fit(model_cls):
        params = nni.get_next_parameter()
        assert nni.get_next_parameter() is None  # not multi-phase: one set per trial
        seen[nni.get_trial_id()] = (params, nni.trial.get_current_parameter())
        nni.report_intermediate_result(1.0)
        nni.report_final_result(2.0)

    models = models_for(fit, n=3)
    with InProcessExecutionEngine(concurrency=1) as engine:  # one thread runs all three
        engine.submit_models(*models)
        engine.wait_models(*models)
    for model in models:
        params, current = seen[f'model_{model.model_id}']
        assert params == current == model.sample
        assert model.intermediate_metrics == [1.0] and model.metric == 2.0
    # the process's own trial state was not touched
    assert nni.trial.get_current_parameter() is None


def test_failure_and_missing_final_result():
    def fit(model_cls):
        x0, x1 = values(model_cls)
        if x0 == 0:
            raise RuntimeError('boom')
        if x0 == 1:
            return  # reports nothing
        nni.report_final_result(x1)

    models = models_for(fit, counts=(3, 2))
    with InProcessExecutionEngine(concurrency=2) as engine:
        engine.submit_models(*models)
        engine.wait_models(*models)
    for model in models:
        if model.sample['x0'] == 0:
            assert model.status == ModelStatus.Failed and model.metric is None
            assert 'boom' in str(engine.errors[model.model_id])
        elif model.sample['x0'] == 1:
            assert model.status == ModelStatus.Trained and model.metric is None
        else:
            assert model.status == ModelStatus.Trained and model.metric == model.sample['x1']
    assert all(execution.is_stopped_exec(m) for m in models)


def test_concurrency_and_available_resources():
    lock = threading.Lock()
    running, peak = [0], [0]
    release = threading.Event()

    def fit(model_cls):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        release.wait(5)
        with lock:
            running[0] -= 1
        nni.report_final_result(0)

    models = models_for(fit, n=5)
    with InProcessExecutionEngine(concurrency=2) as engine:
        assert engine.query_available_resource() == 2
        engine.submit_models(models[0])
        assert engine.query_available_resource() == 1
        engine.submit_models(*models[1:])
        assert engine.query_available_resource() == 0
        time.sleep(0.05)
        assert models[4].status == ModelStatus.Training  # queued, not running
        release.set()
        engine.wait_models(*models)
        assert engine.query_available_resource() == 2
    assert peak[0] == 2


def test_trial_number_budget():
    models = models_for(lambda model_cls: nni.report_final_result(0), n=4)
    with InProcessExecutionEngine(concurrency=4, max_trial_number=3) as engine:
        engine.submit_models(*models[:3])
        assert engine.budget_exhausted()
        assert engine.query_available_resource() == 0
        with pytest.raises(RuntimeError, match='max_trial_number=3'):
            engine.submit_models(models[3])
    assert models[3].status == ModelStatus.Frozen


def test_duration_budget_and_bad_arguments():
    engine = InProcessExecutionEngine(max_duration=0.05)
    assert not engine.budget_exhausted()
    time.sleep(0.06)
    assert engine.budget_exhausted() and engine.query_available_resource() == 0
    engine.shutdown()
    with pytest.raises(ValueError, match='concurrency must be an int >= 1'):
        InProcessExecutionEngine(concurrency=0)
    with pytest.raises(ValueError, match='max_trial_number'):
        InProcessExecutionEngine(max_trial_number=0)


def test_a_model_without_evaluator_uses_the_engines():
    model = models_for(lambda model_cls: None, n=1)[0]
    model.evaluator = None
    with InProcessExecutionEngine(evaluator=FunctionalEvaluator(lambda model_cls: nni.report_final_result(7))) as engine:
        engine.submit_models(model)
        engine.wait_models(model)
    assert model.metric == 7
