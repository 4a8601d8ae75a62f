"""RetiariiExperiment / RetiariiExeConfig: config errors, and a real experiment on the manager per engine."""
from __future__ import annotations

import sys
import textwrap
import time
import uuid

import pytest
import torch

import nni

from nni.experiment.config import ConfigError
from nni.retiarii import Sampler, execution, fixed_arch
from nni.retiarii.evaluator import FunctionalEvaluator
from nni.retiarii.experiment.pytorch import RetiariiExeConfig, RetiariiExperiment
from nni.retiarii.graph import ModelStatus

SPACE = '''
import torch
import nni
import nni.retiarii.nn.pytorch as nn
from nni.retiarii import model_wrapper

X = torch.linspace(-1, 1, 60).reshape(10, 6)

@model_wrapper
class Net(nn.Module):
    def __init__(self, width=6):
        super().__init__()
        hidden = nn.ValueChoice([4, 8], label='hidden')
        self.fc1 = nn.Linear(width, hidden)
        self.act = nn.LayerChoice({'relu': nn.ReLU(), 'tanh': nn.Tanh()}, label='act')
        self.fc2 = nn.Linear(hidden, 2)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))

def fit(model_cls, steps):
    torch.manual_seed(0)
    model = model_cls()
    n_params = sum(p.numel() for p in model.parameters())
    if n_params < 50 and isinstance(model.act, torch.nn.Tanh):
        raise RuntimeError('this architecture fails on purpose')
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    target = X[:, :2].sum(1).long().clamp(0, 1)
    for step in range(steps):
        loss = torch.nn.functional.cross_entropy(model(X), target)
        opt.zero_grad(); loss.backward(); opt.step()
        nni.report_intermediate_result(loss.item())
    model.eval()
    with torch.no_grad():
        out = float(model(X).abs().sum())
    nni.report_final_result({'default': out, 'params': n_params})
'''

ARCHS = [{'hidden': 8, 'act': 'relu'}, {'hidden': 4, 'act': 'tanh'}, {'hidden': 4, 'act': 'relu'}, {'hidden': 8, 'act': 'tanh'}]


class FixedSampler(Sampler):
    def __init__(self, arch):
        self.arch = arch

    def choice(self, candidates, mutator, model, index):
        return self.arch[mutator.label]


class ListStrategy:
    """Submits the given architectures, at most as many at once as the engine has slots."""

    def __init__(self, archs):
        self.archs = archs

    def run(self, base_model, applied_mutators):
        submitted = []
        for arch in self.archs:
            while execution.query_available_resources() <= 0:
                time.sleep(0.05)
            model = base_model
            for mutator in applied_mutators:
                model = mutator.bind_sampler(FixedSampler(arch)).apply(model)
            execution.submit_models(model)
            submitted.append(model)
        execution.wait_models(*submitted)


@pytest.fixture
def space_module(tmp_path, monkeypatch):
    """The model space and fit function in an importable module of the trial code directory."""
    name = f'nas_space_{uuid.uuid4().hex[:8]}'
    (tmp_path / f'{name}.py').write_text(textwrap.dedent(SPACE))
    monkeypatch.syspath_prepend(str(tmp_path))
    module = __import__(name)
    yield module
    sys.modules.pop(name, None)


def _free_port():
    from nni.server.testing import free_port
    return free_port()


# ----- config and argument errors (fast) -----

def test_config_defaults_and_fields():
    config = RetiariiExeConfig('local', experiment_name='nas', trial_concurrency=2, max_trial_number=5)
    assert config.execution_engine == 'py'
    assert config.trial_command == '_reserved'
    config.execution_engine = 'base'
    config.max_experiment_duration = '1h'
    plain = config.experiment_config({'className': 'nni.retiarii.experiment._advisor.RetiariiAdvisor',
                                      'classArgs': {'address': '/tmp/x.sock', 'authkey': 'ab'}})
    canon = plain.to_canonical_dict()
    assert canon['trialCommand'] == 'python3 -m nni.retiarii.trial_entry base'
    assert canon['searchSpace'] == {} and canon['tuner'] is None
    assert canon['advisor']['className'].endswith('RetiariiAdvisor')
    assert canon['maxTrialNumber'] == 5 and canon['trialConcurrency'] == 2


