"""AMCPruner (v1): FLOPs budget met (checked after ModelSpeedup), DDPG agent learning, reconstruction,
layer selection on residual / depth-wise graphs, output files and one-line errors."""
import json
import math

import pytest
import torch
from torch import nn

from nni.algorithms.compression.pytorch.pruning import AMCPruner
from nni.algorithms.compression.pytorch.pruning.amc_ddpg import DDPGAgent, truncated_normal
from nni.compression.pytorch import ModelSpeedup
from nni.compression.pytorch.utils.counter import count_flops_params
from nni.retiarii.models import DigitsCNN, digits_cnn


def net() -> DigitsCNN:
    """conv1(1->16)-bn1 -> conv2(16->32)-bn2 -> maxpool -> fc1(512->32) -> fc2(32->10) (zoo digits CNN)."""
    return digits_cnn(10, widths=(16, 32), hidden=32, batch_norm=True)


def _data():
    # a learnable synthetic task: the class is the quadrant/strip of the brightest 2x2 patch
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(320, 1, 8, 8, generator=gen) * 0.3
    y = torch.randint(0, 10, (320,), generator=gen)
    for i in range(320):
        r, c = divmod(int(y[i]), 4)
        x[i, 0, 2 * r:2 * r + 2, 2 * c:2 * c + 2] += 1.0
    return x, y


X, Y = _data()
VAL = [(X[256 + i:256 + i + 32], Y[256 + i:256 + i + 32]) for i in range(0, 64, 32)]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # tiny tensors: with several intra-op threads on a busy 2-core machine torch is ~40x slower
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def evaluator(loader, model):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += int((model(x).argmax(1) == y).sum())
            total += len(y)
    return 100.0 * correct / total


@pytest.fixture(scope="module")
def trained_state():
    torch.manual_seed(0)
    model = net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(3):
        for i in range(0, 256, 32):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(X[i:i + 32]), Y[i:i + 32]).backward()
            optimizer.step()
    return model.state_dict()


def trained(state):
    model = net()
    model.load_state_dict(state)
    return model


SMALL = dict(channel_round=2, warmup=3, train_episode=6, bsize=8, hidden1=16, hidden2=16, rmsize=20,
             n_calibration_batches=2, n_points_per_layer=4, seed=0)


def test_amc_meets_flops_budget_learns_and_exports(trained_state, tmp_path):
    model = trained(trained_state)
    assert evaluator(VAL, model) > 60
    pruner = AMCPruner(model, [{"op_types": ["Conv2d", "Linear"]}], evaluator, VAL, flops_ratio=0.5,
                       output_dir=str(tmp_path), suffix="run1", **SMALL)
    # fc2 is the output layer: its channels are the classes, so it is never acted on
    assert [layer.name for layer in pruner.layers] == ["conv1", "conv2", "fc1"]
    original = count_flops_params(net(), (1, 1, 8, 8), verbose=False)[0]
    assert pruner.original_flops == original
    pruner.compress()

    # every episode stays within the budget; the agent trained after warmup on a filled memory
    assert len(pruner.history) == 6
    assert all(row["flops"] <= 0.5 * original for row in pruner.history)
    assert len(pruner.agent.memory) == 6 * 3
    assert pruner.agent.updates == (6 - 3) * 3
    assert math.isfinite(pruner.agent.last_actor_loss) and math.isfinite(pruner.agent.last_critic_loss)
    best = pruner.best
    assert best["reward"] == max(row["reward"] for row in pruner.history)
    assert best["reward"] == pytest.approx(best["accuracy"] * 0.01)

    # the model carries the best episode: same accuracy, filter masks with the kept channel counts
    assert evaluator(VAL, model) == pytest.approx(best["accuracy"])
    masks = pruner.get_masks()
    assert set(masks) == {"conv1", "conv2", "fc1", "fc2"}
    for name, entry in masks.items():
        rows = entry["weight"].reshape(entry["weight"].shape[0], -1)
        assert torch.all((rows == 0).all(1) | (rows == 1).all(1))
        kept = rows[:, 0]
        assert torch.equal(entry["bias"], kept)
        assert int(kept.sum()) == best["kept"].get(name, rows.shape[0])
        if name in best["kept"]:
            assert best["kept"][name] % 2 == 0 or best["kept"][name] == rows.shape[0]

    # export, reload, speed up: real FLOPs equal the pruner's count, within the budget, same outputs
    pruner.export_model(str(tmp_path / "model.pth"), str(tmp_path / "mask.pth"))
    fresh = net()
    fresh.load_state_dict(torch.load(tmp_path / "model.pth"))
    fresh.eval()
    expected = fresh(X[:16])
    ModelSpeedup(fresh, X[:2], str(tmp_path / "mask.pth")).speedup_model()
    assert torch.allclose(fresh(X[:16]), expected, atol=1e-4)
    assert fresh.fc1.in_features == best["kept"]["conv2"] * 16
    flops = count_flops_params(fresh, (1, 1, 8, 8), verbose=False)[0]
    assert flops == pytest.approx(best["flops"])
    assert flops <= 0.5 * original

    policy = json.loads((tmp_path / "run1" / "best_policy.json").read_text())
    assert policy["kept_channels"] == best["kept"] and policy["flops"] == best["flops"]
    assert (tmp_path / "run1" / "search_history.csv").read_text().count("\n") == 7
    saved = torch.load(tmp_path / "run1" / "best_masks.pth")
    assert torch.equal(saved["conv2"]["weight"], masks["conv2"]["weight"])


