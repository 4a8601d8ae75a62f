"""Model-space primitives: shapes, labels, sharing, validation (spec §13 item 1)."""
import subprocess
import sys
from collections import OrderedDict

import pytest
import torch

import nni.retiarii.nn.pytorch as nn
from nni.retiarii import basic_unit, get_init_args, label_scope, model_wrapper
from nni.retiarii.space import extract_mutables


def x8():
    return torch.randn(4, 8)


# ---------------------------------------------------------------- LayerChoice

def test_layer_choice_list_candidates_container_behaviour():
    lc = nn.LayerChoice([nn.Linear(8, 4), nn.Linear(8, 5), nn.Identity()], label="op")
    assert lc.label == "op" and lc.names == ["0", "1", "2"] and len(lc) == 3 and lc.length == 3
    assert lc.candidates == ["0", "1", "2"] and [type(m).__name__ for m in lc] == ["Linear", "Linear", "Identity"]
    assert lc[1].out_features == 5 and lc["1"] is lc[1] and lc.choices[2] is lc[2]
    assert lc(x8()).shape == (4, 4)  # the model space runs its first candidate
    lc[1] = nn.Linear(8, 6)
    assert lc["1"].out_features == 6 and len(lc) == 3
    with pytest.raises(KeyError, match="cannot add"):
        lc["new"] = nn.ReLU()
    with pytest.raises(KeyError, match="cannot add"):
        lc[3] = nn.ReLU()
    del lc["0"]
    assert lc.names == ["1", "2"] and len(lc) == 2 and lc(x8()).shape == (4, 6)
    assert "0" not in dict(lc.named_children())


def test_layer_choice_ordered_dict_candidates():
    lc = nn.LayerChoice(OrderedDict([("conv3", nn.Conv2d(1, 2, 3, padding=1)), ("conv5", nn.Conv2d(1, 2, 5, padding=2))]))
    assert lc.names == ["conv3", "conv5"] and lc["conv5"].kernel_size == (5, 5)
    del lc["conv3"]
    assert lc.names == ["conv5"] and lc(torch.randn(1, 1, 6, 6)).shape == (1, 2, 6, 6)
    with pytest.raises(ValueError, match="last candidate"):
        del lc["conv5"]


def test_layer_choice_cannot_be_nested_and_validates_candidates():
    inner = nn.LayerChoice([nn.ReLU(), nn.Tanh()], label="inner")
    with pytest.raises(ValueError, match="cannot be nested"):
        nn.LayerChoice([nn.Sequential(inner), nn.ReLU()], label="outer")
    with pytest.raises(ValueError, match="not a torch.nn.Module"):
        nn.LayerChoice([nn.ReLU(), 3], label="bad")
    with pytest.raises(ValueError, match="empty"):
        nn.LayerChoice([], label="empty")


@pytest.mark.parametrize("prior, message", [
    ([0.5, 0.5], "has 2 entries but there are 3 candidates"),
    ([0.5, 0.6, -0.1], "not a distribution"),
    ([0.2, 0.2, 0.2], "not a distribution"),
    ("abc", "list of 3 probabilities"),
])
def test_prior_validation_names_the_choice(prior, message):
    with pytest.raises(ValueError, match=message) as info:
        nn.LayerChoice([nn.ReLU(), nn.Tanh(), nn.Identity()], prior=prior, label="act")
    assert "'act'" in str(info.value) and "\n" not in str(info.value)


def test_prior_is_kept_when_valid():
    assert nn.LayerChoice([nn.ReLU(), nn.Tanh()], prior=[0.25, 0.75], label="a").prior == [0.25, 0.75]
    assert nn.ValueChoice([1, 2], prior=[0.1, 0.9], label="v").prior == [0.1, 0.9]
    assert nn.InputChoice(2, 1, prior=[0.5, 0.5], label="i").prior == [0.5, 0.5]
    with pytest.raises(ValueError, match="only with n_chosen=1"):
        nn.InputChoice(3, 2, prior=[0.2, 0.3, 0.5], label="i2")


