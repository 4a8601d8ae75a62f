"""v2 one-shot pruners: exact sparsities, mask shapes, global mode, trainer-based pruners, config errors."""
import pytest
import torch
from torch import nn

from nni.algorithms.compression.v2.pytorch.pruning import (ActivationAPoZRankPruner, ActivationMeanRankPruner,
                                                           ADMMPruner, FPGMPruner, L1NormPruner, L2NormPruner,
                                                           LevelPruner, PrunerModuleWrapper, SlimPruner,
                                                           TaylorFOWeightPruner)
from nni.retiarii.models import DigitsCNN, digits_cnn


def net() -> DigitsCNN:
    """conv1(1->10)-bn1 -> conv2(10->20)-bn2 -> fc1(320->30) -> fc2(30->10), 8x8 inputs (the model zoo's digits CNN)."""
    return digits_cnn(10, widths=(10, 20), hidden=30, batch_norm=True, padding=0, pool=False)


def make_model(seed=0):
    torch.manual_seed(seed)
    return net()


DATA = [(torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(i)), torch.arange(8) % 10) for i in range(4)]


def trainer(model, optimizer, criterion):
    model.train()
    for x, y in DATA:
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()


def training_args(model):
    return dict(trainer=trainer, optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
                criterion=nn.CrossEntropyLoss())


def kept_rows(mask):
    return int((mask.reshape(mask.shape[0], -1).sum(1) != 0).sum())


def test_level_pruner_exact_sparsity_and_wrapping():
    model = make_model()
    original = {n: p.detach().clone() for n, p in model.named_parameters()}
    masked, masks = LevelPruner(model, [{'sparsity': 0.8, 'op_types': ['default']},
                                        {'sparsity': 0.5, 'op_names': ['fc2']}]).compress()
    assert masked is model and isinstance(model.conv1, PrunerModuleWrapper)
    assert set(masks) == {'conv1', 'conv2', 'fc1', 'fc2'}  # BatchNorm is not in the default set
    for name, mask in masks.items():
        w = original[f'{name}.weight']
        sparsity = 0.5 if name == 'fc2' else 0.8
        assert int((mask['weight'] == 0).sum()) == int(w.numel() * sparsity + 1e-6)
        # the pruned ones are the smallest in magnitude
        assert w.abs()[mask['weight'] == 0].max() <= w.abs()[mask['weight'] == 1].min()
        assert 'bias' not in mask
    out = model(torch.randn(2, 1, 8, 8))
    assert out.shape == (2, 10)
    assert torch.all(model.conv1.module.weight[masks['conv1']['weight'] == 0] == 0)


@pytest.mark.parametrize('pruner_cls', [L1NormPruner, L2NormPruner, FPGMPruner])
def test_norm_pruners_prune_whole_filters_exactly(pruner_cls):
    model = make_model()
    _, masks = pruner_cls(model, [{'sparsity': 0.5, 'op_types': ['Conv2d']},
                                  {'sparsity_per_layer': 0.3, 'op_names': ['fc1']}]).compress()
    assert set(masks) == {'conv1', 'conv2', 'fc1'}
    assert kept_rows(masks['conv1']['weight']) == 5 and kept_rows(masks['conv2']['weight']) == 10
    assert kept_rows(masks['fc1']['weight']) == 21
    for mask in masks.values():
        rows = mask['weight'].reshape(mask['weight'].shape[0], -1)
        assert torch.all((rows == 0).all(1) | (rows == 1).all(1))  # whole filters only
        assert torch.equal(mask['bias'], rows[:, 0])  # the bias of a pruned filter is pruned too


