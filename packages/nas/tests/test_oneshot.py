"""One-shot trainers on a tiny super-net (spec §6, §13 item 7): fit, export, fixed_arch round trip."""
import json

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

import nni.retiarii.nn.pytorch as nn
from nni.retiarii import fixed_arch, model_wrapper
from nni.retiarii.oneshot import BaseOneShotTrainer
from nni.retiarii.oneshot.pytorch import (DartsTrainer, EnasTrainer, FlopsLatencyPredictor, MeasuredLatencyPredictor,
                                          ProxylessTrainer, RandomTrainer, SinglePathTrainer, count_flops,
                                          replace_input_choice, replace_layer_choice)


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    # tiny tensors: thread hand-offs cost more than they save, and CI shares 2 cores
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@model_wrapper
class Net(nn.Module):
    def __init__(self, skip_reduction='sum'):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.act = nn.LayerChoice({'relu': nn.ReLU(), 'tanh': nn.Tanh(), 'id': nn.Identity()}, label='act')
        self.mid = nn.LayerChoice([nn.Linear(16, 16), nn.Sequential(nn.Linear(16, 16), nn.ReLU())], label='mid')
        self.skip = nn.InputChoice(2, 1, reduction=skip_reduction, label='skip')
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        h = self.act(self.fc1(x))
        return self.fc2(self.skip([h, self.mid(h)]))


def dataset(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 1).long()
    return TensorDataset(x, y)


def accuracy(logits, target):
    return {'acc': (logits.argmax(1) == target).float().mean().item()}


def check_export(arch, tmp_path=None):
    assert set(arch) == {'act', 'mid', 'skip'}
    assert arch['act'] in ('relu', 'tanh', 'id') and arch['mid'] in ('0', '1') and arch['skip'] in ([0], [1])
    json.dumps(arch)
    source = arch
    if tmp_path is not None:
        source = tmp_path / 'arch.json'
        source.write_text(json.dumps(arch))
    with fixed_arch(source):
        net = Net()
    assert not any(isinstance(m, (nn.LayerChoice, nn.InputChoice)) for m in net.modules())
    assert net(torch.randn(5, 8)).shape == (5, 3)
    return net


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)


@pytest.mark.parametrize('unrolled', [False, True])
def test_darts_fit_export(unrolled, tmp_path):
    torch.manual_seed(0)
    model = Net()
    trainer = DartsTrainer(model, F.cross_entropy, accuracy, sgd(model), num_epochs=2, dataset=dataset(),
                           batch_size=16, workers=0, device=torch.device('cpu'), log_frequency=1, unrolled=unrolled)
    alphas = {k: v.detach().clone() for k, v in trainer.arch_parameters.items()}
    trainer.fit()
    assert len(trainer.history) == 2 and {'acc', 'loss'} <= set(trainer.history[0])
    assert all(not torch.equal(alphas[k], v) for k, v in trainer.arch_parameters.items())
    check_export(trainer.export(), tmp_path)


class Negate(nn.Module):
    def forward(self, x):
        return -x


class Zero(nn.Module):
    def forward(self, x):
        return x * 0


@model_wrapper
class Rigged(nn.Module):
    """Target is the input itself: only the 'identity' candidate fits it."""

    def __init__(self):
        super().__init__()
        self.op = nn.LayerChoice({'negate': Negate(), 'zero': Zero(), 'identity': nn.Identity()}, label='op')
        self.bias = nn.Parameter(torch.zeros(4))

    def forward(self, x):
        return self.op(x) + self.bias


@pytest.mark.parametrize('unrolled', [False, True])
def test_darts_alpha_moves_to_the_right_op(unrolled):
    torch.manual_seed(0)
    x = torch.randn(128, 4)
    model = Rigged()
    trainer = DartsTrainer(model, F.mse_loss, lambda out, y: {}, torch.optim.SGD(model.parameters(), lr=0.01),
                           num_epochs=3, dataset=TensorDataset(x, x), batch_size=16, workers=0,
                           device=torch.device('cpu'), arc_learning_rate=0.05, unrolled=unrolled)
    trainer.fit()
    weights = F.softmax(trainer.arch_parameters['op'], -1)
    assert weights[2] > 0.5 and weights[2] == weights.max()  # uniform would be 1/3
    assert trainer.export() == {'op': 'identity'}