# ---------------------------------------------------------------- InputChoice / ChosenInputs

def test_input_choice_candidates_and_validation():
    assert nn.InputChoice(3, 1, label="a").candidates == [[0], [1], [2]]
    assert nn.InputChoice(3, 2, label="b").candidates == [[0, 1], [0, 2], [1, 2]]
    assert nn.InputChoice(3, None, label="c").candidates == [[0], [1], [2], [0, 1], [0, 2], [1, 2], [0, 1, 2]]
    with pytest.raises(ValueError, match="reduction 'max' is not supported"):
        nn.InputChoice(2, 1, reduction="max", label="d")
    with pytest.raises(ValueError, match="n_chosen must be None or an int in"):
        nn.InputChoice(2, 3, label="e")
    with pytest.raises(ValueError, match="n_candidates must be a positive int"):
        nn.InputChoice(0, label="f")


@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "concat"])
def test_chosen_inputs_reductions(reduction):
    tensors = [torch.full((2, 3), float(v)) for v in (1, 2, 4)]
    out = nn.ChosenInputs([0, 2], reduction)(tensors)
    if reduction == "none":
        assert isinstance(out, list) and out[0] is tensors[0] and out[1] is tensors[2]
    elif reduction == "sum":
        assert torch.equal(out, torch.full((2, 3), 5.0))
    elif reduction == "mean":
        assert torch.equal(out, torch.full((2, 3), 2.5))
    else:
        assert out.shape == (2, 6) and torch.equal(out[:, 3:], tensors[2])
    assert torch.equal(nn.ChosenInputs(1, "sum")(tensors), tensors[1])


@pytest.mark.parametrize("reduction, shape", [("sum", (2, 3)), ("mean", (2, 3)), ("concat", (2, 6))])
def test_input_choice_forward_in_the_space_uses_the_first_inputs(reduction, shape):
    ic = nn.InputChoice(3, 2, reduction=reduction, label="ic")
    tensors = [torch.full((2, 3), float(v)) for v in (1, 2, 4)]
    out = ic(tensors)
    assert out.shape == shape
    if reduction == "sum":
        assert torch.equal(out, torch.full((2, 3), 3.0))
    with pytest.raises(ValueError, match="expected n_candidates=3"):
        ic(tensors[:2])


# ---------------------------------------------------------------- ValueChoice

def test_value_choice_as_basic_unit_argument_builds_the_first_candidate_and_records_the_choice():
    vc = nn.ValueChoice([16, 32], label="width")
    conv = nn.Conv2d(3, vc, kernel_size=nn.ValueChoice([3, 5], label="k"))
    assert conv.out_channels == 16 and conv.kernel_size == (3, 3)
    args, kwargs = get_init_args(conv)
    assert args[1] is vc and kwargs["kernel_size"].label == "k"
    assert conv(torch.randn(1, 3, 8, 8)).shape == (1, 16, 6, 6)


def test_value_choice_shared_by_instance_and_by_label():
    @model_wrapper
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            hidden = nn.ValueChoice([128, 512])
            self.a = nn.Linear(64, hidden)
            self.b = nn.Linear(hidden, 10)
            self.c = nn.Linear(10, nn.ValueChoice([32, 64, 128], label="hidden_dim"))
            self.d = nn.Linear(nn.ValueChoice([32, 64, 128], label="hidden_dim"), 3)

        def forward(self, x):
            return self.d(self.c(self.b(self.a(x))))

    space = extract_mutables(Net())
    assert list(space) == ["_mutation_1", "hidden_dim"]
    assert space["_mutation_1"].candidates == [128, 512] and space["hidden_dim"].candidates == [32, 64, 128]
    assert Net()(torch.randn(2, 64)).shape == (2, 3)


