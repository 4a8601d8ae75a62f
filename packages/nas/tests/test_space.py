"""Search-space extraction and label mutators of the pure-python engine (spec §13 items 1-2)."""
import itertools

import pytest
import torch

import nni.retiarii.nn.pytorch as nn
from nni.retiarii import ModelStatus, Sampler, model_wrapper
from nni.retiarii.space import LabelMutator, MutableInfo, extract_mutables, instantiate, mutators_for, python_model, search_space_size


@model_wrapper
class Small(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.op = nn.LayerChoice([nn.Linear(width, width), nn.Identity()], label="op", prior=[0.25, 0.75])
        self.act = nn.LayerChoice([nn.ReLU(), nn.Tanh()], label="op2")
        self.out = nn.Linear(width, nn.ValueChoice([2, 3], label="classes"))
        self.skip = nn.InputChoice(2, 1, label="skip")
        self.depth = nn.Repeat(nn.Linear(width, width), (1, 2), label="depth")

    def forward(self, x):
        y = self.depth(self.act(self.op(x)))
        return self.out(self.skip([x, y]))


def test_extract_mutables_lists_every_choice_in_construction_order():
    space = extract_mutables(Small())
    assert space == {
        "op": MutableInfo("op", "layer_choice", ["0", "1"], [0.25, 0.75]),
        "op2": MutableInfo("op2", "layer_choice", ["0", "1"], None),
        "classes": MutableInfo("classes", "value_choice", [2, 3], None),
        "skip": MutableInfo("skip", "input_choice", [[0], [1]], None),
        "depth": MutableInfo("depth", "repeat", [1, 2], None),
    }
    assert search_space_size(space) == 32


def test_dry_run_of_the_label_mutators_gives_the_candidate_lists():
    net = Small()
    base = python_model(net)
    model = base
    recorded = []
    for mutator in mutators_for(net):
        candidates, model = mutator.dry_run(model)
        recorded.extend(candidates)
    assert recorded == [info.candidates for info in extract_mutables(net).values()]
    assert model.sample == {"op": "0", "op2": "0", "classes": 2, "skip": [0], "depth": 1}


class FixedSampler(Sampler):
    def __init__(self, choices):
        self.choices = choices

    def choice(self, candidates, mutator, model, index):
        assert index == 0  # one choice per label mutator
        return self.choices[mutator.label]


def test_apply_writes_the_sample_and_leaves_the_base_model_unchanged():
    net = Small(width=4)
    base = python_model(net)
    assert base.status == ModelStatus.Frozen and base.sample == {} and base.python_class is Small
    assert base.python_init_args == () and base.python_init_params == {"width": 4}
    choices = {"op": "1", "op2": "1", "classes": 3, "skip": [1], "depth": 2}
    model = base
    for mutator in mutators_for(extract_mutables(net)):
        model = mutator.bind_sampler(FixedSampler(choices)).apply(model)
    assert model.sample == choices and base.sample == {}
    assert [m.mutator.label for m in model.history] == list(choices)
    plain = instantiate(model)
    assert isinstance(plain.op, torch.nn.Identity) and isinstance(plain.act, torch.nn.Tanh)
    assert plain.out.out_features == 3 and plain.skip.chosen == [1] and len(plain.depth) == 2
    assert plain(torch.randn(5, 4)).shape == (5, 3)


def test_every_architecture_of_the_space_builds_and_runs():
    net = Small()
    space = extract_mutables(net)
    seen = set()
    for values in itertools.product(*(info.candidates for info in space.values())):
        arch = dict(zip(space, values))
        model = python_model(net)
        for mutator in mutators_for(space):
            model = mutator.bind_sampler(FixedSampler(arch)).apply(model)
        plain = instantiate(model)
        assert plain(torch.randn(2, 4)).shape == (2, arch["classes"])
        seen.add(str(arch))
    assert len(seen) == search_space_size(space)


def test_python_model_needs_model_wrapper():
    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.op = nn.LayerChoice([nn.ReLU()], label="x")

    with pytest.raises(ValueError, match="decorate its class with @model_wrapper"):
        python_model(Plain())
    assert [m.label for m in mutators_for(Plain())] == ["x"]
    assert isinstance(mutators_for(Plain())[0], LabelMutator)


def test_fixed_value_choices_are_not_mutables():
    from nni.retiarii import fixed_arch

    with fixed_arch({"classes": 3, "op": "0", "op2": "0", "skip": [0], "depth": 1}):
        plain = Small()
    assert extract_mutables(plain) == {}