@pytest.mark.parametrize('kwargs, field, words', [
    ({'execution_engine': 'cgo', 'max_concurrency_cgo': 0}, 'maxConcurrencyCgo', 'positive int'),
    ({'execution_engine': 'cgo', 'batch_waiting_time': -1}, 'batchWaitingTime', 'seconds >= 0'),
    ({'execution_engine': 'graph'}, 'executionEngine', "unknown engine 'graph'; allowed: 'py', 'base', 'cgo'"),
    ({'trial_command': 'python3 train.py'}, 'trialCommand', 'leave it unset'),
    ({'dummy_input': [1, 'x']}, 'dummyInput', 'positive ints'),
])
def test_bad_retiarii_fields(kwargs, field, words):
    config = RetiariiExeConfig('local', trial_concurrency=1, **kwargs)
    with pytest.raises(ConfigError) as info:
        config.validate_retiarii()
    message = str(info.value)
    assert message.startswith(field) and words in message and '\n' not in message


def test_bad_generic_fields_are_one_line():
    with pytest.raises(ConfigError, match='unknown field'):
        RetiariiExeConfig('local', trial_concurency=2)
    config = RetiariiExeConfig('local')  # trial_concurrency missing
    with pytest.raises(ConfigError, match='trialConcurrency'):
        config.experiment_config({'className': 'nni.retiarii.experiment._advisor.RetiariiAdvisor',
                                  'classArgs': {'address': '/tmp/x.sock', 'authkey': 'ab'}})
    config = RetiariiExeConfig('local', trial_concurrency=1)
    config.tuner.name = 'TPE'
    with pytest.raises(ConfigError, match='^tuner: not used by a NAS experiment'):
        config.validate_retiarii()


def test_experiment_argument_errors(space_module):
    evaluator = FunctionalEvaluator(space_module.fit, steps=1)
    with pytest.raises(TypeError, match='strategy: expected a strategy object'):
        RetiariiExperiment(space_module.Net(), evaluator, [], object())
    exp = RetiariiExperiment(space_module.Net(), evaluator, [], ListStrategy([]))
    assert exp.get_status() == 'INITIALIZED' and exp.get_experiment_id() is None
    with pytest.raises(ValueError, match="formatter='code' needs the graph-based engine"):
        exp.export_top_models(formatter='code')
    with pytest.raises(ValueError, match="formatter: unknown 'json'"):
        exp.export_top_models(formatter='json')
    with pytest.raises(ValueError, match='optimize_mode'):
        exp.export_top_models(optimize_mode='max')
    with pytest.raises(ValueError, match='config: required'):
        exp.run()
    assert exp.export_top_models() == []


def test_py_engine_refuses_mutators(space_module):
    from nni.retiarii.execution.python import PurePythonExecutionEngine
    engine = PurePythonExecutionEngine(1)
    try:
        with pytest.raises(ValueError, match='inline mutations only'):
            engine.preprocess(space_module.Net(), [object()])
        with pytest.raises(ValueError, match='@model_wrapper'):
            engine.preprocess(torch.nn.Linear(2, 2), [])
    finally:
        engine.shutdown()


def test_trial_entry_rejects_unknown_engine(capsys):
    from nni.retiarii.trial_entry import main
    assert main(['cgo']) == 2
    assert "unknown engine 'cgo'" in capsys.readouterr().err


# ----- end to end on the real manager -----

def _run(space_module, tmp_path, engine):
    config = RetiariiExeConfig('local', experiment_name=f'nas-{engine}', trial_concurrency=2, max_trial_number=6,
                               trial_code_directory=str(tmp_path), execution_engine=engine)
    exp = RetiariiExperiment(space_module.Net(), FunctionalEvaluator(space_module.fit, steps=3), [], ListStrategy(ARCHS))
    assert exp.run(config, _free_port()) is True
    assert exp.get_status() == 'DONE'
    models = exp.list_models()
    assert [m.sample for m in models] == ARCHS
    return exp, models


def _check_results(exp, models, engine):
    by_arch = {(m.sample['hidden'], m.sample['act']): m for m in models}
    failed = by_arch[(4, 'tanh')]
    assert failed.status == ModelStatus.Failed and failed.metric is None
    trained = [m for m in models if m is not failed]
    assert all(m.status == ModelStatus.Trained for m in trained)
    assert all(isinstance(m.metric, float) and len(m.intermediate_metrics) == 3 for m in trained)
    # the store has the same results, and the trial parameters show the architecture
    data = exp.export_data()
    assert len(data) == 3
    stored = {(d.parameter['sample']['hidden'], d.parameter['sample']['act']): d.value['default'] for d in data}
    assert stored == {(m.sample['hidden'], m.sample['act']): m.metric for m in trained}
    assert all(d.parameter['engine'] == engine for d in data)
    statuses = sorted(t.status for t in exp.list_trial_jobs())
    assert statuses == ['FAILED', 'SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']
    best = max(trained, key=lambda m: m.metric)
    top = exp.export_top_models(top_k=2)
    assert top[0] == best.sample and len(top) == 2
    worst = min(trained, key=lambda m: m.metric)
    assert exp.export_top_models(optimize_mode='minimize')[0] == worst.sample
    return best