def test_action_bound_keeps_the_budget_reachable(trained_state, tmp_path):
    pruner = AMCPruner(trained(trained_state), [{"op_types": ["default"]}], evaluator, VAL, flops_ratio=0.3,
                       lbound=0.2, channel_round=1, n_calibration_batches=0, output_dir=str(tmp_path), seed=0)
    # the greediest policy (keep everything) is cut back so the later layers can still meet the budget
    kept = {}
    for t, layer in enumerate(pruner.layers):
        kept[layer.name] = pruner._constrain(t, 1.0, kept)
    assert pruner.flops(kept) <= 0.3 * pruner.original_flops
    assert kept["conv1"] == 16  # conv1 alone cannot break the budget
    assert kept["conv2"] < 32
    # the last layer takes what is left of the budget: one more channel would break it
    assert pruner.flops(dict(kept, fc1=kept["fc1"] + 1)) > 0.3 * pruner.original_flops
    # the most frugal policy keeps lbound everywhere (rounded up to channel_round where allowed)
    kept = {}
    for t, layer in enumerate(pruner.layers):
        kept[layer.name] = pruner._constrain(t, 0.0, kept)
    assert kept == {"conv1": 4, "conv2": 7, "fc1": 7}


def test_channel_round_and_lbound(trained_state, tmp_path):
    pruner = AMCPruner(trained(trained_state), [{"op_types": ["Conv2d", "Linear"]}], evaluator, VAL,
                       flops_ratio=0.9, lbound=0.3, channel_round=8, n_calibration_batches=0, output_dir=str(tmp_path))
    assert pruner._constrain(0, 0.4, {}) == 8  # 6.4 channels -> 8
    assert pruner._constrain(0, 0.55, {}) == 16  # 8.8 -> 16
    assert pruner._constrain(0, 0.0, {}) == 8  # clamped to lbound 0.3 (4.8) -> 8


def test_reconstruction_reduces_consumer_error(trained_state, tmp_path):
    model = trained(trained_state)
    pruner = AMCPruner(model, [{"op_types": ["Conv2d", "Linear"]}], evaluator, VAL, flops_ratio=0.9,
                       n_calibration_batches=2, n_points_per_layer=4, output_dir=str(tmp_path), seed=0)
    assert pruner.layers[0].consumers == ["conv2"]
    target = pruner._targets["conv2"]
    assert target.shape == (2 * 32 * 4, 32)  # batches x images x points, conv2's filters
    weight = lambda: model.conv2.module.weight.detach().reshape(32, -1)  # noqa: E731

    kept = {"conv1": 6, "conv2": 32, "fc1": 32}
    pruner._restore()
    pruner._targets, saved = {}, pruner._targets  # masks only
    pruner._apply(kept)
    masked_error = (pruner._features(["conv2"])["conv2"] @ weight().t() - target).pow(2).sum()
    pruner._targets = saved
    pruner._restore()
    pruner._apply(kept)
    rebuilt_error = (pruner._features(["conv2"])["conv2"] @ weight().t() - target).pow(2).sum()
    assert rebuilt_error < 0.5 * masked_error
    # the next episode starts from the original weights again
    pruner._restore()
    assert torch.equal(model.conv2.module.weight, trained_state["conv2.weight"])
    assert torch.all(model.conv1.weight_mask == 1)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.inner = nn.Conv2d(8, 8, 3, padding=1)
        self.outer = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = x + self.outer(torch.relu(self.inner(x)))
        return self.head(x.mean((2, 3)))


class MobileBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.pw1 = nn.Conv2d(3, 16, 1)
        self.bn1 = nn.BatchNorm2d(16)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.bn2 = nn.BatchNorm2d(16)
        self.pw2 = nn.Conv2d(16, 24, 1)
        self.fc = nn.Linear(24, 5)

    def forward(self, x):
        x = torch.relu(self.bn2(self.dw(torch.relu(self.bn1(self.pw1(x))))))
        return self.fc(torch.relu(self.pw2(x)).mean((2, 3)))


def _constant_eval(loader, model):
    return 50.0