def test_shared_label_with_different_candidates_is_an_error():
    seq = nn.Sequential(nn.Linear(4, nn.ValueChoice([8, 16], label="h")), nn.Linear(nn.ValueChoice([8, 32], label="h"), 2))
    with pytest.raises(ValueError, match="label 'h' is shared by a value_choice with candidates \\[8, 16\\] and a value_choice"):
        extract_mutables(seq)
    mixed = nn.Sequential(nn.LayerChoice([nn.ReLU(), nn.Tanh()], label="m"), nn.Linear(4, nn.ValueChoice([1, 2], label="m")))
    with pytest.raises(ValueError, match="same kind and candidates"):
        extract_mutables(mixed)


def test_value_choice_called_in_forward():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rate = nn.ValueChoice([0.0, 1.0], label="rate")

        def forward(self, x):
            return nn.functional.dropout(x, self.rate(), training=True)

    net = Net()
    assert net.rate() == 0.0 and torch.equal(net(torch.ones(3)), torch.ones(3))
    assert extract_mutables(net)["rate"].candidates == [0.0, 1.0]


def test_value_choice_dict_and_list_candidates():
    vc = nn.ValueChoice([{"k": 3}, [1, 2]], label="cfg")
    assert vc() == {"k": 3} and vc.candidates == [{"k": 3}, [1, 2]]


@pytest.mark.parametrize("expression", [
    lambda v: v * 2, lambda v: 2 * v, lambda v: v + 1, lambda v: v - 1, lambda v: v / 2, lambda v: v // 2, lambda v: -v,
    lambda v: int(v), lambda v: v ** 2,
])
def test_value_choice_arithmetic_raises_one_line_error(expression):
    vc = nn.ValueChoice([32, 64], label="units")
    with pytest.raises(nn.ValueChoiceArithmeticError) as info:
        expression(vc)
    message = str(info.value)
    assert "'units'" in message and "not supported in NNI v2.5" in message and "\n" not in message
    assert isinstance(info.value, ValueError)


def test_value_choice_validates_candidates():
    with pytest.raises(ValueError, match="non-empty list"):
        nn.ValueChoice([], label="empty")
    with pytest.raises(ValueError, match="non-empty list"):
        nn.ValueChoice(3, label="scalar")


# ---------------------------------------------------------------- Repeat

def test_repeat_fixed_depth_is_not_a_choice():
    rep = nn.Repeat(nn.Linear(8, 8), 3, label="rep")
    assert len(rep.blocks) == 3 and rep.candidates == [3]
    assert rep.blocks[0].weight is not rep.blocks[1].weight  # a module block is deep-copied
    assert extract_mutables(rep) == {}
    x = x8()
    expected = rep.blocks[2](rep.blocks[1](rep.blocks[0](x)))
    assert torch.allclose(rep(x), expected)


def test_repeat_ranged_depth_with_callable_and_list_blocks():
    seen = []

    def factory(index):
        seen.append(index)
        return nn.Linear(8, 8)

    rep = nn.Repeat(factory, (2, 4), label="depth")
    assert seen == [0, 1, 2, 3] and rep.candidates == [2, 3, 4] and len(rep.blocks) == 4
    assert extract_mutables(rep)["depth"].kind == "repeat"
    assert rep(x8()).shape == (4, 8)
    listed = nn.Repeat([nn.Linear(8, 8), lambda: nn.Linear(8, 8)], (1, 2), label="l")
    assert len(listed.blocks) == 2
    with pytest.raises(ValueError, match="must have max depth = 3 entries"):
        nn.Repeat([nn.Linear(8, 8)], (1, 3), label="bad")
    with pytest.raises(ValueError, match="need 1 <= min <= max"):
        nn.Repeat(nn.Linear(8, 8), (3, 2), label="bad2")