def test_darts_cell_space_and_shared_labels():
    @model_wrapper
    class CellNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Linear(8, 6)
            self.cell = nn.Cell([nn.Identity(), nn.Linear(6, 6), nn.Tanh()], num_nodes=2, num_ops_per_node=1,
                                num_predecessors=1, label='cell')
            self.a = nn.LayerChoice([nn.ReLU(), nn.Sigmoid()], label='shared')
            self.b = nn.LayerChoice([nn.ReLU(), nn.Sigmoid()], label='shared')
            self.head = nn.Linear(12, 3)

        def forward(self, x):
            return self.head(self.b(self.a(self.cell(self.stem(x)))))

    model = CellNet()
    trainer = DartsTrainer(model, F.cross_entropy, accuracy, sgd(model), num_epochs=1, dataset=dataset(64),
                           batch_size=16, workers=0, device=torch.device('cpu'))
    assert trainer.model.a.alpha is trainer.model.b.alpha  # one label, one architecture weight
    trainer.fit()
    arch = trainer.export()
    assert set(arch) == {'cell/op_0_0', 'cell/input_0_0', 'cell/op_1_0', 'cell/input_1_0', 'shared'}
    with fixed_arch(arch):
        net = CellNet()
    assert net(torch.randn(2, 8)).shape == (2, 3)


def test_enas_fit_export(tmp_path):
    torch.manual_seed(0)
    model = Net()
    trainer = EnasTrainer(model, F.cross_entropy, accuracy, lambda out, y: accuracy(out, y)['acc'], sgd(model),
                          num_epochs=2, dataset=dataset(), batch_size=16, workers=0, device=torch.device('cpu'),
                          log_frequency=2, ctrl_steps_aggregate=4, ctrl_kwargs={'lstm_size': 16})
    before = [p.detach().clone() for p in trainer.controller.parameters()]
    trainer.fit()
    assert trainer.ctrl_steps == 1 and 'controller_reward' in trainer.history[-1]
    assert any(not torch.equal(b, p) for b, p in zip(before, trainer.controller.parameters()))
    arch = trainer.export()
    assert arch == trainer.export()  # greedy decoding is deterministic
    check_export(arch, tmp_path)


def test_enas_controller_learns_a_rewarded_choice():
    from nni.retiarii.oneshot.pytorch import ReinforceController, ReinforceField
    torch.manual_seed(0)
    ctrl = ReinforceController([ReinforceField('a', 4, 1), ReinforceField('b', 3, None), ReinforceField('c', 5, 2)],
                               lstm_size=16)
    optim = torch.optim.Adam(ctrl.parameters(), lr=0.1)
    baseline = None
    for _ in range(40):
        sample = ctrl.resample()
        assert len(sample['c']) == 2 and sample['b'] and sample['c'] == sorted(set(sample['c']))
        reward = float(sample['a'] == [2])
        baseline = reward if baseline is None else 0.9 * baseline + 0.1 * reward
        optim.zero_grad()
        (-ctrl.sample_log_prob * (reward - baseline)).backward()
        optim.step()
    assert ctrl.resample(greedy=True)['a'] == [2]


@pytest.mark.parametrize('cls', [SinglePathTrainer, RandomTrainer])
def test_single_path_fit_and_evolution_export(cls, tmp_path):
    torch.manual_seed(0)
    model = Net(skip_reduction='concat')  # sampling trainers support every reduction
    model.fc2 = nn.Linear(16, 3)
    trainer = cls(model, F.cross_entropy, accuracy, sgd(model), num_epochs=2, dataset_train=dataset(64),
                  dataset_valid=dataset(32, seed=1), batch_size=16, workers=0, device=torch.device('cpu'), seed=0)
    trainer.fit()
    assert {'loss', 'acc', 'val_loss', 'val_acc'} <= set(trainer.history[-1])
    arch = trainer.export(population_size=4, cycles=8, metric='acc')
    assert len(trainer.search_history) == 8
    assert trainer.evaluate(arch)['acc'] == max(score for _, score in trainer.search_history)
    check_export(arch, tmp_path)


def test_single_path_custom_mutator_and_bad_mutator():
    seen = []

    def only_relu(space):
        seen.append(space)
        return {'act': 'relu', 'mid': '1', 'skip': [1]}

    model = Net()
    trainer = SinglePathTrainer(model, F.cross_entropy, accuracy, sgd(model), 1, dataset(32), dataset(16),
                                mutator=only_relu, batch_size=16, workers=0, device=torch.device('cpu'))
    trainer.fit()
    assert seen[0] == {'act': ['relu', 'tanh', 'id'], 'mid': ['0', '1'], 'skip': [[0], [1]]}
    assert model.act.sampled == 'relu' and model.skip.sampled == [1]
    bad = SinglePathTrainer(Net(), F.cross_entropy, accuracy, sgd(model), 1, dataset(32), dataset(16),
                            mutator=lambda space: {'act': 'gelu', 'mid': '0', 'skip': [0]}, workers=0)
    with pytest.raises(ValueError, match=r"'act' = 'gelu' is not a candidate"):
        bad.fit()


