"""The v1 pruners reach their configured sparsity per layer with the masks they promise."""
import pytest
import torch
from torch import nn

from nni.algorithms.compression.pytorch.pruning import (
    ActivationAPoZRankFilterPruner, ActivationMeanRankFilterPruner, AGPPruner, FPGMPruner, L1FilterPruner,
    L2FilterPruner, LevelPruner, SlimPruner, TaylorFOWeightFilterPruner,
)
from nni.retiarii.models import DigitsCNN, digits_cnn


def tiny_cnn() -> DigitsCNN:
    """conv1(1->10)-bn1 -> conv2(10->7)-bn2 -> fc(112->5), 8x8 inputs (the model zoo's digits CNN)."""
    return digits_cnn(5, widths=(10, 7), hidden=None, batch_norm=True, padding=0, pool=False)


X = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))
Y = torch.randint(0, 5, (16,), generator=torch.Generator().manual_seed(2))


@pytest.fixture
def model():
    torch.manual_seed(0)
    return tiny_cnn()


def trainer(model, optimizer, criterion, epoch):
    model.train()
    for i in range(0, 16, 4):
        optimizer.zero_grad()
        criterion(model(X[i:i + 4]), Y[i:i + 4]).backward()
        optimizer.step()


def filter_mask_check(wrapper, expected_pruned):
    """Masks zero whole filters and the same channels of the bias; returns the pruned channels."""
    mask = wrapper.weight_mask
    rows = mask.reshape(mask.size(0), -1)
    assert torch.all((rows == 0).all(dim=1) | (rows == 1).all(dim=1)), "mask is not filter-shaped"
    kept = rows[:, 0]
    assert int((kept == 0).sum()) == expected_pruned
    assert torch.equal(wrapper.bias_mask, kept)
    # the weights and biases themselves are zeroed
    assert torch.all(wrapper.module.weight.reshape(mask.size(0), -1)[kept == 0] == 0)
    assert torch.all(wrapper.module.bias[kept == 0] == 0)
    return set(torch.nonzero(kept == 0).flatten().tolist())