def test_l1_prunes_smallest_norm_filters_and_l2_uses_l2():
    model = make_model()
    with torch.no_grad():
        w = model.conv1.weight
        w.zero_()
        w[0] = 0.1          # L1 = 0.9, L2 = 0.3
        w[1, 0, 0, 0] = 0.8  # L1 = 0.8, L2 = 0.8
        w[2:] = 1.0
    _, l1 = L1NormPruner(make_model_with(model), [{'sparsity': 0.1, 'op_names': ['conv1']}]).compress()
    assert kept_rows(l1['conv1']['weight']) == 9 and l1['conv1']['weight'][1].sum() == 0
    _, l2 = L2NormPruner(make_model_with(model), [{'sparsity': 0.1, 'op_names': ['conv1']}]).compress()
    assert l2['conv1']['weight'][0].sum() == 0 and l2['conv1']['weight'][1].sum() != 0


def make_model_with(model):
    clone = make_model()
    clone.load_state_dict(model.state_dict())
    return clone


def test_fpgm_prunes_the_filter_nearest_the_median():
    model = nn.Sequential(nn.Linear(2, 5))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0., 0.], [1., 0.], [0., 1.], [-1., 0.], [0., -1.]]))
    _, masks = FPGMPruner(model, [{'sparsity': 0.2, 'op_types': ['Linear']}]).compress()
    assert masks['0']['weight'][:, 0].tolist() == [0, 1, 1, 1, 1]


def test_unwrap_and_show_pruned_weights():
    model = make_model()
    pruner = L1NormPruner(model, [{'sparsity': 0.5, 'op_types': ['Conv2d']}])
    pruner.compress()
    assert pruner.show_pruned_weights() == ['simulated prune conv1 remain/total: 5/10',
                                            'simulated prune conv2 remain/total: 10/20']
    pruner._unwrap_model()
    assert isinstance(model.conv1, nn.Conv2d)
    assert kept_rows(model.conv1.weight.detach()) == 5  # pruned weights stay zero after unwrapping


def test_slim_global_mode_total_and_max_sparsity():
    model = make_model()
    with torch.no_grad():  # bn1 channels small, bn2 channels large: global ranking prefers bn1
        model.bn1.weight.copy_(torch.linspace(0.01, 0.1, 10))
        model.bn2.weight.copy_(torch.linspace(1, 2, 20))
    _, masks = SlimPruner(model, [{'total_sparsity': 0.4, 'max_sparsity_per_layer': 0.7, 'op_types': ['BatchNorm2d']}],
                          training_epochs=1, scale=0.0, **{**training_args(model),
                                                          'optimizer': torch.optim.SGD(model.parameters(), lr=0.0)}).compress()
    pruned = {n: int((m['weight'] == 0).sum()) for n, m in masks.items()}
    assert pruned['bn1'] + pruned['bn2'] == int(30 * 0.4)
    assert pruned['bn1'] == 7  # capped by max_sparsity_per_layer
    assert pruned['bn2'] == 5
    assert torch.equal(masks['bn1']['bias'], masks['bn1']['weight'])


def test_slim_trains_with_l1_penalty_and_normal_mode():
    gammas = {}
    for scale in (0.0, 0.5):
        model = make_model()
        args = training_args(model)
        _, masks = SlimPruner(model, [{'sparsity': 0.5, 'op_types': ['BatchNorm2d']}], training_epochs=2,
                              scale=scale, mode='normal', **args).compress()
        assert int((masks['bn1']['weight'] == 0).sum()) == 5 and int((masks['bn2']['weight'] == 0).sum()) == 10
        assert 'step' not in vars(args['optimizer'])  # the patched step is removed again
        model.bn2.module.weight.data.mul_(0)  # noqa: keeps the comparison on bn1 only
        gammas[scale] = model.bn1.module.weight.detach().abs().sum()
    assert gammas[0.5] < gammas[0.0]  # the L1 penalty shrank the scaling factors