def test_proxyless_fit_export(tmp_path):
    torch.manual_seed(0)
    model = Net()
    trainer = ProxylessTrainer(model, F.cross_entropy, accuracy, sgd(model), num_epochs=2, dataset=dataset(),
                               warmup_epochs=1, batch_size=16, workers=0, device=torch.device('cpu'),
                               latency_predictor=FlopsLatencyPredictor())
    trainer.fit()
    assert 'expected_latency' not in trainer.history[0] and 'expected_latency' in trainer.history[1]
    assert all(not p.requires_grad for p in trainer.arch_parameters.values())
    check_export(trainer.export(), tmp_path)


@model_wrapper
class Costly(nn.Module):
    """Both candidates fit the data equally (the target is 0), one costs 64x64 MACs and the other nothing."""

    def __init__(self):
        super().__init__()
        self.op = nn.LayerChoice({'big': nn.Sequential(nn.Linear(64, 64), nn.Linear(64, 64)), 'free': nn.Identity()}, label='op')
        self.head = nn.Linear(64, 1)

    def forward(self, x):
        return self.head(self.op(x))


def test_proxyless_latency_loss_picks_the_cheap_op():
    torch.manual_seed(0)
    x = torch.randn(64, 64)
    model = Costly()
    trainer = ProxylessTrainer(model, F.mse_loss, lambda out, y: {}, sgd(model), num_epochs=3,
                               dataset=TensorDataset(x, torch.zeros(64, 1)), batch_size=8, workers=0,
                               device=torch.device('cpu'), arc_learning_rate=0.05,
                               latency_predictor=FlopsLatencyPredictor(), latency_weight=1.0)
    trainer.fit()
    table = trainer.latency_table()
    assert [c.tolist() for _, c in table] == [pytest.approx([2 * 64 * 64 / 1e6, 0.0])]
    assert trainer.export() == {'op': 'free'}


def test_latency_predictors():
    x = (torch.randn(1, 3, 8, 8),)
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU())
    assert count_flops(conv, x) == 4 * 8 * 8 * 3 * 9
    assert FlopsLatencyPredictor()(torch.nn.Linear(16, 32), (torch.randn(1, 16),)) == 16 * 32 / 1e6
    ms = MeasuredLatencyPredictor(repeat=3, warmup=1)(conv, x)
    assert 0 < ms < 1000


class SumLayerChoice(torch.nn.Module):
    """The docs' custom-trainer pattern: softmax-weighted sum of all candidates."""

    def __init__(self, layer_choice):
        super().__init__()
        self.name = layer_choice.label
        self.op_choices = torch.nn.ModuleDict(layer_choice.named_children())
        self.alpha = torch.nn.Parameter(torch.randn(len(self.op_choices)) * 1e-3)

    def forward(self, *args, **kwargs):
        op_results = torch.stack([op(*args, **kwargs) for op in self.op_choices.values()])
        alpha_shape = [-1] + [1] * (len(op_results.size()) - 1)
        return torch.sum(op_results * F.softmax(self.alpha, -1).view(*alpha_shape), 0)


class FirstInput(torch.nn.Module):
    def __init__(self, input_choice):
        super().__init__()
        self.reduction = input_choice.reduction

    def forward(self, inputs):
        return inputs[0]


class MyTrainer(BaseOneShotTrainer):
    def __init__(self, model, data, epochs=2):
        self.model, self.data, self.epochs = model, data, epochs
        self.nas_modules = []
        replace_layer_choice(self.model, SumLayerChoice, self.nas_modules)
        self.input_modules = replace_input_choice(self.model, FirstInput)
        alphas = [m.alpha for _, m in self.nas_modules]
        self.weights_optim = torch.optim.SGD([p for p in model.parameters() if all(p is not a for a in alphas)], lr=0.05)
        self.arch_optim = torch.optim.Adam(alphas, lr=0.05)

    def fit(self):
        x, y = self.data
        for _ in range(self.epochs):
            for optim in (self.arch_optim, self.weights_optim):
                optim.zero_grad()
                F.cross_entropy(self.model(x), y).backward()
                optim.step()

    @torch.no_grad()
    def export(self):
        result = {}
        for name, module in self.nas_modules:
            if name not in result:
                result[name] = list(module.op_choices)[int(module.alpha.argmax())]
        result.update({name: [0] for name, _ in self.input_modules})
        return result