@pytest.mark.slow  # ~20-50 s: a manager and 4 trial processes
def test_experiment_pure_python_engine(space_module, tmp_path, monkeypatch):
    exp, models = _run(space_module, tmp_path, 'py')
    best = _check_results(exp, models, 'py')
    # fixed_arch rebuilds the trial's model: same training, same output
    arch = exp.export_top_models()[0]
    reports = []
    monkeypatch.setattr(nni, 'report_final_result', reports.append)
    monkeypatch.setattr(nni, 'report_intermediate_result', lambda value: None)
    space_module.fit(lambda: _build(space_module, arch), steps=3)
    assert reports[0]['default'] == pytest.approx(best.metric, rel=1e-6)


def _build(space_module, arch):
    with fixed_arch(arch):
        return space_module.Net()


@pytest.mark.slow
def test_experiment_graph_engine(space_module, tmp_path):
    exp, models = _run(space_module, tmp_path, 'base')
    _check_results(exp, models, 'base')
    code = exp.export_top_models(formatter='code')
    assert len(code) == 1 and 'def forward' in code[0] and 'self.act' in code[0]
    # the exported dict rebuilds the same architecture with fixed_arch
    arch = exp.export_top_models()[0]
    net = _build(space_module, arch)
    params = [d.value['params'] for d in exp.export_data() if d.parameter['sample'] == arch]
    assert params == [sum(p.numel() for p in net.parameters())]
    assert isinstance(net.act, torch.nn.ReLU if arch['act'] == 'relu' else torch.nn.Tanh)


def test_engine_protocol_without_manager(space_module):
    """The engine side of the advisor protocol over its real socket (the advisor played by this test)."""
    from multiprocessing.connection import Client

    from nni.retiarii.execution.python import PurePythonExecutionEngine
    engine = PurePythonExecutionEngine(trial_concurrency=2, max_trial_number=2)
    try:
        base, mutators = engine.preprocess(space_module.Net(), [])
        base.evaluator = FunctionalEvaluator(space_module.fit, steps=1)
        models = []
        for arch in ARCHS[:3]:
            model = base
            for mutator in mutators:
                model = mutator.bind_sampler(FixedSampler(arch)).apply(model)
            models.append(model)
        engine.submit_models(models[0])  # before the advisor connects: queued
        args = engine.advisor_config()['classArgs']
        conn = Client(args['address'], authkey=bytes.fromhex(args['authkey']))
        kind, pid, params = conn.recv()
        assert (kind, pid) == ('submit', models[0].model_id)
        assert params['sample'] == ARCHS[0] and params['engine'] == 'py'
        assert params['model_space']['value'].endswith(':Net')
        assert engine.query_available_resource() == 1
        engine.submit_models(models[1])
        assert conn.recv()[2]['sample'] == ARCHS[1]
        assert engine.budget_exhausted() and engine.query_available_resource() == 0
        late = models.pop()
        engine.submit_models(late)  # over max_trial_number: never runs
        assert late.status == ModelStatus.Failed and late not in engine.list_models()
        conn.send(('metric', models[0].model_id, 'abcde', 'PERIODICAL', 0.5))
        conn.send(('metric', models[0].model_id, 'abcde', 'FINAL', {'default': 0.9, 'loss': 1.0}))
        conn.send(('end', models[0].model_id, 'abcde', 'SUCCEEDED'))
        conn.send(('end', models[1].model_id, 'fghij', 'SUCCEEDED'))  # no final result: Failed
        engine.wait_models(*models)
        assert models[0].status == ModelStatus.Trained and models[0].metric == 0.9
        assert models[0].intermediate_metrics == [0.5]
        assert models[1].status == ModelStatus.Failed and models[1].metric is None
        assert engine.trial_job_ids == {models[0].model_id: 'abcde', models[1].model_id: 'fghij'}
        engine.finish()
        assert conn.recv() == ('done',)
        conn.close()
    finally:
        engine.shutdown()