def test_repeat_copies_share_inner_choices_but_factories_make_new_ones():
    copied = nn.Repeat(nn.Sequential(nn.Linear(4, 4), nn.LayerChoice([nn.ReLU(), nn.Tanh()], label="act")), (1, 3), label="r")
    assert list(extract_mutables(copied)) == ["r", "act"]
    with label_scope():
        fresh = nn.Repeat(lambda: nn.LayerChoice([nn.ReLU(), nn.Tanh()]), (1, 2), label="r2")
    assert list(extract_mutables(fresh)) == ["r2", "_mutation_1", "_mutation_2"]


# ---------------------------------------------------------------- Cell, NasBench201Cell, AutoActivation

def test_cell_with_two_ops_per_node_and_two_predecessors():
    cell = nn.Cell([nn.Identity(), nn.ReLU(), nn.Tanh()], num_nodes=3, num_ops_per_node=2, num_predecessors=2, label="cell")
    space = extract_mutables(cell)
    ops = [k for k in space if "/op_" in k]
    inputs = {k: v for k, v in space.items() if "/input_" in k}
    assert len(ops) == 6 and all(space[k].candidates == ["0", "1", "2"] for k in ops)
    assert inputs["cell/input_0_1"].candidates == [[0], [1]] and inputs["cell/input_2_0"].candidates == [[0], [1], [2], [3]]
    a, b = torch.randn(2, 4), torch.randn(2, 4)
    out = cell([a, b])
    assert out.shape == (2, 12)
    # first candidates: every op is Identity on input 0, so each node is 2 * a (node 0), then 2 * a again
    assert torch.allclose(out[:, :4], 2 * a) and torch.allclose(out[:, 8:], 2 * a)
    with pytest.raises(ValueError, match="only 'all' is"):
        nn.Cell([nn.Identity()], 2, merge_op="loose_end", label="c2")
    with pytest.raises(ValueError, match="expected num_predecessors=2"):
        cell([a])


def test_cell_with_callable_candidates_gets_fresh_modules():
    cell = nn.Cell(lambda: [nn.Linear(4, 4), nn.Identity()], num_nodes=2, label="cc")
    assert cell.ops[0][0]["0"] is not cell.ops[1][0]["0"]
    assert cell(torch.randn(3, 4)).shape == (3, 8)


def test_nasbench201_cell():
    ops = OrderedDict([
        ("none", lambda i, o: nn.Sequential()),  # zero is not needed for the test; keep shapes
        ("skip", lambda i, o: nn.Identity() if i == o else nn.Conv2d(i, o, 1)),
        ("conv1x1", lambda i, o: nn.Conv2d(i, o, 1)),
        ("conv3x3", lambda i, o: nn.Conv2d(i, o, 3, padding=1)),
        ("avg", lambda i, o: nn.AvgPool2d(3, 1, 1) if i == o else nn.Conv2d(i, o, 1)),
    ])
    ops["none"] = lambda i, o: nn.Conv2d(i, o, 1)
    cell = nn.NasBench201Cell(ops, in_features=3, out_features=4, label="nb")
    space = extract_mutables(cell)
    assert sorted(space) == sorted(f"nb/{j}_{i}" for i in range(1, 4) for j in range(i))
    assert all(v.candidates == list(ops) for v in space.values())
    size = 1
    for v in space.values():
        size *= len(v.candidates)
    assert size == 5 ** 6
    assert cell(torch.randn(2, 3, 6, 6)).shape == (2, 4, 6, 6)


def test_auto_activation():
    act = nn.AutoActivation(unit_num=2, label="act")
    space = extract_mutables(act)
    assert list(space) == ["act/unary_0", "act/unary_1", "act/unary_2", "act/binary_0", "act/binary_1"]
    assert len(space["act/unary_0"].candidates) == 25 and len(space["act/binary_0"].candidates) == 10
    x = torch.randn(3, 5)
    out = act(x)
    # first candidates: identity, and add: x + x + x
    assert out.shape == x.shape and torch.allclose(out, 3 * x)
    assert act.unaries[0]["beta_mul"].beta.shape == (1,)  # beta is one scalar, not per channel
    with pytest.raises(ValueError, match="unit_num must be a positive int"):
        nn.AutoActivation(0)


