"""fixed_arch round trips: sample -> fixed_arch(dict | JSON file) -> plain model (spec §13 item 2)."""
import json
import logging
import random

import pytest
import torch

import nni.retiarii.nn.pytorch as nn
from nni.retiarii import Sampler, fixed_arch, label_scope, model_wrapper
from nni.retiarii.space import extract_mutables, instantiate, mutators_for, python_model


@model_wrapper
class Space(nn.Module):
    def __init__(self, in_features=8, classes=3):
        super().__init__()
        hidden = nn.ValueChoice([8, 16, 24], label="hidden")
        self.stem = nn.Linear(in_features, hidden)
        self.op = nn.LayerChoice({"relu": nn.ReLU(), "lin": nn.Linear(hidden, hidden), "tanh": nn.Tanh()}, label="op")
        self.body = nn.Repeat(lambda: nn.Sequential(nn.Linear(hidden, hidden), nn.LayerChoice([nn.ReLU(), nn.Sigmoid()])), (1, 3), label="depth")
        self.skip = nn.InputChoice(2, 1, reduction="sum", label="skip")
        self.cell = nn.Cell([nn.Identity(), nn.Linear(hidden, hidden)], num_nodes=2, num_ops_per_node=2, num_predecessors=2, label="cell")
        self.proj = nn.Linear(nn.ValueChoice([8, 16, 24], label="hidden"), hidden)  # shared by label
        self.mix = nn.InputChoice(3, None, reduction="mean", label="mix")
        self.rate = nn.ValueChoice([0.0, 0.5], label="rate")
        self.head = nn.Linear(hidden, classes)

    def forward(self, x):
        x = self.stem(x)
        y = self.body(self.op(x))
        x = self.skip([x, y])
        c = self.cell([x, y])
        c = c[:, : c.shape[1] // 2]
        x = self.mix([x, y, self.proj(c)])
        x = nn.functional.dropout(x, self.rate(), training=self.training)
        return self.head(x)


class SeededSampler(Sampler):
    def __init__(self, seed):
        self.rng = random.Random(seed)

    def choice(self, candidates, mutator, model, index):
        return self.rng.choice(candidates)


def sample_model(seed):
    space = Space()
    model = python_model(space)
    sampler = SeededSampler(seed)
    for mutator in mutators_for(space):
        model = mutator.bind_sampler(sampler).apply(model)
    return model


def count_parameters(module):
    return sum(p.numel() for p in module.parameters())


def expected_parameters(arch):
    """Parameter count of Space's chosen model, computed from the dict alone."""
    h = arch["hidden"]
    linear = lambda i, o: i * o + o  # noqa: E731
    total = linear(8, h) + linear(h, h)  # stem, proj
    total += linear(h, h) if arch["op"] == "lin" else 0
    total += arch["depth"] * linear(h, h)
    for i in range(2):
        for k in range(2):
            total += linear(h, h) if arch[f"cell/op_{i}_{k}"] == "1" else 0
    return total + linear(h, 3)


def check_matches(net, arch):
    x = torch.randn(5, 8)
    out = net(x)
    assert out.shape == (5, 3)
    assert count_parameters(net) == expected_parameters(arch)
    assert net.stem.out_features == arch["hidden"]
    assert type(net.op).__name__ == {"relu": "ReLU", "lin": "Linear", "tanh": "Tanh"}[arch["op"]]
    assert isinstance(net.body, torch.nn.Sequential) and len(net.body) == arch["depth"]
    assert isinstance(net.skip, nn.ChosenInputs) and net.skip.chosen == arch["skip"]
    assert net.mix.chosen == arch["mix"] and net.mix.reduction == "mean"
    assert net.cell.inputs[1][0].chosen == arch["cell/input_1_0"]
    assert net.rate() == arch["rate"]
    assert not [m for m in net.modules() if isinstance(m, (nn.LayerChoice, nn.InputChoice, nn.Repeat))]
    assert extract_mutables(net) == {}


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_sampled_dict_round_trip(seed):
    model = sample_model(seed)
    arch = model.sample
    assert set(arch) == set(extract_mutables(Space()))
    with fixed_arch(arch):
        net = Space()
    check_matches(net, arch)


def test_json_file_round_trip_gives_the_same_model(tmp_path):
    arch = sample_model(7).sample
    path = tmp_path / "export.json"
    path.write_text(json.dumps(arch))
    with fixed_arch(path):
        from_file = Space()
    with fixed_arch(str(path)):
        from_str_path = Space()
    check_matches(from_file, arch)
    with fixed_arch(arch):
        from_dict = Space()
    from_file.load_state_dict(from_dict.state_dict())
    x = torch.randn(4, 8)
    assert torch.equal(from_file.eval()(x), from_dict.eval()(x))
    assert count_parameters(from_str_path) == count_parameters(from_dict)


def test_same_sample_same_seed_gives_identical_outputs():
    model = sample_model(3)
    x = torch.randn(6, 8)
    outputs = []
    for _ in range(2):
        torch.manual_seed(42)
        net = instantiate(model).eval()
        outputs.append(net(x))
    torch.manual_seed(42)
    with fixed_arch(json.loads(json.dumps(model.sample))):
        via_json = Space().eval()
    outputs.append(via_json(x))
    assert torch.equal(outputs[0], outputs[1]) and torch.equal(outputs[0], outputs[2])


def test_outside_fixed_arch_the_space_is_built_again():
    with fixed_arch(sample_model(1).sample):
        Space()
    assert isinstance(Space().op, nn.LayerChoice)


def test_layer_choice_accepts_an_index_for_list_candidates():
    with fixed_arch({"a": 1, "b": "0"}):
        seq = nn.Sequential(nn.LayerChoice([nn.ReLU(), nn.Tanh()], label="a"), nn.LayerChoice([nn.ReLU(), nn.Tanh()], label="b"))
    assert isinstance(seq[0], torch.nn.Tanh) and isinstance(seq[1], torch.nn.ReLU)


def test_value_choice_tuple_candidates_match_json_lists():
    with fixed_arch(json.loads(json.dumps({"k": (5, 5)}))):
        conv = nn.Conv2d(1, 1, nn.ValueChoice([(3, 3), (5, 5)], label="k"))
    assert conv.kernel_size == (5, 5)


def test_repeat_needs_no_values_for_the_dropped_blocks_and_keeps_later_labels():
    def build():
        with label_scope():
            rep = nn.Repeat(lambda: nn.LayerChoice([nn.ReLU(), nn.Tanh()]), (1, 3), label="d")
            after = nn.LayerChoice([nn.ReLU(), nn.Sigmoid()])
        return rep, after

    _, after_in_space = build()
    assert after_in_space.label == "_mutation_4"  # three blocks took _mutation_1.._3
    with fixed_arch({"d": 1, "_mutation_1": "1", "_mutation_4": "1"}):
        rep, after = build()
    assert isinstance(rep, torch.nn.Sequential) and len(rep) == 1 and isinstance(rep[0], torch.nn.Tanh)
    assert isinstance(after, torch.nn.Sigmoid)
    with pytest.raises(ValueError, match="labelled '_mutation_4'"):
        with fixed_arch({"d": 1, "_mutation_1": "1"}):
            build()


@pytest.mark.parametrize("arch, message", [
    ({}, "no value for the LayerChoice labelled 'op'"),
    ({"op": "conv"}, "'conv' is not a candidate; allowed names are \\['relu', 'lin', 'tanh'\\]"),
])
def test_bad_architecture_errors_name_the_label(arch, message):
    full = dict(sample_model(0).sample)
    full.pop("op")
    full.update(arch)
    with pytest.raises(ValueError, match=message) as info:
        with fixed_arch(full):
            Space()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("label, value, message", [
    ("hidden", 10, "10 is not a candidate; allowed values are \\[8, 16, 24\\]"),
    ("depth", 5, "depth 5 is not allowed; give an int in \\[1, 3\\]"),
    ("skip", [2], "not a valid choice; give a list of 1 distinct indices in \\[0, 2\\)"),
    ("mix", [], "not a valid choice; give a list of any number of distinct indices"),
])
def test_bad_values_are_one_line_errors(label, value, message):
    arch = dict(sample_model(0).sample)
    arch[label] = value
    with pytest.raises(ValueError, match=message):
        with fixed_arch(arch):
            Space()


def test_bad_inputs_to_fixed_arch(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        fixed_arch(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(ValueError, match="not valid JSON"):
        fixed_arch(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="must be a dict"):
        fixed_arch(tmp_path / "list.json")
    with pytest.raises(ValueError, match="label 1 is not a string"):
        fixed_arch({1: "a"})


def test_verbose_logs_the_architecture(caplog):
    with caplog.at_level(logging.INFO, logger="nni.retiarii.fixed"):
        with fixed_arch({"a": "0"}):
            pass
        with fixed_arch({"b": "0"}, verbose=False):
            pass
    assert "'a': '0'" in caplog.text and "'b'" not in caplog.text
