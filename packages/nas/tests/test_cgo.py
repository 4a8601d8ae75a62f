"""CGO (cross-graph optimization) engine: logical plan, merged modules, the multi-model evaluator, the engine's
side of the advisor protocol, and end-to-end experiments on the real manager (local and remote, slow)."""
from __future__ import annotations

import base64
import copy
import sys
import textwrap
import time
import uuid
from multiprocessing.connection import Client

import pytest
import torch

import nni
from nni.retiarii import Sampler
from nni.retiarii.evaluator import FunctionalEvaluator
from nni.retiarii.execution.logical_plan import DedupInputOptimizer, LogicalPlan, merge_modules
from nni.retiarii.experiment.pytorch import RetiariiExeConfig, RetiariiExperiment
from nni.retiarii.graph import ModelStatus

SPACE = '''
import torch
from torch.utils.data import TensorDataset
import nni.retiarii.nn.pytorch as nn
from nni.retiarii import model_wrapper
from nni.retiarii.evaluator.pytorch import lightning as pl
from nni.retiarii.evaluator.pytorch.cgo import evaluator as cgo

@model_wrapper
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        hidden = nn.ValueChoice([4, 8], label='hidden')
        self.fc1 = nn.Linear(6, hidden)
        # 'bad' fails on every input (shape mismatch): the docs' reason to re-run a merged trial's models alone
        self.act = nn.LayerChoice({'relu': nn.ReLU(), 'tanh': nn.Tanh(), 'bad': nn.Linear(3, 3)}, label='act')
        self.fc2 = nn.Linear(hidden, 2)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))

def data(seed=0, n=64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    return TensorDataset(x, (x[:, 0] + x[:, 1] > 0).long())

def evaluator(seed=0, **kwargs):
    return cgo.Classification(train_dataloader=pl.DataLoader(data(seed), batch_size=16),
                              val_dataloaders=pl.DataLoader(data(seed + 100), batch_size=32),
                              max_epochs=2, logger=False, learning_rate=0.05, **kwargs)
'''


@pytest.fixture
def space_module(tmp_path, monkeypatch):
    name = f'cgo_space_{uuid.uuid4().hex[:8]}'
    (tmp_path / f'{name}.py').write_text(textwrap.dedent(SPACE))
    monkeypatch.syspath_prepend(str(tmp_path))
    module = __import__(name)
    yield module
    sys.modules.pop(name, None)


class FixedSampler(Sampler):
    def __init__(self, arch):
        self.arch = arch

    def choice(self, candidates, mutator, model, index):
        return self.arch[mutator.label]


def _sample(base, mutators, arch):
    model = base
    for mutator in mutators:
        model = mutator.bind_sampler(FixedSampler(arch)).apply(model)
    return model


def _model(name):
    from nni.retiarii.graph import Model
    model = Model(_internal=True)
    model.name = name
    return model


# ----- logical plan and merged modules -----

def test_dedup_input_optimizer_groups_models_by_input_and_assemble_splits():
    plan = LogicalPlan()
    models = [_model(i) for i in range(5)]
    for model, key in zip(models, ['a', 'b', 'a', 'a', 'b']):
        plan.add_model(model, key)
    assert len(plan.inputs) == 5
    DedupInputOptimizer().convert(plan)
    assert [(n.key, [m.name for m in n.models]) for n in plan.inputs] == [('a', [0, 2, 3]), ('b', [1, 4])]
    trials = plan.assemble(2)
    assert [[m.name for m in t.models] for t in trials] == [[0, 2], [3], [1, 4]]
    assert [t.input.key for t in trials] == ['a', 'a', 'b']
    with pytest.raises(ValueError, match='max_models'):
        plan.assemble(0)