def test_level_pruner_prunes_smallest_weights_per_layer(model):
    weights = {n: m.weight.detach().clone() for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    pruner = LevelPruner(model, [{"sparsity": 0.7, "op_types": ["default"]}, {"sparsity": 0.3, "op_names": ["fc"]}])
    pruner.compress()
    for name, target in (("conv1", 0.7), ("conv2", 0.7), ("fc", 0.3)):
        mask = pruner.mask_dict[name]
        assert int((mask == 0).sum()) == int(mask.numel() * target)
        kept_min = weights[name].abs()[mask == 1].min()
        pruned_max = weights[name].abs()[mask == 0].max()
        assert pruned_max <= kept_min


@pytest.mark.parametrize("pruner_cls, score", [
    (L1FilterPruner, lambda w: w.abs().sum(dim=(1, 2, 3))),
    (L2FilterPruner, lambda w: w.pow(2).sum(dim=(1, 2, 3)).sqrt()),
    (FPGMPruner, lambda w: torch.cdist(w.flatten(1), w.flatten(1)).sum(dim=1)),
])
def test_filter_pruners_prune_lowest_scored_filters(model, pruner_cls, score):
    weights = {"conv1": model.conv1.weight.detach().clone(), "conv2": model.conv2.weight.detach().clone()}
    pruner = pruner_cls(model, [{"sparsity": 0.5, "op_types": ["Conv2d"]}, {"sparsity": 0.3, "op_names": ["conv2"]}])
    pruner.compress()
    wrappers = {w.name: w for w in pruner.get_modules_wrapper()}
    for name, target in (("conv1", 0.5), ("conv2", 0.3)):
        n = weights[name].size(0)
        pruned = filter_mask_check(wrappers[name], int(n * target))  # floor: 10*0.5=5, 7*0.3 -> 2
        expected = set(torch.argsort(score(weights[name]), stable=True)[:int(n * target)].tolist())
        assert pruned == expected


def test_filter_pruner_preserve_round(model):
    from nni.algorithms.compression.pytorch.pruning import OneshotPruner

    pruner = OneshotPruner(model, [{"sparsity": 0.2, "op_names": ["conv1"]}], pruning_algorithm="l1", preserve_round=4)
    pruner.compress()
    # 10 filters at 0.2: 2 pruned -> 8 kept, already a multiple of 4; at 0.35: 3 pruned -> 7 kept -> 8
    assert int((pruner.mask_dict["conv1"][:, 0, 0, 0] == 0).sum()) == 2
    assert pruner.masker.num_to_prune(10, 0.35) == 2 and pruner.masker.num_to_prune(32, 0.2) == 4


def test_slim_pruner_prunes_bn_channels_with_smallest_gamma(model):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    pruner = SlimPruner(model, [{"sparsity": 0.4, "op_types": ["BatchNorm2d"]}], optimizer, trainer,
                        nn.CrossEntropyLoss(), sparsifying_training_epochs=2, scale=0.01)
    pruner.compress()
    for wrapper, n in zip(pruner.get_modules_wrapper(), (10, 7)):
        mask = wrapper.weight_mask
        assert int((mask == 0).sum()) == int(n * 0.4)
        assert torch.equal(wrapper.bias_mask, mask)
        gamma = wrapper.module.weight.detach()
        assert torch.all(gamma[mask == 0] == 0) and torch.all(wrapper.module.bias[mask == 0] == 0)
    with pytest.raises(ValueError, match="SlimPruner prunes only"):
        SlimPruner(tiny_cnn(), [{"sparsity": 0.4, "op_types": ["Conv2d"]}], optimizer, trainer, nn.CrossEntropyLoss())


def test_slim_penalty_shrinks_gammas(model):
    gammas = model.bn1.weight.detach().abs().sum().item()
    optimizer = torch.optim.SGD([model.bn1.weight], lr=0.1)  # the task loss is 0: only the penalty moves gamma
    pruner = SlimPruner(model, [{"sparsity": 0.1, "op_names": ["bn1"]}], optimizer,
                        lambda m, o, c, e: (o.zero_grad(), m.bn1.module.weight.sum().mul(0).backward(), o.step()),
                        nn.CrossEntropyLoss(), sparsifying_training_epochs=3, scale=0.5)
    pruner.compress()
    # three steps of lr 0.1 * scale 0.5 * sign(gamma) toward zero on every gamma (all start at 1);
    # then one of the 10 channels is pruned
    gamma = model.bn1.module.weight.detach()
    assert gammas == 10 and int((gamma == 0).sum()) == 1
    assert torch.allclose(gamma[gamma != 0], torch.full((9,), 1 - 3 * 0.1 * 0.5))


def test_taylor_fo_ranks_by_gradient_times_weight(model):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: weights stay, gradients are recorded
    reference = tiny_cnn()
    reference.load_state_dict(model.state_dict())
    reference.train()
    nn.CrossEntropyLoss()(reference(X[:4]), Y[:4]).backward()
    w, g = reference.conv1.weight, reference.conv1.weight.grad
    expected = set(torch.argsort((w * g).pow(2).sum(dim=(1, 2, 3)), stable=True)[:5].tolist())

    pruner = TaylorFOWeightFilterPruner(model, [{"sparsity": 0.5, "op_types": ["Conv2d"]}], optimizer, trainer,
                                        nn.CrossEntropyLoss(), sparsifying_training_batches=1)
    pruner.compress()
    wrappers = {w.name: w for w in pruner.get_modules_wrapper()}
    assert filter_mask_check(wrappers["conv1"], 5) == expected
    filter_mask_check(wrappers["conv2"], 3)


def test_taylor_fo_global_sort_prunes_total_count(model):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    pruner = TaylorFOWeightFilterPruner(model, [{"sparsity": 0.5, "op_types": ["Conv2d"]}], optimizer, trainer,
                                        nn.CrossEntropyLoss(), global_sort=True)
    pruner.compress()
    pruned = [int((w.weight_mask[:, 0, 0, 0] == 0).sum()) for w in pruner.get_modules_wrapper()]
    assert sum(pruned) == 5 + 3 and all(p < n for p, n in zip(pruned, (10, 7)))


@pytest.mark.parametrize("pruner_cls", [ActivationAPoZRankFilterPruner, ActivationMeanRankFilterPruner])
def test_activation_pruners(model, pruner_cls):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    # expected ranking from the first training batch's conv1 output after relu
    with torch.no_grad():
        reference = tiny_cnn()
        reference.load_state_dict(model.state_dict())
        act = torch.relu(reference.conv1(X[:4]))
    apoz = (act == 0).float().mean(dim=(0, 2, 3))
    importance = 1 - apoz if pruner_cls is ActivationAPoZRankFilterPruner else act.mean(dim=(0, 2, 3))
    expected = set(torch.argsort(importance, stable=True)[:5].tolist())
    pruner = pruner_cls(model, [{"sparsity": 0.5, "op_types": ["Conv2d"]}], optimizer, trainer,
                        nn.CrossEntropyLoss(), sparsifying_training_batches=1)
    pruner.compress()
    wrappers = {w.name: w for w in pruner.get_modules_wrapper()}
    assert filter_mask_check(wrappers["conv1"], 5) == expected
    filter_mask_check(wrappers["conv2"], 3)
    with pytest.raises(ValueError, match="activation must be one of"):
        pruner_cls(tiny_cnn(), [{"sparsity": 0.5, "op_types": ["Conv2d"]}], optimizer, trainer, nn.CrossEntropyLoss(),
                   activation="gelu")


def test_training_pruner_needs_its_arguments(model):
    with pytest.raises(ValueError, match="TaylorFOWeightFilterPruner: trainer is required"):
        TaylorFOWeightFilterPruner(model, [{"sparsity": 0.5, "op_types": ["Conv2d"]}], torch.optim.SGD(
            model.parameters(), lr=0.1), None, nn.CrossEntropyLoss())


def test_pruner_without_statistics_says_so(model):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    pruner = TaylorFOWeightFilterPruner(model, [{"sparsity": 0.5, "op_types": ["Conv2d"]}], optimizer,
                                        lambda *args: None, nn.CrossEntropyLoss())
    with pytest.raises(RuntimeError, match=r"no statistics were collected for layers \['conv1'\]"):
        pruner.compress()


def agp_expected(final, t, n):
    return final + (0 - final) * (1 - t / n) ** 3


def test_agp_follows_its_schedule(model):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    n = 4
    pruner = AGPPruner(model, [{"sparsity": 0.8, "op_types": ["default"]}], optimizer, trainer,
                       nn.CrossEntropyLoss(), num_iterations=n, epochs_per_iteration=1)
    previous = {w.name: w.weight_mask.clone() for w in pruner.get_modules_wrapper()}
    for t in range(n + 2):
        pruner.update_epoch(t)
        target = agp_expected(0.8, min(t, n), n)
        assert pruner.compute_target_sparsity({"sparsity": 0.8}) == pytest.approx(target)
        for wrapper in pruner.get_modules_wrapper():
            mask = wrapper.weight_mask
            assert int((mask == 0).sum()) == int(mask.numel() * target), (t, wrapper.name)
            assert torch.all(mask <= previous[wrapper.name])  # pruned weights stay pruned
            previous[wrapper.name] = mask.clone()
        trainer(model, optimizer, nn.CrossEntropyLoss(), t)


def test_agp_compress_trains_and_reaches_final_sparsity(model):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    seen = []

    def counting_trainer(m, o, c, epoch):
        # the schedule moves only between rounds: during round i the layer has s_i
        seen.append((epoch, round(1 - m.conv1.weight_mask.mean().item(), 4)))
        trainer(m, o, c, epoch)

    pruner = AGPPruner(model, [{"sparsity": 0.5, "op_types": ["Conv2d"]}], optimizer, counting_trainer,
                       nn.CrossEntropyLoss(), num_iterations=3, epochs_per_iteration=2, pruning_algorithm="l1")
    pruner.compress()
    assert [e for e, _ in seen] == [0, 1, 2, 3, 4, 5]
    expected = [int(10 * agp_expected(0.5, t, 3)) / 10 for t in (0, 0, 1, 1, 2, 2)]
    assert [s for _, s in seen] == pytest.approx(expected)
    for wrapper, n in zip(pruner.get_modules_wrapper(), (10, 7)):
        filter_mask_check(wrapper, int(n * 0.5))


def test_dependency_aware_needs_dummy_input(model):
    with pytest.raises(ValueError, match="L1FilterPruner: dependency_aware=True needs dummy_input"):
        L1FilterPruner(model, [{"sparsity": 0.5, "op_types": ["Conv2d"]}], dependency_aware=True)


class ResidualNet(nn.Module):
    """conv1 and conv2 outputs meet in an add: they must prune the same channels."""

    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        x = torch.relu(self.conv0(x))
        x = torch.relu(self.conv1(x) + self.conv2(x))
        return self.fc(x.mean(dim=(2, 3)))


def check_dependency_aware(model, sets_found):
    torch.manual_seed(3)
    weights = {n: dict(model.named_modules())[n].weight.detach().clone() for n in ("conv1", "conv2")}
    pruner = L1FilterPruner(model, [{"sparsity": 0.5, "op_types": ["Conv2d"]}, {"sparsity": 0.25, "op_names": ["conv2"]}],
                            dependency_aware=True, dummy_input=torch.randn(1, 1, 6, 6))
    assert any({"conv1", "conv2"} <= s for s in sets_found(pruner))
    pruner.compress()
    wrappers = {w.name: w for w in pruner.get_modules_wrapper()}
    pruned1 = filter_mask_check(wrappers["conv1"], 4)
    pruned2 = filter_mask_check(wrappers["conv2"], 2)
    # common part: the 2 channels (min sparsity 0.25) with the smallest summed L1 norm, in both layers
    l1 = {n: w.abs().sum(dim=(1, 2, 3)) for n, w in weights.items()}
    common = set(torch.argsort(l1["conv1"] + l1["conv2"], stable=True)[:2].tolist())
    assert pruned2 == common and common <= pruned1
    # conv1's 2 extra channels are its own lowest-L1 among the rest
    rest = [c for c in torch.argsort(l1["conv1"], stable=True).tolist() if c not in common][:2]
    assert pruned1 == common | set(rest)


def test_dependency_aware_prunes_common_channels(monkeypatch):
    import sys
    import types

    class FakeChannelDependency:
        def __init__(self, model, dummy_input):
            assert isinstance(model.conv1, nn.Conv2d)  # traced before wrapping
            self.dependency_sets = [{"conv1", "conv2"}, {"conv0"}]

    fake = types.ModuleType("nni.compression.pytorch.utils.shape_dependency")
    fake.ChannelDependency = FakeChannelDependency
    monkeypatch.setitem(sys.modules, fake.__name__, fake)
    check_dependency_aware(ResidualNet(), lambda pruner: pruner.dependency_sets)


def test_dependency_aware_with_channel_dependency_from_the_graph():
    pytest.importorskip("nni.compression.pytorch.utils.shape_dependency")
    check_dependency_aware(ResidualNet(), lambda pruner: pruner.dependency_sets)


def test_dependency_aware_without_channel_dependency_module_says_so(monkeypatch):
    import sys

    import nni.compression.pytorch.utils as utils

    monkeypatch.setitem(sys.modules, "nni.compression.pytorch.utils.shape_dependency", None)
    monkeypatch.delattr(utils, "shape_dependency", raising=False)
    with pytest.raises(RuntimeError, match="FPGMPruner: dependency_aware=True needs .*ChannelDependency"):
        FPGMPruner(ResidualNet(), [{"sparsity": 0.5, "op_types": ["Conv2d"]}], dependency_aware=True,
                   dummy_input=torch.randn(1, 1, 6, 6))


def test_dependency_aware_grouped_conv_prunes_equally_per_group():
    pytest.importorskip("nni.compression.pytorch.utils.shape_dependency")
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
    with torch.no_grad():  # make the 4 weakest filters of conv '0' all fall into its first half
        model[0].weight[:4] *= 0.01
    pruner = L1FilterPruner(model, [{"sparsity": 0.5, "op_types": ["Conv2d"]}], dependency_aware=True,
                            dummy_input=torch.randn(1, 1, 6, 6))
    pruner.compress()
    for wrapper in pruner.get_modules_wrapper():
        pruned = filter_mask_check(wrapper, 4)
        assert len(pruned & {0, 1, 2, 3}) == 2 and len(pruned & {4, 5, 6, 7}) == 2, wrapper.name


def test_lottery_ticket_rounds_and_rewind():
    from nni.algorithms.compression.pytorch.pruning import LotteryTicketPruner

    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(6, 20), nn.ReLU(), nn.Linear(20, 3))
    theta0 = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    pruner = LotteryTicketPruner(model, [{"prune_iterations": 3, "sparsity": 0.8, "op_types": ["default"]}],
                                 optimizer, scheduler)
    pruner.compress()
    assert list(pruner.get_prune_iterations()) == [0, 1, 2, 3]
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    previous = None
    for k in pruner.get_prune_iterations():
        pruner.prune_iteration_start()
        assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)  # scheduler rewound
        assert not optimizer.state  # momentum buffers rewound
        for wrapper, key in ((model[0], "0.weight"), (model[2], "2.weight")):
            mask = wrapper.weight_mask
            assert int((mask == 0).sum()) == int(mask.numel() * (1 - 0.2 ** (k / 3))), (k, key)
            # surviving weights are back at theta_0, pruned ones are zero
            assert torch.equal(wrapper.module.weight, theta0[key] * mask)
            if previous is not None:
                assert torch.all(mask <= previous[key])
        previous = {"0.weight": model[0].weight_mask.clone(), "2.weight": model[2].weight_mask.clone()}
        for _ in range(3):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
            scheduler.step()
    assert int((model[0].weight_mask == 0).sum()) == int(120 * 0.8)
    with pytest.raises(RuntimeError, match="called more than 4 times"):
        pruner.prune_iteration_start()


