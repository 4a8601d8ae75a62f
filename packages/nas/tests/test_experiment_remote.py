"""A RetiariiExperiment on the remote training service against a real OpenSSH server on 127.0.0.1.

The server (:mod:`nni.training_services.remote.testing`) logs a fresh account in with a generated key; its
``python3`` runs this interpreter. The trial code directory (the model space module) is uploaded, each trial runs
``python3 -m nni.retiarii.trial_entry py`` there, and the metrics come back to the strategy in this process.
"""
from __future__ import annotations

import json
import sys
import textwrap
import uuid

import pytest

from nni.retiarii import execution
from nni.retiarii.evaluator import FunctionalEvaluator
from nni.retiarii.experiment.pytorch import RetiariiExeConfig, RetiariiExperiment
from nni.retiarii.graph import ModelStatus
from nni.training_services.remote.testing import SshServer, free_port, sshd_unavailable_reason

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sshd_unavailable_reason() is not None, reason=str(sshd_unavailable_reason()))]

SPACE = '''
import os
import torch
import nni
import nni.retiarii.nn.pytorch as nn
from nni.retiarii import model_wrapper

@model_wrapper
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, nn.ValueChoice([3, 5], label='hidden'))
        self.act = nn.LayerChoice({'relu': nn.ReLU(), 'tanh': nn.Tanh()}, label='act')

    def forward(self, x):
        return self.act(self.fc1(x))

def fit(model_cls):
    model = model_cls()
    width = model.fc1.out_features
    # the final result says where it ran and which architecture it built
    nni.report_intermediate_result(float(width))
    nni.report_final_result({'default': float(width) + (0.5 if isinstance(model.act, torch.nn.Tanh) else 0.0),
                             'platform': os.environ.get('NNI_PLATFORM'), 'user': os.environ.get('USER') or os.getuid()})
'''

ARCHS = [{'hidden': 5, 'act': 'tanh'}, {'hidden': 3, 'act': 'relu'}, {'hidden': 5, 'act': 'relu'}]


class ListStrategy:
    """Submits the given architectures (as many at once as the engine has slots) and waits for them."""

    def __init__(self, archs):
        self.archs = archs

    def run(self, base_model, applied_mutators):
        from nni.retiarii import Sampler

        class Fixed(Sampler):
            def __init__(self, arch):
                self.arch = arch

            def choice(self, candidates, mutator, model, index):
                return self.arch[mutator.label]

        import time
        submitted = []
        for arch in self.archs:
            while execution.query_available_resources() <= 0:
                time.sleep(0.05)
            model = base_model
            for mutator in applied_mutators:
                model = mutator.bind_sampler(Fixed(arch)).apply(model)
            execution.submit_models(model)
            submitted.append(model)
        execution.wait_models(*submitted)


@pytest.fixture
def ssh_server(tmp_path):
    server = SshServer(tmp_path / 'sshd')
    try:
        server.start()
        server.trust()  # NNI's known_hosts (NNI_CONFIG_DIR is per test process)
        yield server
    finally:
        server.stop()


@pytest.fixture
def space_module(tmp_path, monkeypatch):
    code = tmp_path / 'code'
    code.mkdir()
    name = f'remote_space_{uuid.uuid4().hex[:8]}'
    (code / f'{name}.py').write_text(textwrap.dedent(SPACE))
    monkeypatch.syspath_prepend(str(code))
    module = __import__(name)
    yield module, code
    sys.modules.pop(name, None)


def test_retiarii_experiment_on_remote_machine(ssh_server, space_module, tmp_path):
    module, code = space_module
    config = RetiariiExeConfig('remote', experiment_name='nas-remote', trial_concurrency=2, max_trial_number=3,
                               trial_code_directory=str(code), experiment_working_directory=str(tmp_path / 'exps'))
    config.training_service.machine_list = [ssh_server.machine()]
    exp = RetiariiExperiment(module.Net(), FunctionalEvaluator(module.fit), [], ListStrategy(ARCHS))
    assert exp.run(config, free_port()) is True
    models = exp.list_models()
    assert [m.sample for m in models] == ARCHS
    assert all(m.status == ModelStatus.Trained for m in models), [(m.sample, m.status) for m in models]
    assert [m.metric for m in models] == [5.5, 3.0, 5.0]
    assert [m.intermediate_metrics for m in models] == [[5.0], [3.0], [5.0]]
    jobs = exp.list_trial_jobs()
    assert len(jobs) == 3 and {j.status for j in jobs} == {'SUCCEEDED'}
    # the trials really ran on the ssh machine: under its login account, in its home
    finals = [j.finalMetricData[0].data for j in jobs]
    finals = [json.loads(f) if isinstance(f, str) else f for f in finals]
    finals = [json.loads(f) if isinstance(f, str) else f for f in finals]
    assert {f['platform'] for f in finals} == {'remote'}
    assert {f['user'] for f in finals} == {ssh_server.account.name}
    assert list((ssh_server.account.home / 'nni-experiments').glob('*/trials/*/.nni'))
    assert exp.export_top_models() == [{'hidden': 5, 'act': 'tanh'}]