def test_merged_module_shares_inputs_and_matches_each_model():
    torch.manual_seed(0)
    a = torch.fx.symbolic_trace(torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU()))
    b = torch.fx.symbolic_trace(torch.nn.Sequential(torch.nn.Linear(6, 3)))
    merged = merge_modules([a, b])
    assert merged.cgo_num_models == 2
    x = torch.randn(5, 6)
    out = merged(x)
    assert isinstance(out, tuple) and torch.equal(out[0], a(x)) and torch.equal(out[1], b(x))
    # one placeholder feeds both models: the input is loaded once
    placeholders = [n for n in merged.graph.nodes if n.op == 'placeholder']
    assert len(placeholders) == 1 and len(placeholders[0].users) == 2

    class Two(torch.nn.Module):
        def forward(self, x, y):
            return x + y
    with pytest.raises(ValueError, match='model 1 takes 2 inputs, model 0 takes 1'):
        merge_modules([a, torch.fx.symbolic_trace(Two())])


def test_merged_training_equals_separate_training(space_module, monkeypatch):
    """Training two models merged gives each the weights and metrics it gets alone (one batch load per step)."""
    reports = []
    monkeypatch.setattr(nni, 'report_intermediate_result', lambda v: reports.append(('i', v)))
    monkeypatch.setattr(nni, 'report_final_result', lambda v: reports.append(('f', v)))
    torch.manual_seed(0)
    a = torch.fx.symbolic_trace(torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)))
    b = torch.fx.symbolic_trace(torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)))
    alone_a, alone_b = copy.deepcopy(a), copy.deepcopy(b)
    initial = copy.deepcopy(a)
    evaluator = space_module.evaluator()
    evaluator.evaluate(merge_modules([a, b]))
    merged_reports, reports[:] = list(reports), []
    assert [kind for kind, _ in merged_reports] == ['i', 'i', 'f']
    final = merged_reports[-1][1]
    assert set(final) == {'default', 'model_0', 'model_1'}
    assert final['default'] == pytest.approx((final['model_0'] + final['model_1']) / 2)
    for alone, merged_model, key in [(alone_a, a, 'model_0'), (alone_b, b, 'model_1')]:
        evaluator.evaluate(alone)
        assert reports[-1] == ('f', {'default': final[key], 'model_0': final[key]})
        reports[:] = []
        for p, q in zip(alone.parameters(), merged_model.parameters()):
            assert torch.allclose(p, q, atol=1e-6)
    assert not torch.equal(a.get_submodule('0').weight, initial.get_submodule('0').weight)  # it did train


def test_cgo_evaluator_argument_errors():
    from nni.retiarii.evaluator.pytorch.cgo import evaluator as cgo
    with pytest.raises(ValueError, match='train_dataloader is required'):
        cgo.Regression()
    with pytest.raises(TypeError, match='criterion must be a loss class'):
        cgo.MultiModelSupervisedLearningModule(torch.nn.MSELoss(), {'mse': cgo.MSEMetric()})
    with pytest.raises(TypeError, match='metrics must be a non-empty dict'):
        cgo.MultiModelSupervisedLearningModule(torch.nn.MSELoss, {})


# ----- the engine without a manager (the advisor played by the test) -----

