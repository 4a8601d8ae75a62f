"""v1 search pruners: NetAdapt, SimulatedAnnealing, AutoCompress."""
import csv
import json
import random

import pytest
import torch
from torch import nn

from nni.algorithms.compression.pytorch.pruning import AutoCompressPruner, NetAdaptPruner, SimulatedAnnealingPruner
from nni.compression.pytorch.utils.config_validation import ConfigListError


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3)
        self.conv2 = nn.Conv2d(8, 16, 3)
        self.conv3 = nn.Conv2d(16, 16, 3)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        x = torch.relu(self.conv3(x))
        return self.fc(x.mean(dim=(2, 3)))


CONVS = ("conv1", "conv2", "conv3")
X = torch.randn(16, 1, 9, 9, generator=torch.Generator().manual_seed(1))
Y = torch.randint(0, 4, (16,), generator=torch.Generator().manual_seed(2))


@pytest.fixture(autouse=True)
def _one_thread_no_mkldnn():
    # on the shared, loaded CI CPUs these tiny convs are ~15x slower with 2 threads than with one,
    # and oneDNN under no_grad slower still; the native single-thread kernels give the same results
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.backends.mkldnn.flags(enabled=False):
            yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def model():
    torch.manual_seed(0)
    random.seed(0)
    return TinyCNN()


def weight_sparsity(model, names=CONVS):
    """Fraction of the named layers' weights that are zero (wrapped or not)."""
    zeros = total = 0
    for name in names:
        module = model.get_submodule(name)
        weight = getattr(module, "module", module).weight
        zeros += int((weight == 0).sum())
        total += weight.numel()
    return zeros / total


def layer_sparsity(pruner):
    return {w.name: 1 - w.weight_mask.mean().item() for w in pruner.get_modules_wrapper()}


def neg_loss(model):
    with torch.no_grad():
        return -nn.functional.cross_entropy(model(X), Y).item()


def trainer(model, optimizer, criterion, epoch):
    model.train()
    for i in range(0, 16, 8):
        optimizer.zero_grad()
        criterion(model(X[i:i + 8]), Y[i:i + 8]).backward()
        optimizer.step()


