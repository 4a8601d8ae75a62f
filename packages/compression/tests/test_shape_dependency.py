"""ChannelDependency, GroupDependency, mask-conflict fixing and not_safe_to_prune."""
from __future__ import annotations

import copy
import csv

import pytest
import torch
import torch.fx
from torch import nn

from nni.compression.pytorch import ModelSpeedup, apply_compression_results
from nni.compression.pytorch.utils.mask_conflict import (
    ChannelMaskConflict, GroupMaskConflict, fix_mask_conflict, not_safe_to_prune)
from nni.compression.pytorch.utils.shape_dependency import ChannelDependency, GroupDependency


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(out + identity)


class TinyResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.layer1 = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 8))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, 2), BasicBlock(16, 16))
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        x = self.layer2(self.layer1(torch.relu(self.bn1(self.conv1(x)))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def conv_masks(model, prune):
    modules = dict(model.named_modules())
    masks = {}
    for name, idx in prune.items():
        w = torch.ones_like(modules[name].weight)
        w[idx] = 0
        masks[name] = {"weight": w}
    return masks


def test_channel_dependency_sets_match_resnet_structure(tmp_path):
    depend = ChannelDependency(TinyResNet(), torch.ones(1, 3, 8, 8))
    expected = [{"conv1", "layer1.0.conv2", "layer1.1.conv2"}, {"layer1.0.conv1"}, {"layer1.1.conv1"},
                {"layer2.0.conv1"}, {"layer2.0.conv2", "layer2.0.downsample.0", "layer2.1.conv2"}, {"layer2.1.conv1"}]
    assert sorted(map(sorted, depend.dependency_sets)) == sorted(map(sorted, expected))
    assert depend.dependency["layer2.1.conv2"] == expected[4]
    depend.export(tmp_path / "dependency.csv")
    rows = list(csv.reader(open(tmp_path / "dependency.csv")))
    assert rows[0] == ["Dependency Set", "Convolutional Layers"]
    assert {r[0] for r in rows[1:]} == {f"Set {i}" for i in range(1, 7)}
    assert sorted(sorted(r[1:]) for r in rows[1:]) == sorted(map(sorted, expected))


def test_channel_dependency_cat_and_channel_mode():
    class Branches(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c, self.d = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1), nn.Conv2d(8, 2, 1), nn.Conv2d(8, 2, 1)

        def forward(self, x):
            y = torch.cat([self.a(x), self.b(x)], 1)
            return self.c(y) * self.d(torch.relu(y))

    model = Branches()
    assert sorted(map(sorted, ChannelDependency(model, torch.ones(1, 3, 4, 4)).dependency_sets)) == [["a", "b"], ["c", "d"]]
    traced = torch.fx.symbolic_trace(model)
    by_input = ChannelDependency(model, torch.ones(1, 3, 4, 4), traced, prune_type="Channel").dependency_sets
    assert sorted(map(sorted, by_input)) == [["a", "b"], ["c", "d"]]
    with pytest.raises(ValueError, match="prune_type: 'Weight'"):
        ChannelDependency(model, torch.ones(1, 3, 4, 4), prune_type="Weight")


def grouped_chain():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, groups=2),
                         nn.Conv2d(8, 8, 1, groups=4), nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Conv2d(8, 4, 1))


def test_group_dependency_counts_consumers(tmp_path):
    depend = GroupDependency(grouped_chain(), torch.ones(1, 3, 4, 4))
    # conv0 feeds groups=2; conv2(groups=2) feeds groups=4; depth-wise conv4 constrains nobody
    assert depend.dependency == {"0": 2, "2": 4, "3": 4, "4": 1, "5": 1}
    depend.export(tmp_path / "groups.csv")
    assert list(csv.reader(open(tmp_path / "groups.csv")))[:3] == [["Conv layer", "Groups"], ["0", "2"], ["2", "4"]]


def test_group_mask_conflict_restores_strongest_filters():
    model = nn.Sequential(nn.Conv2d(4, 8, 3, groups=2), nn.ReLU(), nn.Conv2d(8, 4, 1))
    with torch.no_grad():
        model[0].weight[1] *= 100  # filter 1 is the strongest pruned one of group 0
    masks = conv_masks(model, {"0": [0, 1, 4]})
    fixed = GroupMaskConflict(masks, model, torch.ones(1, 4, 5, 5)).fix_mask()
    pruned = (fixed["0"]["weight"].reshape(8, -1) == 0).all(1).nonzero().flatten().tolist()
    assert pruned == [0, 4]
    assert (masks["0"]["weight"].reshape(8, -1) == 0).all(1).sum() == 3  # input not modified


def test_fix_mask_conflict_then_speedup_matches(tmp_path):
    torch.manual_seed(0)
    model = TinyResNet().eval()
    masks = conv_masks(model, {"conv1": [0, 1, 2], "layer1.0.conv2": [1, 2, 3], "layer1.1.conv2": [2, 5],
                               "layer1.0.conv1": [0, 1], "layer2.0.conv2": list(range(8))})
    path = tmp_path / "mask.pth"
    torch.save(masks, path)
    fixed = fix_mask_conflict(str(path), model, torch.ones(1, 3, 8, 8))
    for name in ("conv1", "layer1.0.conv2", "layer1.1.conv2"):
        assert (fixed[name]["weight"].reshape(8, -1) == 0).all(1).nonzero().flatten().tolist() == [2]
    # layer2.0.downsample.0 / layer2.1.conv2 have no mask: the set keeps every channel
    assert bool((fixed["layer2.0.conv2"]["weight"] != 0).all())
    assert ChannelMaskConflict(fixed, model, torch.ones(1, 3, 8, 8)).fix_mask()["layer1.0.conv1"]["weight"].sum() == 6 * 8 * 9
    x = torch.randn(2, 3, 8, 8)
    masked = copy.deepcopy(model)
    apply_compression_results(masked, fixed)
    ModelSpeedup(model, x, fixed).speedup_model()
    assert torch.allclose(model(x), masked(x), atol=1e-5)
    # fresh BNs (zero mean, zero bias) keep pruned channels at exactly zero, so they are removed
    assert model.conv1.out_channels == model.layer1[1].conv2.out_channels == model.layer2[0].conv1.in_channels == 7
    assert model.layer1[0].conv1.out_channels == 6 and model.layer2[0].conv2.out_channels == 16


def test_not_safe_to_prune_finds_layers_before_view():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 3)
            self.fc1, self.fc2 = nn.Linear(16, 8), nn.Linear(8, 2)

        def forward(self, x):
            x = torch.relu(self.conv2(self.conv1(x)))
            return self.fc2(self.fc1(x.view(-1, 16)).reshape(-1, 8))

    assert not_safe_to_prune(Net(), torch.ones(1, 1, 6, 6)) == ["conv2", "fc1"]