def test_residual_graph_acts_only_inside_the_block(tmp_path):
    torch.manual_seed(0)
    loader = [(torch.randn(4, 3, 8, 8), torch.zeros(4))]
    pruner = AMCPruner(Residual(), [{"op_types": ["Conv2d", "Linear"]}], _constant_eval, loader, flops_ratio=0.8,
                       model_type="resnet", n_calibration_batches=1, output_dir=str(tmp_path))
    # stem and outer meet in the add, head is the output: only inner is pruned
    assert [layer.name for layer in pruner.layers] == ["inner"]


def test_depthwise_follows_its_producer_flops_match_speedup(tmp_path):
    torch.manual_seed(0)
    loader = [(torch.randn(4, 3, 8, 8), torch.zeros(4)) for _ in range(2)]
    model = MobileBlock()
    pruner = AMCPruner(model, [{"op_types": ["Conv2d", "Linear"]}], _constant_eval, loader, flops_ratio=0.5,
                       channel_round=4, warmup=2, train_episode=3, bsize=4, hidden1=8, hidden2=8,
                       n_calibration_batches=1, n_points_per_layer=3, output_dir=str(tmp_path), seed=1)
    assert [layer.name for layer in pruner.layers] == ["pw1", "pw2"]
    assert pruner.layers[0].consumers == []  # pw2 reads pw1's channels through the depth-wise conv
    pruner.compress()
    pruner._unwrap_model()
    masks = pruner.get_masks()
    ModelSpeedup(model, loader[0][0], masks).speedup_model()
    assert model.dw.groups == model.dw.out_channels == pruner.best["kept"]["pw1"]
    flops = count_flops_params(model, (1, 3, 8, 8), verbose=False)[0]
    assert flops == pytest.approx(pruner.best["flops"]) and flops <= 0.5 * pruner.original_flops


def test_ddpg_agent_moves_towards_the_best_action():
    torch.manual_seed(0)
    agent = DDPGAgent(3, 32, 32, lr_a=1e-3, lr_c=1e-2, discount=1.0, tau=0.05, bsize=32, memory_size=200, seed=0)
    state = torch.tensor([0.1, 0.5, 0.9])
    gen = torch.Generator().manual_seed(1)
    for _ in range(200):
        action = float(torch.rand((), generator=gen))
        agent.observe(state, action, -(action - 0.8) ** 2, state, True)
    before = abs(agent.select_action(state) - 0.8)
    for _ in range(60):
        agent.update_policy()
    after = abs(agent.select_action(state) - 0.8)
    assert after < before / 2
    assert len(agent.memory) == 200 and agent.updates == 60


def test_truncated_normal_stays_in_bounds():
    gen = torch.Generator().manual_seed(0)
    samples = [truncated_normal(0.9, 0.5, 0.2, 1.0, gen) for _ in range(200)]
    assert all(0.2 <= s <= 1.0 for s in samples)
    assert 0.6 < sum(samples) / len(samples) < 0.8  # the mass above 1.0 is cut off, not clipped onto 1.0
    assert truncated_normal(0.5, 0.0, 0.2, 1.0, gen) == 0.5


@pytest.mark.parametrize("config_list, kwargs, message", [
    ([{"sparsity": 0.5, "op_types": ["Conv2d"]}], {}, "config_list[0] has key 'sparsity'"),
    ([{"op_types": ["BatchNorm2d"]}], {}, "config_list[0]['op_types']"),
    ([{"op_names": ["conv1"], "op_types": "Conv2d"}], {}, "config_list[0]['op_types']"),
    ([{"op_types": ["Conv2d"]}], {"flops_ratio": 0.01}, "flops_ratio=0.01 cannot be reached"),
    ([{"op_types": ["Conv2d"]}], {"flops_ratio": 1.5}, "flops_ratio must be <= 1"),
    ([{"op_types": ["Conv2d"]}], {"reward": "acc"}, "reward must be one of"),
    ([{"op_types": ["Conv2d"]}], {"lbound": 0.8, "rbound": 0.5}, "lbound (0.8) must not exceed rbound"),
    ([{"op_types": ["Conv2d"]}], {"model_type": "vgg"}, "model_type must be one of"),
    ([{"op_types": ["Conv2d"]}], {"warmup": -1}, "warmup must be an integer >= 0"),
    ([{"op_types": ["Conv2d"]}], {"max_episode_length": 1}, "max_episode_length=1 is shorter than the 2 layers"),
    ([{"op_names": ["fc2"]}], {}, "AMCPruner found no layer to prune"),
])
def test_errors_are_one_line(config_list, kwargs, message, tmp_path):
    with pytest.raises(ValueError) as info:
        AMCPruner(net(), config_list, evaluator, VAL, output_dir=str(tmp_path), **kwargs)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
