"""RetiariiExperiment hands config.dummy_input to a strategy's LatencyFilter; lazy InProcessExecutionEngine export."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import nni.retiarii.nn.pytorch as nn
import nni.retiarii.strategy as strategy
from nni.experiment.config import ConfigError
from nni.retiarii import Sampler, model_wrapper, space
from nni.retiarii.evaluator import FunctionalEvaluator
from nni.retiarii.experiment.pytorch import RetiariiExeConfig, RetiariiExperiment
from nni.retiarii.strategy.hardware import LatencyFilter, fill_dummy_input


@model_wrapper
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, nn.ValueChoice([4, 8], label='hidden'))
        self.act = nn.LayerChoice({'relu': nn.ReLU(), 'tanh': nn.Tanh()}, label='act')

    def forward(self, x):
        return self.act(self.fc1(x))


def _fit(model_cls):
    import nni
    nni.report_final_result(float(model_cls()(torch.ones(1, 6)).sum()))


class FirstSampler(Sampler):
    def choice(self, candidates, mutator, model, index):
        return candidates[0]


def _sampled_model():
    net = Net()
    model = space.python_model(net)
    for mutator in space.mutators_for(net):
        model = mutator.bind_sampler(FirstSampler()).apply(model)
    return model


class ShapeRecorder:
    """A predictor that records the shape of the example input it is given."""

    def __init__(self):
        self.shapes = []

    def __call__(self, module, example_inputs):
        self.shapes.append(tuple(example_inputs[0].shape))
        module(*example_inputs)  # the module accepts the input: a real forward pass
        return 1.0


def test_run_gives_config_dummy_input_to_the_filter():
    recorder = ShapeRecorder()
    latency_filter = LatencyFilter(10.0, predictor=recorder)
    exp = RetiariiExperiment(Net(), FunctionalEvaluator(_fit), [], strategy.Random(model_filter=latency_filter))
    # trial_concurrency is missing: run() fails on the config before anything starts, after handing the shape over
    config = RetiariiExeConfig('local', dummy_input=[3, 6])
    with pytest.raises(ConfigError, match='trialConcurrency'):
        exp.run(config, 0)
    assert latency_filter.dummy_input == [3, 6]
    assert latency_filter(_sampled_model()) is True and recorder.shapes == [(3, 6)]


def test_filter_own_dummy_input_wins_and_strategies_without_filter_are_untouched():
    own = LatencyFilter(10.0, predictor=ShapeRecorder(), dummy_input=[1, 6])
    assert fill_dummy_input(strategy.Random(model_filter=own), [5, 6]) == []
    assert own.dummy_input == [1, 6]
    assert fill_dummy_input(strategy.RegularizedEvolution(), [5, 6]) == []
    bare = LatencyFilter(10.0, predictor=ShapeRecorder())
    assert fill_dummy_input(strategy.Random(model_filter=bare), None) == [] and bare.dummy_input is None
    assert fill_dummy_input(strategy.Random(model_filter=bare), [5, 6]) == [bare] and bare.dummy_input == [5, 6]


def test_filter_without_any_dummy_input_says_so():
    latency_filter = LatencyFilter(10.0, predictor=ShapeRecorder())
    with pytest.raises(ValueError, match='dummy_input is not set'):
        latency_filter(_sampled_model())


def test_inprocess_engine_is_exported_lazily():
    code = ('import sys, nni.retiarii.execution as e\n'
            'assert "nni.retiarii.execution.inprocess" not in sys.modules\n'
            'from nni.retiarii.execution import InProcessExecutionEngine\n'
            'from nni.retiarii.execution.inprocess import InProcessExecutionEngine as direct\n'
            'assert InProcessExecutionEngine is direct and "InProcessExecutionEngine" in e.__all__\n'
            'try:\n    e.NoSuchEngine\nexcept AttributeError as err:\n    print(err)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "has no attribute 'NoSuchEngine'" in out.stdout