def test_cgo_engine_merges_batches_and_reruns_failed_merges(space_module):
    from nni.retiarii.execution.cgo_engine import CGOExecutionEngine
    with pytest.raises(ValueError, match='MultiModelSupervisedLearningModule'):
        CGOExecutionEngine.check_evaluator(FunctionalEvaluator(print))
    engine = CGOExecutionEngine(trial_concurrency=2, max_trial_number=5, max_concurrency_cgo=2, batch_waiting_time=0.5)
    try:
        CGOExecutionEngine.check_evaluator(space_module.evaluator())
        base, mutators = engine.preprocess(space_module.Net(), [])
        base.evaluator = space_module.evaluator()
        archs = [{'hidden': 4, 'act': 'relu'}, {'hidden': 8, 'act': 'tanh'}, {'hidden': 8, 'act': 'relu'}]
        models = [_sample(base, mutators, arch) for arch in archs]
        assert engine.query_available_resource() == 4  # trial_concurrency x max_concurrency_cgo models
        args = engine.advisor_config()['classArgs']
        conn = Client(args['address'], authkey=bytes.fromhex(args['authkey']))
        start = time.monotonic()
        engine.submit_models(*models)
        kind, pid, params = conn.recv()  # two models waiting = max_concurrency_cgo: sent at once
        assert kind == 'submit' and params['engine'] == 'base'
        assert [m['model_id'] for m in params['models']] == [models[0].model_id, models[1].model_id]
        assert params['models'][1]['sample'] == archs[1] and 'def forward' in params['models'][0]['code']
        assert 'self.model_0(' in params['code'] and 'self.model_1(' in params['code']
        merged = __import__('cloudpickle').loads(base64.b64decode(params['module']))
        out = merged(torch.randn(3, 6))
        assert merged.cgo_num_models == 2 and [o.shape for o in out] == [(3, 2), (3, 2)]
        _, pid2, params2 = conn.recv()  # the third waited batch_waiting_time for company, then went alone
        assert time.monotonic() - start >= 0.4
        assert [m['model_id'] for m in params2['models']] == [models[2].model_id]
        assert engine.physical_trials == [[models[0].model_id, models[1].model_id], [models[2].model_id]]
        assert engine.query_available_resource() == 1

        conn.send(('metric', pid, 't1', 'PERIODICAL', {'default': 0.5, 'model_0': 0.4, 'model_1': 0.6}))
        conn.send(('metric', pid, 't1', 'FINAL', {'default': 0.5, 'model_0': 0.4, 'model_1': 0.6}))
        conn.send(('end', pid, 't1', 'FAILED'))  # a bad model in the merge: both run again, alone
        rerun = [conn.recv(), conn.recv()]
        assert [r[2]['models'][0]['model_id'] for r in rerun] == [models[0].model_id, models[1].model_id]
        assert models[0].metric is None and models[0].intermediate_metrics == []
        assert models[0].status == ModelStatus.Training
        conn.send(('metric', rerun[0][1], 't3', 'FINAL', {'default': 0.7, 'model_0': 0.7}))
        conn.send(('end', rerun[0][1], 't3', 'SUCCEEDED'))
        conn.send(('end', rerun[1][1], 't4', 'FAILED'))  # alone and failed: Failed
        conn.send(('metric', pid2, 't2', 'FINAL', {'default': 0.9, 'model_0': 0.9}))
        conn.send(('end', pid2, 't2', 'SUCCEEDED'))
        engine.wait_models(*models)
        assert [m.status for m in models] == [ModelStatus.Trained, ModelStatus.Failed, ModelStatus.Trained]
        assert [m.metric for m in models] == [0.7, None, 0.9]
        assert engine.trial_job_ids == {models[0].model_id: 't3', models[1].model_id: 't4', models[2].model_id: 't2'}

        # models with another evaluator (another dataset) never share a trial with these
        other = _sample(base, mutators, archs[0])
        other.evaluator = space_module.evaluator(seed=1)
        again = _sample(base, mutators, archs[1])
        engine.submit_models(other, again)
        engine.finish()  # the strategy ended: the waiting models go now, before 'done'
        sent = [conn.recv(), conn.recv()]
        assert [[m['model_id'] for m in s[2]['models']] for s in sent] == [[other.model_id], [again.model_id]]
        assert conn.recv() == ('done',)
        assert engine.budget_exhausted() and engine.query_available_resource() == 0
        conn.close()
    finally:
        engine.shutdown()


# ----- end to end on the real manager (slow) -----

ARCHS = [{'hidden': 8, 'act': 'relu'}, {'hidden': 4, 'act': 'tanh'}, {'hidden': 4, 'act': 'relu'}, {'hidden': 8, 'act': 'bad'}]