def test_placeholder_keeps_its_parameters_and_refuses_to_run():
    ph = nn.Placeholder(label="mutable_0", kernel_size_options=[1, 3, 5], stride=2)
    assert ph.label == "mutable_0" and ph.related_info == {"kernel_size_options": [1, 3, 5], "stride": 2}
    with pytest.raises(RuntimeError, match="must be replaced by a Mutator"):
        ph(torch.randn(1))
    with pytest.raises(ValueError, match="label must be a non-empty string"):
        nn.Placeholder(label="")


# ---------------------------------------------------------------- labels, wrappers

def test_labels_are_explicit_or_automatic_and_validated():
    assert nn.LayerChoice([nn.ReLU()], label="mine").label == "mine"
    with label_scope():
        assert nn.LayerChoice([nn.ReLU()]).label == "_mutation_1"
        assert nn.InputChoice(2).label == "_mutation_2"
    with pytest.raises(ValueError, match="non-empty string"):
        nn.ValueChoice([1], label="")
    assert nn.LayerChoice([nn.ReLU()], key="old_name").label == "old_name"  # NNI 1.x spelling
    with pytest.raises(ValueError, match="unexpected argument 'lable'"):
        nn.InputChoice(2, lable="typo")


SPACE_CODE = """
import nni.retiarii.nn.pytorch as nn
from nni.retiarii import model_wrapper

@model_wrapper
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.LayerChoice([nn.Linear(4, 4), nn.Identity()])
        self.b = nn.Repeat(lambda: nn.Linear(4, nn.ValueChoice([4, 4])), (1, 2))
        self.c = nn.Cell([nn.Identity()], 1)
        self.d = nn.InputChoice(2)
"""


def test_automatic_labels_are_deterministic_per_construction_and_across_processes():
    namespace = {}
    exec(SPACE_CODE, namespace)
    nn.ValueChoice([1, 2])  # a choice made outside any model space does not shift the labels inside
    first = list(extract_mutables(namespace["Net"]()))
    nn.LayerChoice([nn.ReLU()])
    second = list(extract_mutables(namespace["Net"]()))
    assert first == second == [
        "_mutation_1", "_mutation_2", "_mutation_3", "_mutation_4", "_mutation_5/op_0_0", "_mutation_5/input_0_0", "_mutation_6"]
    code = SPACE_CODE + "from nni.retiarii.space import extract_mutables\nprint(list(extract_mutables(Net())))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == str(first)


def test_basic_unit_records_args_and_resolves_value_choices_for_user_modules():
    @basic_unit
    class MyOp(torch.nn.Module):
        def __init__(self, scale, shift=0):
            super().__init__()
            self.scale, self.shift = scale, shift

        def forward(self, x):
            return x * self.scale + self.shift

    op = MyOp(nn.ValueChoice([2, 3], label="s"), shift=nn.ValueChoice([-1, 1], label="t"))
    assert type(op) is MyOp and op.scale == 2 and op.shift == -1
    assert list(extract_mutables(torch.nn.Sequential(op))) == ["s", "t"]
    assert torch.equal(op(torch.ones(2)), torch.ones(2))
    with pytest.raises(TypeError, match="not a torch.nn.Module subclass"):
        basic_unit(int)
    assert torch.nn.Linear.__init__ is not nn.Linear.__init__  # torch's own classes are never modified


def test_model_wrapper_records_init_args():
    @model_wrapper
    class Net(nn.Module):
        def __init__(self, width, depth=1):
            super().__init__()
            self.fc = nn.Linear(width, width)

    net = Net(4, depth=2)
    assert get_init_args(net) == ((4,), {"depth": 2})