def test_lottery_ticket_config_errors():
    from nni.algorithms.compression.pytorch.pruning import LotteryTicketPruner

    model = nn.Sequential(nn.Linear(6, 20), nn.ReLU(), nn.Linear(20, 3))
    with pytest.raises(ValueError, match=r"config_list\[0\] needs 'prune_iterations'"):
        LotteryTicketPruner(model, [{"sparsity": 0.8, "op_types": ["Linear"]}])
    with pytest.raises(ValueError, match=r"config_list\[1\]\['prune_iterations'\] is 2, but an earlier entry has 3"):
        LotteryTicketPruner(model, [{"prune_iterations": 3, "sparsity": 0.8, "op_names": ["0"]},
                                    {"prune_iterations": 2, "sparsity": 0.5, "op_names": ["2"]}])


def test_admm_pruner(model):
    from nni.algorithms.compression.pytorch.pruning import ADMMPruner

    calls = []

    def admm_trainer(m, optimizer, criterion, epoch):
        calls.append((epoch, type(optimizer).__name__))
        trainer(m, optimizer, criterion, epoch)

    pruner = ADMMPruner(model, [{"sparsity": 0.5, "op_types": ["Conv2d"]}], admm_trainer, num_iterations=2,
                        epochs_per_iteration=2, row=0.5)
    pruner.compress()
    assert calls == [(0, "Adam"), (1, "Adam"), (2, "Adam"), (3, "Adam")]
    wrappers = {w.name: w for w in pruner.get_modules_wrapper()}
    filter_mask_check(wrappers["conv1"], 5)
    filter_mask_check(wrappers["conv2"], 3)
    # Z is the filter-sparse projection: exactly int(n * sparsity) whole filters are zero in it
    for name, n in (("conv1", 10), ("conv2", 7)):
        z = pruner.Z[name].reshape(n, -1)
        assert sum(bool(torch.all(row == 0)) for row in z) == n // 2

    # the penalty gradient row * (W - Z + U) is added before each step, only while ADMM trains
    weight = wrappers["conv1"].module.weight
    weight.grad = torch.zeros_like(weight)
    pruner._add_admm_gradient()
    assert torch.all(weight.grad == 0)
    pruner._admm_active = True
    pruner._add_admm_gradient()
    expected = 0.5 * (weight.data - pruner.Z["conv1"] + pruner.U["conv1"])
    assert torch.allclose(weight.grad, expected)
    with pytest.raises(ValueError, match="ADMMPruner: base_algo must be one of"):
        ADMMPruner(tiny_cnn(), [{"sparsity": 0.5, "op_types": ["Conv2d"]}], admm_trainer, base_algo="slim")