def test_custom_trainer_with_replace_helpers():
    model = Net()
    trainer = MyTrainer(model, dataset(32).tensors)
    assert [name for name, _ in trainer.nas_modules] == ['act', 'mid']
    assert [name for name, _ in trainer.input_modules] == ['skip']
    assert isinstance(model.act, SumLayerChoice) and isinstance(model.skip, FirstInput)
    trainer.fit()
    check_export(trainer.export())
    with pytest.raises(TypeError):
        BaseOneShotTrainer()


def test_unsupported_primitives_and_bad_arguments():
    @model_wrapper
    class WithValueChoice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, nn.ValueChoice([4, 8], label='width'))
            self.act = nn.LayerChoice([nn.ReLU(), nn.Tanh()], label='act')

        def forward(self, x):
            return self.act(self.fc(x))

    @model_wrapper
    class WithRepeat(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Repeat(lambda: nn.LayerChoice([nn.ReLU(), nn.Tanh()]), (1, 3), label='depth')
            self.fc = nn.Linear(8, 3)

        def forward(self, x):
            return self.fc(self.body(x))

    model = WithValueChoice()
    with pytest.raises(ValueError, match="DartsTrainer: ValueChoice 'width' is not supported"):
        DartsTrainer(model, F.cross_entropy, accuracy, sgd(model), 1, dataset(), workers=0)
    model = WithRepeat()
    with pytest.raises(ValueError, match="EnasTrainer: Repeat 'depth' with a depth range is not supported"):
        EnasTrainer(model, F.cross_entropy, accuracy, accuracy, sgd(model), 1, dataset(), workers=0)
    model = Net(skip_reduction='concat')
    with pytest.raises(ValueError, match="InputChoice 'skip': reduction 'concat' cannot be relaxed"):
        DartsTrainer(model, F.cross_entropy, accuracy, sgd(model), 1, dataset(), workers=0)
    model = Net()
    with pytest.raises(ValueError, match='num_epochs must be an int >= 0'):
        ProxylessTrainer(model, F.cross_entropy, accuracy, sgd(model), -1, dataset(), workers=0)
    plain = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match='no LayerChoice or InputChoice'):
        DartsTrainer(plain, F.cross_entropy, accuracy, sgd(plain), 1, dataset(), workers=0)
    model = Net()
    trainer = DartsTrainer(model, F.cross_entropy, lambda out, y: 0.5, sgd(model), 1, dataset(32), workers=0)
    with pytest.raises(ValueError, match='metrics must return a dict'):
        trainer.fit()


@model_wrapper
class MultiInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(8, 6)
        self.ops = nn.ModuleList([nn.LayerChoice([nn.Linear(6, 6), nn.Tanh()], label=f'op{i}') for i in range(3)])
        self.any = nn.InputChoice(3, None, reduction='mean', label='any')
        self.two = nn.InputChoice(3, 2, reduction='sum', label='two')
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        h = self.stem(x)
        outs = [op(h) for op in self.ops]
        return self.head(self.any(outs) + self.two(outs))


@pytest.mark.parametrize('name', ['darts', 'enas', 'spos'])
def test_multi_input_choices_export_valid_subsets(name):
    torch.manual_seed(0)
    model = MultiInput()
    common = dict(batch_size=16, workers=0, device=torch.device('cpu'))
    if name == 'darts':
        trainer = DartsTrainer(model, F.cross_entropy, accuracy, sgd(model), 1, dataset(64), **common)
    elif name == 'enas':
        trainer = EnasTrainer(model, F.cross_entropy, accuracy, lambda out, y: accuracy(out, y)['acc'], sgd(model), 1,
                              dataset(64), ctrl_steps_aggregate=3, ctrl_kwargs={'lstm_size': 8}, **common)
    else:
        trainer = SinglePathTrainer(model, F.cross_entropy, accuracy, sgd(model), 1, dataset(64), dataset(32), **common)
    trainer.fit()
    arch = trainer.export()
    assert len(arch['two']) == 2 and arch['two'] == sorted(arch['two']) and 1 <= len(arch['any']) <= 3
    with fixed_arch(arch):
        net = MultiInput()
    assert net.two.chosen == arch['two'] and net(torch.randn(4, 8)).shape == (4, 3)


