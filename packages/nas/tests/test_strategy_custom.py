"""A user-written BaseStrategy on the engine API, and LatencyFilter as a model_filter."""
import random
import time

import pytest
import torch

import nni
import nni.retiarii.nn.pytorch as nn
import nni.retiarii.strategy as strategy
from nni.retiarii import Sampler, model_wrapper
from nni.retiarii.evaluator import FunctionalEvaluator
from nni.retiarii.execution import (budget_exhausted, is_stopped_exec, list_models, query_available_resources,
                                    submit_models, wait_models)
from nni.retiarii.execution.inprocess import InProcessExecutionEngine
from nni.retiarii.graph import ModelStatus
from nni.retiarii.space import mutators_for, python_model


@model_wrapper
class Space(nn.Module):
    def __init__(self):
        super().__init__()
        self.width = nn.ValueChoice([1, 2, 3, 4], label='width')
        self.act = nn.LayerChoice([nn.Identity(), nn.ReLU()], label='act')

    def forward(self, x):
        return self.act(x)


def score(model_cls):
    model = model_cls()
    nni.report_final_result(model.width() + 10 * isinstance(model.act, nn.ReLU))


class RandomSampler(Sampler):
    def __init__(self, seed):
        self.rng = random.Random(seed)

    def choice(self, candidates, mutator, model, index):
        return self.rng.choice(candidates)


class GreedyStrategy(strategy.BaseStrategy):
    """The docs' loop: sample while resources are free; then keep the best finished model."""

    def __init__(self):
        self.sampler = RandomSampler(0)
        self.best = None

    def run(self, base_model, applied_mutators):
        mine = []
        while not budget_exhausted():
            if query_available_resources() > 0:
                model = base_model
                for mutator in applied_mutators:
                    mutator.bind_sampler(self.sampler)
                    model = mutator.apply(model)
                submit_models(model)
                mine.append(model)
            else:
                time.sleep(0.01)
            for model in mine:
                if is_stopped_exec(model) and model.metric is not None and (self.best is None or model.metric > self.best.metric):
                    self.best = model
        wait_models(*mine)
        assert list_models() == mine
        for model in mine:
            if self.best is None or model.metric > self.best.metric:
                self.best = model


def test_custom_strategy_on_the_engine_api():
    space = Space()
    base = python_model(space)
    base.evaluator = FunctionalEvaluator(score)
    custom = GreedyStrategy()
    with InProcessExecutionEngine(concurrency=2, max_trial_number=10) as engine:
        custom.run(base, mutators_for(space))
    assert len(engine.models) == 10
    assert all(m.status == ModelStatus.Trained for m in engine.models)
    assert custom.best.metric == max(m.metric for m in engine.models)
    assert custom.best.metric == custom.best.sample['width'] + 10 * (custom.best.sample['act'] == '1')


@model_wrapper
class SizedSpace(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.LayerChoice({
            'small': nn.Linear(512, 8),
            'big': nn.Sequential(nn.Linear(512, 2048), nn.ReLU(), nn.Linear(2048, 2048), nn.ReLU(), nn.Linear(2048, 8)),
        }, label='body')
        self.scale = nn.ValueChoice([1, 2, 3], label='scale')

    def forward(self, x):
        return self.body(x) * self.scale()


def run_filtered(model_filter):
    space = SizedSpace()
    base = python_model(space)
    base.evaluator = FunctionalEvaluator(lambda model_cls: nni.report_final_result(0))
    with InProcessExecutionEngine(concurrency=2) as engine:
        strategy.Random(model_filter=model_filter, seed=0).run(base, mutators_for(space))
    return engine.models


def test_latency_filter_with_flops_drops_big_models():
    pytest.importorskip('nni.compression.pytorch.utils.counter')
    latency_filter = strategy.LatencyFilter(threshold=1.0, predictor=strategy.FlopsPredictor(), dummy_input=[1, 512])
    models = run_filtered(latency_filter)
    assert sorted(m.sample['scale'] for m in models) == [1, 2, 3]
    assert all(m.sample['body'] == 'small' for m in models)
    predictions = sorted(latency_filter.latencies.values())
    assert len(predictions) == 6  # every architecture was judged once
    assert predictions[0] == pytest.approx(512 * 8 / 1e6) and predictions[-1] > 4  # MFLOPs of one sample


def test_latency_filter_measured_cpu_latency_and_custom_predictor():
    # default predictor: measured CPU milliseconds; the big body is ~1000x the work of the small one
    latency_filter = strategy.LatencyFilter(threshold=2.0, dummy_input=[64, 512])
    models = run_filtered(latency_filter)
    assert {m.sample['body'] for m in models} == {'small'} and len(models) == 3
    # the one-shot trainers' predictor signature works too: predictor(module, example_inputs)
    shapes = []
    two_args = strategy.LatencyFilter(threshold=1, predictor=lambda module, inputs: shapes.append(inputs[0].shape) or 0,
                                      dummy_input=[2, 512])
    assert len(run_filtered(two_args)) == 6 and shapes[0] == (2, 512)
    # any callable module -> number is a predictor
    by_params = strategy.LatencyFilter(threshold=10_000, predictor=lambda module: sum(p.numel() for p in module.parameters()))
    models = run_filtered(by_params)
    assert {m.sample['body'] for m in models} == {'small'} and len(models) == 3


def test_latency_filter_nn_meter_style_predictor():
    calls = []

    class FakeNnMeter:  # nn-Meter's interface: predict(model, model_type, input_shape=...)
        def predict(self, model, model_type, input_shape=None):
            calls.append((model_type, input_shape))
            return 5.0 if isinstance(model.body, torch.nn.Sequential) else 1.0

    models = run_filtered(strategy.LatencyFilter(threshold=3, predictor=FakeNnMeter(), dummy_input=[1, 512]))
    assert {m.sample['body'] for m in models} == {'small'}
    assert calls[0] == ('torch', [1, 512])


def test_latency_filter_errors():
    with pytest.raises(ValueError, match='threshold must be a number'):
        strategy.LatencyFilter(threshold='100')
    with pytest.raises(ValueError, match='predictor must be None, an nn-Meter predictor'):
        strategy.LatencyFilter(threshold=1, predictor=3)
    space = SizedSpace()
    model = python_model(space)
    model.sample = {'body': 'small', 'scale': 1}
    with pytest.raises(ValueError, match=r'dummy_input is not set; pass LatencyFilter\(\.\.\., dummy_input='):
        strategy.LatencyFilter(threshold=1)(model)
    with pytest.raises(ValueError, match='dummy_input must be a shape'):
        strategy.LatencyFilter(threshold=1, dummy_input=[1, 0])
    # a predictor(module) needs no dummy input
    assert strategy.LatencyFilter(threshold=1, predictor=lambda module: 0.5)(model)
