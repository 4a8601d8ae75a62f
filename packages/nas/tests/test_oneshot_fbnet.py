"""FBNet (Gumbel-softmax block-wise DNAS with a latency-aware loss) on a tiny super-net, and the shared super-net set-up."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

import nni.retiarii.nn.pytorch as nn
from nni.retiarii import fixed_arch, model_wrapper
from nni.retiarii.oneshot.pytorch import FBNetLayerChoice, FBNetTrainer, FlopsLatencyPredictor
from nni.retiarii.oneshot.pytorch.darts import DartsInputChoice, DartsLayerChoice
from nni.retiarii.oneshot.pytorch.utils import _prepare_supernet


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@model_wrapper
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.act = nn.LayerChoice({'relu': nn.ReLU(), 'tanh': nn.Tanh()}, label='act')
        # 'slow' and 'fast' compute the same kind of function; only the latency table tells them apart
        self.mid = nn.LayerChoice({'slow': nn.Linear(16, 16), 'fast': nn.Linear(16, 16)}, label='mid')
        self.mid2 = nn.LayerChoice({'slow': nn.Linear(16, 16), 'fast': nn.Linear(16, 16)}, label='mid')  # shares 'mid'
        self.skip = nn.InputChoice(2, 1, label='skip')
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        h = self.act(self.fc1(x))
        return self.fc2(self.skip([h, self.mid2(self.mid(h))]))


def dataset(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    return TensorDataset(x, (x[:, 0] > 0).long() + (x[:, 1] > 1).long())


def accuracy(logits, target):
    return {'acc': (logits.argmax(1) == target).float().mean().item()}


def trainer_for(model, **kwargs):
    kwargs = {'num_epochs': 2, 'dataset': dataset(), 'batch_size': 16, 'workers': 0, 'device': torch.device('cpu'), **kwargs}
    return FBNetTrainer(model, F.cross_entropy, accuracy, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), **kwargs)


def test_fbnet_warmup_search_anneal_and_export():
    torch.manual_seed(0)
    model = Net()
    trainer = trainer_for(model, num_epochs=3, warmup_epochs=1, initial_temperature=4.0, temperature_decay=0.5)
    assert set(trainer.arch_parameters) == {'act', 'mid', 'skip'}
    assert trainer.model.mid.alpha is trainer.model.mid2.alpha  # one label, one decision
    thetas = {k: v.detach().clone() for k, v in trainer.arch_parameters.items()}
    trainer.num_epochs = 1
    trainer.fit()  # warm-up only: the weights train, theta and the temperature do not move
    assert all(torch.equal(thetas[k], v) for k, v in trainer.arch_parameters.items())
    assert trainer.temperature == 4.0
    trainer.num_epochs = 3
    trainer.fit()
    assert [h['temperature'] for h in trainer.history] == [4.0, 4.0, 2.0]
    assert all(not torch.equal(thetas[k], v) for k, v in trainer.arch_parameters.items())
    arch = trainer.export()
    assert set(arch) == {'act', 'mid', 'skip'} and arch['mid'] in ('slow', 'fast') and arch['skip'] in ([0], [1])
    assert arch['act'] == ['relu', 'tanh'][int(torch.argmax(trainer.arch_parameters['act']))]
    with fixed_arch(arch):
        net = Net()
    assert net(torch.randn(4, 8)).shape == (4, 3)


def test_fbnet_gumbel_sampling_in_training_argmax_block_in_eval():
    torch.manual_seed(0)
    model = Net()
    trainer = trainer_for(model)
    layer = trainer.model.act
    assert isinstance(layer, FBNetLayerChoice)
    with torch.no_grad():
        layer.alpha.copy_(torch.tensor([0.0, 3.0]))
    layer.train()
    samples = torch.stack([layer.path_weights() for _ in range(200)])
    assert torch.allclose(samples.sum(1), torch.ones(200))
    assert samples.std(0).min() > 0.01  # random, not softmax(alpha)
    calls = []
    handles = [op.register_forward_hook(lambda m, i, o, name=name: calls.append(name)) for name, op in layer.op_choices.items()]
    layer.eval()
    out = layer(torch.randn(2, 16))
    assert calls == ['tanh'] and out.shape == (2, 16)
    layer.train()
    layer(torch.randn(2, 16))
    assert calls[1:] == ['relu', 'tanh']  # all blocks side by side in training
    for handle in handles:
        handle.remove()


def test_fbnet_latency_loss_steers_to_the_fast_block():
    costs = {}

    def predictor(module, example_inputs):
        assert example_inputs[0].shape == (1, 16)  # the input the block really receives, batch size 1
        return costs[id(module)]

    picks = []
    for seed in range(3):
        torch.manual_seed(seed)
        model = Net()
        for name, op in model.mid.named_children():
            costs[id(op)] = 50.0 if name == 'slow' else 1.0
        for name, op in model.mid2.named_children():
            costs[id(op)] = 50.0 if name == 'slow' else 1.0
        for op in model.act.children():
            costs[id(op)] = 1.0
        trainer = trainer_for(model, num_epochs=3, arc_learning_rate=0.1, latency_predictor=predictor, alpha=1.0, beta=1.0)
        trainer.fit()
        assert 'expected_latency' in trainer.history[-1]
        picks.append(trainer.export()['mid'])
        table = trainer.latency_table()
        assert sorted(c.tolist() for _, c in table) == [[1.0, 1.0], [50.0, 1.0]]  # 'mid' counted once
        theta = trainer.arch_parameters['mid']
        probs = F.softmax(theta, -1)
        expected = 1.0 + float(probs[0] * 50 + probs[1] * 1)
        assert float(trainer.expected_latency()) == pytest.approx(expected, rel=1e-5)
        assert float(trainer.latency_factor(torch.tensor(expected))) == pytest.approx(math.log1p(expected))
    assert picks == ['fast', 'fast', 'fast']


def test_fbnet_with_flops_predictor_runs():
    torch.manual_seed(0)
    trainer = trainer_for(Net(), num_epochs=1, latency_predictor=FlopsLatencyPredictor())
    trainer.fit()
    assert trainer.history[0]['expected_latency'] > 0


@pytest.mark.parametrize('kwargs, words', [
    ({'warmup_epochs': -1}, 'warmup_epochs must be an int >= 0'),
    ({'initial_temperature': 0}, 'initial_temperature must be a number > 0'),
    ({'temperature_decay': 1.5}, 'temperature_decay must be in (0, 1]'),
    ({'latency_predictor': 3}, 'latency_predictor must be a callable'),
    ({'beta': -1}, 'beta must be a number > 0'),
])
def test_fbnet_argument_errors(kwargs, words):
    with pytest.raises(ValueError) as info:
        trainer_for(Net(), **kwargs)
    assert str(info.value).startswith('FBNetTrainer: ') and words in str(info.value) and '\n' not in str(info.value)


def test_prepare_supernet_replaces_shares_and_moves():
    model = Net()
    nas_modules, shared, device = _prepare_supernet(model, 'MyTrainer', DartsLayerChoice, DartsInputChoice, 'cpu')
    assert [label for label, _ in nas_modules] == ['act', 'mid', 'mid', 'skip']
    assert list(shared) == ['act', 'mid', 'skip'] and model.mid.alpha is model.mid2.alpha
    assert device == torch.device('cpu')
    plain = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match='MyTrainer: the model has no LayerChoice or InputChoice'):
        _prepare_supernet(plain, 'MyTrainer', DartsLayerChoice, DartsInputChoice)
    nas_modules, shared, _ = _prepare_supernet(Net(), 'MyTrainer', DartsLayerChoice, DartsInputChoice, 'cpu', share_attribute=None)
    assert len(nas_modules) == 4 and not shared