class ListStrategy:
    """Submits the architectures all at once and waits for them."""

    def __init__(self, archs):
        self.archs = archs

    def run(self, base_model, applied_mutators):
        from nni.retiarii import execution
        models = [_sample(base_model, applied_mutators, arch) for arch in self.archs]
        execution.submit_models(*models)
        execution.wait_models(*models)


def _check(exp, expected_trials):
    models = exp.list_models()
    assert [m.sample for m in models] == ARCHS
    by_act = {m.sample['act'] + str(m.sample['hidden']): m for m in models}
    assert by_act['bad8'].status == ModelStatus.Failed
    good = [m for m in models if m.sample['act'] != 'bad']
    assert all(m.status == ModelStatus.Trained and 0.0 <= m.metric <= 1.0 for m in good), [(m.sample, m.status, m.metric) for m in models]
    assert all(len(m.intermediate_metrics) == 2 for m in good)
    jobs = exp.list_trial_jobs()
    assert sorted(j.status for j in jobs) == expected_trials
    assert exp.export_top_models()[0] == max(good, key=lambda m: m.metric).sample
    assert 'self.model_0(' not in exp.export_top_models(formatter='code')[0]  # the model's own code, not the merge's


@pytest.mark.slow  # ~30-60 s: a manager and 4 Lightning trial processes
def test_cgo_experiment_local(space_module, tmp_path):
    from nni.server.testing import free_port
    config = RetiariiExeConfig('local', experiment_name='nas-cgo', trial_concurrency=2, max_trial_number=4,
                               trial_code_directory=str(tmp_path), execution_engine='cgo',
                               max_concurrency_cgo=2, batch_waiting_time=1)
    exp = RetiariiExperiment(space_module.Net(), space_module.evaluator(), [], ListStrategy(ARCHS))
    assert exp.run(config, free_port()) is True
    # two merged trials: (8 relu, 4 tanh) succeeds; (4 relu, 8 bad) fails, so both of its models run alone
    _check(exp, ['FAILED', 'FAILED', 'SUCCEEDED', 'SUCCEEDED'])
    data = exp.export_data()
    merged = [d for d in data if len(d.parameter['models']) == 2]
    assert len(merged) == 1 and set(merged[0].value) == {'default', 'model_0', 'model_1'}


@pytest.mark.slow
def test_cgo_experiment_remote(space_module, tmp_path):
    from nni.training_services.remote.testing import SshServer, free_port, sshd_unavailable_reason
    if sshd_unavailable_reason() is not None:
        pytest.skip(sshd_unavailable_reason())
    server = SshServer(tmp_path / 'sshd')
    try:
        server.start()
        server.trust()
        code = tmp_path
        config = RetiariiExeConfig('remote', experiment_name='nas-cgo-remote', trial_concurrency=2, max_trial_number=2,
                                   trial_code_directory=str(code), experiment_working_directory=str(tmp_path / 'exps'),
                                   execution_engine='cgo', max_concurrency_cgo=2, batch_waiting_time=1)
        config.training_service.machine_list = [server.machine()]
        exp = RetiariiExperiment(space_module.Net(), space_module.evaluator(), [], ListStrategy(ARCHS[:2]))
        assert exp.run(config, free_port()) is True
        # the two models trained together in one trial on the ssh machine (the fallback is tested locally)
        models = exp.list_models()
        assert [m.sample for m in models] == ARCHS[:2]
        assert all(m.status == ModelStatus.Trained and 0.0 <= m.metric <= 1.0 and len(m.intermediate_metrics) == 2 for m in models)
        (job,) = exp.list_trial_jobs()
        assert job.status == 'SUCCEEDED'
        (data,) = exp.export_data()
        assert [m['model_id'] for m in data.parameter['models']] == [m.model_id for m in models]
        assert [data.value['model_0'], data.value['model_1']] == [m.metric for m in models]
        assert list((server.account.home / 'nni-experiments').glob('*/trials/*/.nni'))
    finally:
        server.stop()