@pytest.mark.parametrize('pruner_cls', [ActivationAPoZRankPruner, ActivationMeanRankPruner])
def test_activation_pruners(pruner_cls):
    model = make_model()
    with torch.no_grad():  # conv1 filter 3 always gives negative output → relu zero: APoZ 1, mean 0
        model.conv1.weight[3].zero_()
        model.conv1.bias[3] = -5.0
    calls = []

    def counting_trainer(model, optimizer, criterion):
        calls.append(1)
        trainer(model, optimizer, criterion)

    pruner = pruner_cls(model, [{'sparsity': 0.1, 'op_types': ['Conv2d']}], counting_trainer,
                        torch.optim.SGD(model.parameters(), lr=0.0), nn.CrossEntropyLoss(), training_batches=6)
    _, masks = pruner.compress()
    assert len(calls) == 2  # 4 batches per epoch: a second epoch, stopped after 2 more batches
    assert masks['conv1']['weight'][3].sum() == 0 and kept_rows(masks['conv1']['weight']) == 9
    assert kept_rows(masks['conv2']['weight']) == 18


def test_taylor_fo_normal_and_global():
    model = make_model()
    _, masks = TaylorFOWeightPruner(model, [{'sparsity': 0.5, 'op_types': ['Conv2d']}],
                                    training_batches=3, **training_args(model)).compress()
    assert kept_rows(masks['conv1']['weight']) == 5 and kept_rows(masks['conv2']['weight']) == 10
    model = make_model()
    _, masks = TaylorFOWeightPruner(model, [{'total_sparsity': 0.5, 'op_types': ['Conv2d']}], mode='global',
                                    training_batches=3, **training_args(model)).compress()
    total = sum(m['weight'].numel() for m in masks.values())
    pruned = sum(int((m['weight'] == 0).sum()) for m in masks.values())
    assert total * 0.5 <= pruned < total * 0.5 + 90  # at most one more filter (of conv2: 90 weights)


def test_taylor_fo_trainer_without_batches_is_an_error():
    model = make_model()
    pruner = TaylorFOWeightPruner(model, [{'sparsity': 0.5, 'op_types': ['Conv2d']}], lambda m, o, c: None,
                                  torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), training_batches=2)
    with pytest.raises(ValueError, match='^trainer: ran no batch'):
        pruner.compress()


def test_admm_pruner_reaches_sparsity():
    model = make_model()
    _, masks = ADMMPruner(model, [{'sparsity': 0.6, 'op_types': ['Conv2d'], 'rho': 0.01}], iterations=2,
                          training_epochs=1, **training_args(model)).compress()
    for name in ('conv1', 'conv2'):
        w = masks[name]['weight']
        assert int((w == 0).sum()) == int(w.numel() * 0.6 + 1e-6)


def test_exclude_and_override():
    model = make_model()
    _, masks = L1NormPruner(model, [{'sparsity': 0.5, 'op_types': ['Conv2d', 'Linear']},
                                    {'exclude': True, 'op_names': ['fc2']},
                                    {'sparsity': 0.2, 'op_names': ['conv1']}]).compress()
    assert set(masks) == {'conv1', 'conv2', 'fc1'}
    assert kept_rows(masks['conv1']['weight']) == 8


@pytest.mark.parametrize('config, message', [
    ([{'sparsity': 1.2, 'op_types': ['Conv2d']}], r"^config_list\[0\]\.sparsity: must be a number in \[0, 1\)"),
    ([{'sparsity': 0.5}], r'^config_list\[0\]: needs op_types or op_names$'),
    ([{'sparsity': 0.5, 'op_types': ['BatchNorm2d']}], r"^config_list\[0\]\.op_types: 'BatchNorm2d' is not supported by L1NormPruner"),
    ([{'op_types': ['Conv2d']}], r'^config_list\[0\]: needs one of sparsity, sparsity_per_layer'),
    ([{'sparsity': 0.5, 'sparsity_per_layer': 0.5, 'op_types': ['Conv2d']}], r'^config_list\[0\]: give only one of'),
    ([{'sparsity': 0.5, 'op_types': ['Conv2d']}, {'total_sparsity': 0.5, 'op_types': ['Conv2d']}],
     r"^config_list\[1\]: unknown key 'total_sparsity' for L1NormPruner"),
    ([{'sparsity': 0.5, 'op_names': ['nope']}], r"^config_list\[0\]\.op_names: no module named 'nope'"),
    ([{'sparsity': 0.5, 'op_names': ['bn1']}], r"^config_list\[0\]\.op_names: 'bn1' is a BatchNorm2d"),
    ([{'sparsity': 0.5, 'op_types': 'Conv2d'}], r'^config_list\[0\]\.op_types: must be a non-empty list of strings'),
    ({'sparsity': 0.5}, r'^config_list: must be a list of dicts'),
])
def test_config_errors_are_one_line(config, message):
    with pytest.raises(ValueError, match=message) as info:
        L1NormPruner(make_model(), config)
    assert '\n' not in str(info.value)