def test_netadapt_prunes_the_least_harmful_layer_each_iteration(model, tmp_path):
    # the evaluator punishes pruning conv2 more than conv3: NetAdapt must take conv3 every time
    def evaluator(m):
        s = {name: 1 - m.get_submodule(name).weight_mask.mean().item() if hasattr(m.get_submodule(name), "weight_mask")
             else 0.0 for name in CONVS}
        return -(10 * s["conv2"] + s["conv3"])

    tuned = []
    pruner = NetAdaptPruner(model, [{"sparsity": 0.3, "op_types": ["Conv2d"]}], short_term_fine_tuner=tuned.append,
                            evaluator=evaluator, base_algo="l1", sparsity_per_iteration=0.05,
                            experiment_data_dir=str(tmp_path))
    pruner.compress()
    per_layer = layer_sparsity(pruner)
    assert per_layer["conv3"] > 0 and per_layer["conv2"] == 0
    # conv1 (72 of 3528 weights) cannot free a 5 % step, so it is never a candidate
    assert per_layer["conv1"] == 0
    # each step of 176 weights takes 2 filters (144 weights each) of conv3: 4 steps
    assert weight_sparsity(model) == pytest.approx(8 * 144 / 3528)
    for wrapper in pruner.get_modules_wrapper():
        rows = wrapper.weight_mask.reshape(wrapper.weight_mask.size(0), -1)
        assert torch.all((rows == 0).all(1) | (rows == 1).all(1))
    with open(tmp_path / "search_history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(tuned) == len(rows) == 8  # 4 iterations x 2 candidates, each fine-tuned
    assert {r["layer"] for r in rows} == {"conv2", "conv3"}
    chosen = [r["layer"] for r in rows if r["chosen"] == "True"]
    assert chosen == ["conv3"] * 4  # one layer per iteration
    config_list = json.loads((tmp_path / "config_list.json").read_text())
    assert [c["op_names"] for c in config_list] == [["conv3"]]
    assert int(16 * config_list[0]["sparsity"]) == 8
    result = json.loads((tmp_path / "search_result.json").read_text())
    assert result["sparsity"]["target"] == 0.3 and result["sparsity"]["actual"] >= 0.3


def test_netadapt_keeps_fine_tuned_weights_and_masks_level(model, tmp_path):
    def fine_tuner(m):
        optimizer = torch.optim.SGD(m.parameters(), lr=0.05)
        trainer(m, optimizer, nn.CrossEntropyLoss(), 0)

    pruner = NetAdaptPruner(model, [{"sparsity": 0.5, "op_types": ["Conv2d", "Linear"]}], fine_tuner, neg_loss,
                            base_algo="level", sparsity_per_iteration=0.2, experiment_data_dir=str(tmp_path))
    pruned = pruner.compress()
    names = CONVS + ("fc",)
    assert weight_sparsity(pruned, names) == pytest.approx(0.5, abs=1e-3)
    # the model's weights are the fine-tuned ones, not the original ones
    torch.manual_seed(0)
    assert not torch.equal(TinyCNN().fc.bias, pruned.fc.module.bias)
    rows = list(csv.DictReader(open(tmp_path / "search_history.csv")))
    assert max(int(r["iteration"]) for r in rows) == 3  # 0.2 + 0.2 + 0.1


def test_simulated_annealing_keeps_overall_sparsity_with_differing_layers(model, tmp_path):
    calls = []

    def evaluator(m):
        calls.append(1)
        return neg_loss(m)

    pruner = SimulatedAnnealingPruner(model, [{"sparsity": 0.5, "op_types": ["Conv2d"]}], evaluator, base_algo="level",
                                      experiment_data_dir=str(tmp_path))
    pruned = pruner.compress()
    per_layer = layer_sparsity(pruner)
    assert weight_sparsity(pruned) == pytest.approx(0.5, abs=0.01)
    assert len({round(s, 2) for s in per_layer.values()}) == 3  # the layers' sparsities differ
    assert per_layer["conv3"] > per_layer["conv1"]  # the larger layer prunes more
    # 100 -> 20 at 0.9: 16 temperatures, each evaluating at least one perturbation, plus init and original
    assert len(calls) >= 18
    rows = list(csv.DictReader(open(tmp_path / "search_history.csv")))
    assert len(rows) == len(calls) - 1
    best = max(float(r["performance"]) for r in rows)
    result = json.loads((tmp_path / "search_result.json").read_text())
    assert result["performance"]["pruned"] == pytest.approx(best)
    assert result["performance"]["pruned"] == pytest.approx(neg_loss(pruned))
    config_list = json.loads((tmp_path / "config_list.json").read_text())
    assert {c["op_names"][0]: c["sparsity"] for c in config_list} == pytest.approx(per_layer, abs=1 / 72)


def test_simulated_annealing_minimize_and_return_config_list(model, tmp_path):
    pruner = SimulatedAnnealingPruner(model, [{"sparsity": 0.4, "op_types": ["Conv2d"]}],
                                      lambda m: -neg_loss(m), optimize_mode="minimize", base_algo="l2",
                                      start_temperature=10, stop_temperature=5, experiment_data_dir=str(tmp_path))
    config_list = pruner.compress(return_config_list=True)
    assert [c["op_names"][0] for c in config_list] == list(CONVS)
    sizes = {w.name: w.module.weight.numel() for w in pruner.get_modules_wrapper()}
    nominal = sum(c["sparsity"] * sizes[c["op_names"][0]] for c in config_list) / sum(sizes.values())
    assert nominal == pytest.approx(0.4, abs=1e-6)
    # filter granularity: floor(filters * sparsity) filters per layer, so a little under the nominal split
    assert 0.4 - 0.1 < weight_sparsity(model) <= 0.4
    result = json.loads((tmp_path / "search_result.json").read_text())
    assert result["performance"]["pruned"] == pytest.approx(-neg_loss(model), rel=1e-5)


def test_auto_compress_ends_at_configured_sparsity(model, tmp_path):
    pruner = AutoCompressPruner(model, [{"sparsity": 0.5, "op_types": ["Conv2d"]}], trainer, neg_loss,
                                dummy_input=X[:1], num_iterations=2, base_algo="level", start_temperature=10,
                                stop_temperature=5, cool_down_rate=0.6, admm_num_iterations=2,
                                admm_epochs_per_iteration=1,
                                experiment_data_dir=str(tmp_path))
    before = {n: model.get_submodule(n).module.weight.detach().clone() for n in CONVS}
    pruned = pruner.compress()
    assert weight_sparsity(pruned) == pytest.approx(0.5, abs=0.01)
    per_layer = layer_sparsity(pruner)
    assert len({round(s, 2) for s in per_layer.values()}) > 1
    # ADMM trained the kept weights
    assert any(not torch.equal(before[n][pruned.get_submodule(n).weight_mask.bool()],
                               pruned.get_submodule(n).module.weight[pruned.get_submodule(n).weight_mask.bool()])
               for n in CONVS)
    rows = list(csv.DictReader(open(tmp_path / "search_history.csv")))
    assert {r["round"] for r in rows} == {"1", "2"}
    result = json.loads((tmp_path / "search_result.json").read_text())
    assert result["sparsity"]["actual"] == pytest.approx(0.5, abs=0.01)
    pruner.export_model(str(tmp_path / "model.pth"), str(tmp_path / "mask.pth"))
    state = torch.load(tmp_path / "model.pth")
    assert sum(int((state[f"{n}.weight"] == 0).sum()) for n in CONVS) / sum(state[f"{n}.weight"].numel()
                                                                             for n in CONVS) >= 0.49


def test_auto_compress_filter_rounds_keep_earlier_masks(model, tmp_path):
    masks_seen = []
    real_admm = AutoCompressPruner._admm

    def spy(self, current, sparsities, masks):
        out = real_admm(self, current, sparsities, masks)
        masks_seen.append(out[1])
        return out

    AutoCompressPruner._admm = spy
    try:
        pruner = AutoCompressPruner(model, [{"sparsity": 0.6, "op_types": ["Conv2d"]}], trainer, neg_loss,
                                    dummy_input=X[:1], num_iterations=2, base_algo="l1", start_temperature=10,
                                    stop_temperature=5, cool_down_rate=0.6, admm_num_iterations=1,
                                    admm_training_epochs=1, experiment_data_dir=str(tmp_path))
        pruner.compress()
    finally:
        AutoCompressPruner._admm = real_admm
    first, second = masks_seen
    for name, entry in first.items():
        assert torch.all(second[name]["weight"][entry["weight"] == 0] == 0)  # pruned stays pruned
    assert 0.6 - 0.15 < weight_sparsity(model) <= 0.6 + 1e-9


@pytest.mark.parametrize("cls, kwargs", [
    (NetAdaptPruner, {"short_term_fine_tuner": lambda m: None, "evaluator": neg_loss}),
    (SimulatedAnnealingPruner, {"evaluator": neg_loss}),
    (AutoCompressPruner, {"trainer": trainer, "evaluator": neg_loss, "dummy_input": X[:1]}),
])
def test_config_errors_are_one_line(model, cls, kwargs):
    with pytest.raises(ConfigListError, match=r"config_list\[1\]\['sparsity'\].*repeat") as err:
        cls(model, [{"sparsity": 0.5, "op_types": ["Conv2d"]}, {"sparsity": 0.3, "op_names": ["conv1"]}], **kwargs)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigListError, match=r"config_list\[0\]\['op_types'\].*Conv2d.*'Linear'"):
        cls(TinyCNN(), [{"sparsity": 0.5, "op_types": ["Linear"]}], **kwargs)
    with pytest.raises(ConfigListError, match=r"config_list\[0\] has unknown key 'prune_ratio'"):
        cls(TinyCNN(), [{"prune_ratio": 0.5, "op_types": ["Conv2d"]}], **kwargs)
    with pytest.raises(ValueError, match="base_algo must be one of"):
        cls(TinyCNN(), [{"sparsity": 0.5, "op_types": ["Conv2d"]}], base_algo="taylorfo", **kwargs)