def test_proxyless_rejects_multi_input_choice():
    model = MultiInput()
    with pytest.raises(ValueError, match=r"InputChoice 'any': n_chosen=None is not supported by ProxylessTrainer"):
        ProxylessTrainer(model, F.cross_entropy, accuracy, sgd(model), 1, dataset(), workers=0)


@pytest.mark.parametrize('binary_mode', ['full_v2', 'full', 'two'])
def test_proxyless_nas_trainer_tutorial_interface(binary_mode, tmp_path):
    from torch.utils.data import DataLoader
    from nni.retiarii.oneshot.pytorch import ProxylessNasTrainer

    torch.manual_seed(0)
    model = Net()
    train_loader = DataLoader(dataset(64), batch_size=16, shuffle=True)
    valid_loader = DataLoader(dataset(32, seed=1), batch_size=16)
    ckpt, arch_path = tmp_path / 'ckpt.pth', tmp_path / 'arch.json'
    trainer = ProxylessNasTrainer(model, model_optim=sgd(model), device='cpu', train_loader=train_loader,
                                  valid_loader=valid_loader, n_epochs=2, warmup_epochs=1, binary_mode=binary_mode,
                                  grad_update_arch_param_every=2, ckpt_path=str(ckpt), arch_path=str(arch_path))
    before = {k: v.detach().clone() for k, v in trainer.arch_parameters.items()}
    trainer.train()
    assert trainer.epoch == 3 and len(trainer.valid_history) == 2 and 0 <= trainer.valid_history[-1]['acc'] <= 1
    assert all(not torch.equal(before[k], v) for k, v in trainer.arch_parameters.items())
    arch = trainer.export()
    assert json.loads(arch_path.read_text()) == arch
    check_export(arch)

    fresh = Net()
    resumed = ProxylessNasTrainer(fresh, sgd(fresh), 'cpu', train_loader, valid_loader, n_epochs=2, warmup_epochs=1,
                                  load_ckpt=True, ckpt_path=str(ckpt))
    assert resumed.epoch == 3 and resumed.export() == arch
    resumed.train()  # nothing left to do
    assert resumed.epoch == 3
    with pytest.raises(ValueError, match="binary_mode 'three' is not supported"):
        ProxylessNasTrainer(Net(), sgd(model), 'cpu', train_loader, valid_loader, binary_mode='three')


def test_darts_unrolled_gradient_matches_exact_second_order():
    """The finite-difference Hessian-vector product gives the exact unrolled gradient (up to O(eps))."""
    from torch.func import functional_call

    @model_wrapper
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.op = nn.LayerChoice([nn.Tanh(), nn.Sigmoid(), nn.Identity()], label='op')
            self.out = nn.Linear(4, 2)

        def forward(self, x):
            return self.out(self.op(self.fc(x)))

    torch.manual_seed(0)
    model = Tiny()
    data = dataset(32)
    data = TensorDataset(data.tensors[0][:, :4], data.tensors[1].clamp(max=1))
    trainer = DartsTrainer(model, F.cross_entropy, accuracy, torch.optim.SGD(model.parameters(), lr=0.1), 1, data,
                           learning_rate=0.5, batch_size=16, workers=0, unrolled=True)
    alpha = trainer.arch_parameters['op']
    with torch.no_grad():
        alpha.copy_(torch.tensor([0.3, -0.2, 0.1]))
    (trn_x, trn_y), (val_x, val_y) = data[:16], data[16:]
    alpha.requires_grad_(True)
    trainer._unrolled_backward(trn_x, trn_y, val_x, val_y)
    approx = alpha.grad.clone()

    names = [n for n, p in model.named_parameters() if p is not alpha]
    weights = {n: p for n, p in model.named_parameters() if p is not alpha}
    loss = F.cross_entropy(model(trn_x), trn_y)
    grads = torch.autograd.grad(loss, list(weights.values()), create_graph=True)
    virtual = {n: weights[n] - 0.5 * g for n, g in zip(names, grads)}
    val_loss = F.cross_entropy(functional_call(model, virtual, (val_x,)), val_y)
    exact = torch.autograd.grad(val_loss, alpha)[0]
    assert torch.allclose(approx, exact, atol=2e-4, rtol=1e-2), (approx, exact)
    first_order = torch.autograd.grad(F.cross_entropy(model(val_x), val_y), alpha)[0]
    assert not torch.allclose(first_order, exact, atol=2e-4, rtol=1e-2)  # the second-order term matters here