def test_constructor_argument_errors():
    model = make_model()
    with pytest.raises(ValueError, match="^mode: 'global' is not supported by L1NormPruner; allowed: normal, dependency_aware$"):
        L1NormPruner(model, [{'sparsity': 0.5, 'op_types': ['Conv2d']}], mode='global')
    with pytest.raises(ValueError, match='^dummy_input: required'):
        L1NormPruner(model, [{'sparsity': 0.5, 'op_types': ['Conv2d']}], mode='dependency_aware')
    with pytest.raises(ValueError, match="^activation: 'gelu' is not supported"):
        ActivationAPoZRankPruner(model, [{'sparsity': 0.5, 'op_types': ['Conv2d']}], training_batches=1,
                                 activation='gelu', **training_args(model))
    with pytest.raises(ValueError, match='^training_epochs: must be a positive integer'):
        SlimPruner(model, [{'sparsity': 0.5, 'op_types': ['BatchNorm2d']}], training_epochs=0, **training_args(model))


def _build(name, model):
    config = [{'sparsity': 0.5, 'op_types': ['BatchNorm2d' if name == 'slim' else 'Conv2d']}]
    args = training_args(model)
    return {
        'level': lambda: LevelPruner(model, config),
        'l1': lambda: L1NormPruner(model, config),
        'l2': lambda: L2NormPruner(model, config),
        'fpgm': lambda: FPGMPruner(model, config),
        'slim': lambda: SlimPruner(model, config, training_epochs=1, **args),
        'apoz': lambda: ActivationAPoZRankPruner(model, config, training_batches=2, **args),
        'mean': lambda: ActivationMeanRankPruner(model, config, training_batches=2, **args),
        'taylor': lambda: TaylorFOWeightPruner(model, config, training_batches=2, **args),
        'admm': lambda: ADMMPruner(model, config, iterations=1, training_epochs=1, **args),
    }[name]()


@pytest.mark.parametrize('name', ['level', 'l1', 'l2', 'fpgm', 'slim', 'apoz', 'mean', 'taylor', 'admm'])
def test_every_pruner_masks_are_binary_and_applied_in_forward(name, tmp_path):
    model = make_model()
    pruner = _build(name, model)
    masked, masks = pruner.compress()
    x = torch.randn(3, 1, 8, 8)
    model.eval()
    out = masked(x)
    for layer, mask in masks.items():
        wrapper = getattr(model, layer)
        assert isinstance(wrapper, PrunerModuleWrapper)
        assert mask['weight'].shape == wrapper.module.weight.shape
        assert set(mask['weight'].unique().tolist()) <= {0.0, 1.0} and (mask['weight'] == 0).any()
        assert torch.all(wrapper.module.weight[mask['weight'] == 0] == 0)
    pruner.export_model(str(tmp_path / 'model.pth'), str(tmp_path / 'mask.pth'))
    assert isinstance(getattr(model, next(iter(masks))), PrunerModuleWrapper)  # re-wrapped after export
    pruner._unwrap_model()
    plain = make_model()
    plain.load_state_dict(torch.load(tmp_path / 'model.pth'))  # exported state dict has the original keys
    plain.eval()
    assert torch.allclose(plain(x), out, atol=1e-6)
    saved = torch.load(tmp_path / 'mask.pth')
    assert set(saved) == set(masks) and all(torch.equal(saved[n]['weight'], masks[n]['weight']) for n in masks)
