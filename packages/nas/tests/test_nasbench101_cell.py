"""NasBench101Cell: choices, NAS-Bench-101 pruning, channel split and the edge budget."""
import pytest
import torch

import nni.retiarii.nn.pytorch as nn
from nni.retiarii import InvalidMutation, fixed_arch
from nni.retiarii.space import extract_mutables

OPS = {
    "conv3x3": lambda c: nn.Conv2d(c, c, 3, padding=1),
    "conv1x1": lambda c: nn.Conv2d(c, c, 1),
    "maxpool": lambda c: nn.MaxPool2d(3, 1, 1),
}


def projection(i, o):
    return nn.Conv2d(i, o, 1)


def build(arch=None, **kwargs):
    if arch is None:
        return nn.NasBench101Cell(OPS, 3, 8, projection, label="nb", **kwargs)
    with fixed_arch(arch):
        return nn.NasBench101Cell(OPS, 3, 8, projection, label="nb", **kwargs)


def test_space_choices():
    space = extract_mutables(build())
    assert list(space) == ["nb/num_nodes"] + [f"nb/op{i}" for i in range(1, 6)] + [f"nb/input{i}" for i in range(1, 7)]
    assert space["nb/num_nodes"].candidates == [2, 3, 4, 5, 6, 7]
    prior = space["nb/num_nodes"].prior
    assert abs(sum(prior) - 1) < 1e-9 and prior[-1] == pytest.approx(2 * prior[-2])
    assert space["nb/op3"].candidates == ["conv3x3", "conv1x1", "maxpool"]
    assert len(space["nb/input6"].candidates) == 2 ** 6 - 1
    assert build()(torch.randn(2, 3, 5, 5)).shape == (2, 8, 5, 5)  # the space is projection(x)


def test_fixed_cell_splits_output_channels_and_prunes_dangling_vertices():
    arch = {
        "nb/num_nodes": 5,
        "nb/op1": "conv3x3", "nb/op2": "conv1x1", "nb/op3": "maxpool",
        "nb/input1": [0], "nb/input2": [0, 1], "nb/input3": [1],  # vertex 3 does not reach the output
        "nb/input4": [0, 1, 2],
    }
    cell = build(arch)
    assert cell.vertex_ops == ["conv3x3", "conv1x1"]  # vertex 3 (maxpool) is pruned
    assert cell.channels == [3, 4, 4, 8]  # 8 output channels split between the two feeding vertices
    assert sorted(cell.projections) == ["1", "2", "3"]
    assert cell(torch.randn(2, 3, 5, 5)).shape == (2, 8, 5, 5)
    assert extract_mutables(cell) == {}


def test_uneven_split_gives_the_extra_channels_to_earlier_vertices():
    arch = {"nb/num_nodes": 5, "nb/op1": "conv1x1", "nb/op2": "conv1x1", "nb/op3": "conv1x1",
            "nb/input1": [0], "nb/input2": [1], "nb/input3": [2], "nb/input4": [1, 2, 3]}
    cell = build(arch)
    assert cell.channels == [3, 3, 3, 2, 8]
    assert cell(torch.randn(1, 3, 4, 4)).shape == (1, 8, 4, 4)


def test_input_to_output_only():
    cell = build({"nb/num_nodes": 2, "nb/input1": [0]})
    x = torch.randn(1, 3, 4, 4)
    assert torch.allclose(cell(x), cell.projections["1"](x))


def test_edge_budget_raises_invalid_mutation():
    arch = {"nb/num_nodes": 5, "nb/op1": "conv1x1", "nb/op2": "conv1x1", "nb/op3": "conv1x1",
            "nb/input1": [0], "nb/input2": [0, 1], "nb/input3": [0, 1, 2], "nb/input4": [0, 1, 2, 3]}
    with pytest.raises(InvalidMutation, match="10 edges after pruning, more than max_num_edges=9"):
        build(arch)
    assert build(arch, max_num_edges=10)(torch.randn(1, 3, 4, 4)).shape == (1, 8, 4, 4)


def test_bad_values_are_reported():
    with pytest.raises(ValueError, match="'nb/num_nodes': 9 is not a candidate"):
        build({"nb/num_nodes": 9})
    with pytest.raises(ValueError, match="'pool' is not a candidate"):
        build({"nb/num_nodes": 3, "nb/op1": "pool", "nb/input1": [0], "nb/input2": [1]})
