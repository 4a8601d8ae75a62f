"""ModelSpeedup: outputs equal the masked model's, channel counts shrink, errors name the node."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from nni.compression.pytorch import ModelSpeedup, apply_compression_results
from nni.compression.pytorch.speedup import ConstantInputConv


def filter_masks(model, prune):
    """Masks zeroing the given output filters (and bias entries) of each named conv/linear."""
    modules = dict(model.named_modules())
    masks = {}
    for name, idx in prune.items():
        mod = modules[name]
        w = torch.ones_like(mod.weight)
        w[idx] = 0
        masks[name] = {"weight": w}
        if mod.bias is not None:
            b = torch.ones_like(mod.bias)
            b[idx] = 0
            masks[name]["bias"] = b
    return masks


def speedup_and_compare(model, x, masks, atol=1e-5):
    torch.manual_seed(0)
    model.eval()
    masked = copy.deepcopy(model)
    apply_compression_results(masked, masks)
    expected = masked(x)
    ModelSpeedup(model, x, masks).speedup_model()
    got = model(x)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=atol), (got - expected).abs().max()
    return model


class VGG(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Linear(16 * 2 * 2, 10), nn.ReLU(), nn.Dropout(), nn.Linear(10, 4))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def test_vgg_channels_shrink_and_outputs_match():
    torch.manual_seed(0)
    model = VGG()
    masks = filter_masks(model, {"features.0": [0, 2, 5, 7], "features.3": list(range(8)), "classifier.0": [1, 2]})
    speedup_and_compare(model, torch.randn(4, 3, 8, 8), masks)
    assert (model.features[0].in_channels, model.features[0].out_channels) == (3, 4)
    assert (model.features[3].in_channels, model.features[3].out_channels) == (4, 8)
    assert (model.classifier[0].in_features, model.classifier[0].out_features) == (32, 8)
    assert model.classifier[3].in_features == 8


class ConvBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 5, 3, padding=0)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(5, 3)

    def forward(self, x):
        x = self.conv2(torch.relu(self.bn1(self.conv1(x))))
        return self.fc(self.pool(x).view(x.size(0), -1))


def test_constant_channels_are_folded_into_the_next_bias():
    # conv1's pruned filters become non-zero constants after BN; conv2 (no padding) absorbs them
    torch.manual_seed(0)
    model = ConvBN()
    with torch.no_grad():
        model.bn1.running_mean.uniform_(-1, 1)
        model.bn1.bias.uniform_(0.5, 1)
    speedup_and_compare(model, torch.randn(2, 3, 6, 6), filter_masks(model, {"conv1": [1, 4], "conv2": [0]}))
    assert model.conv1.out_channels == 4 and model.bn1.num_features == 4 and model.conv2.in_channels == 4
    assert model.fc.in_features == 4


def test_constant_channel_before_padded_conv_becomes_a_border_map():
    torch.manual_seed(0)
    model = ConvBN()
    model.conv2 = nn.Conv2d(6, 5, 3, padding=1, bias=False)
    with torch.no_grad():
        model.bn1.bias.uniform_(0.5, 1)
    masks = filter_masks(model, {"conv1": [1, 4]})
    masked = copy.deepcopy(model).eval()
    apply_compression_results(masked, masks)
    speedup_and_compare(model, torch.randn(2, 3, 6, 6), masks)
    assert model.conv1.out_channels == 4 and model.bn1.num_features == 4
    # zero padding makes the removed constants smaller at the borders: kept exactly as a map
    assert isinstance(model.conv2, ConstantInputConv) and model.conv2.conv.in_channels == 4
    other_size = torch.randn(3, 3, 9, 7)  # the map is recomputed for any input size
    assert torch.allclose(model(other_size), masked(other_size), atol=1e-5)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(out + (x if self.down is None else self.down(x)))


class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.layer1 = Block(8, 8, 1)
        self.layer2 = Block(8, 16, 2)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = self.layer2(self.layer1(torch.relu(self.bn1(self.conv1(x)))))
        return self.fc(x.mean((2, 3)))


def resnet_masks(model, prune):
    """Channel masks zeroing conv filters and the BN after each, so removed channels are exact zeros."""
    masks = filter_masks(model, {conv: idx for conv, (idx, _) in prune.items()})
    masks.update(filter_masks(model, {bn: idx for _, (idx, bn) in prune.items()}))
    return masks


def test_residual_add_keeps_union_and_matches():
    torch.manual_seed(0)
    model = ResNet()
    masks = resnet_masks(model, {
        "conv1": ([0, 1, 2], "bn1"), "layer1.conv2": ([0, 1, 2], "layer1.bn2"),
        "layer1.conv1": ([3, 4, 5, 6], "layer1.bn1"),
        "layer2.conv2": ([0, 1, 2, 3, 4, 5, 6, 7], "layer2.bn2"),
        "layer2.down.0": ([0, 1, 2, 3, 4, 5, 6], "layer2.down.1"),  # differs on channel 7: kept
        "layer2.conv1": ([10, 11], "layer2.bn1")})
    speedup_and_compare(model, torch.randn(2, 3, 8, 8), masks)
    assert model.conv1.out_channels == 5 and model.layer1.conv2.out_channels == 5
    assert model.layer1.conv1.out_channels == 4 and model.layer2.conv1.in_channels == 5
    assert model.layer2.conv2.out_channels == 9 and model.layer2.down[0].out_channels == 9
    assert model.layer2.conv1.out_channels == 14 and model.fc.in_features == 9


class Grouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(4, 8, 3, padding=1, groups=2)
        self.conv2 = nn.Conv2d(8, 8, 1, groups=4)
        self.conv3 = nn.Conv2d(8, 6, 3, padding=1)

    def forward(self, x):
        return self.conv3(torch.relu(self.conv2(torch.relu(self.conv1(x)))))


def test_grouped_conv_drops_whole_groups_of_its_consumer():
    torch.manual_seed(0)
    model = Grouped()
    # conv1's filters 0,1 / 4,5 are the inputs of conv2's groups 0 / 2, whose filters are pruned too
    speedup_and_compare(model, torch.randn(2, 4, 5, 5), filter_masks(model, {"conv1": [0, 1, 4, 5], "conv2": [0, 1, 4, 5]}))
    assert (model.conv1.in_channels, model.conv1.out_channels, model.conv1.groups) == (4, 4, 2)
    assert (model.conv2.in_channels, model.conv2.out_channels, model.conv2.groups) == (4, 4, 2)
    assert model.conv3.in_channels == 4


def test_grouped_conv_keeps_equal_counts_per_group():
    torch.manual_seed(0)
    model = Grouped()
    # uneven pruning of conv1 cannot shrink it: every active group of conv2 needs 2 inputs
    speedup_and_compare(model, torch.randn(2, 4, 5, 5), filter_masks(model, {"conv1": [0, 4, 5], "conv2": [1, 3, 5, 7]}))
    assert model.conv1.out_channels == 8
    assert (model.conv2.in_channels, model.conv2.out_channels, model.conv2.groups) == (8, 4, 4)
    assert model.conv3.in_channels == 4


class Depthwise(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pw = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        return self.pw(torch.relu(self.dw(nn.functional.relu6(self.bn1(self.conv1(x))))))


def test_depthwise_conv_loses_whole_groups():
    torch.manual_seed(0)
    model = Depthwise()
    masks = filter_masks(model, {"conv1": [1, 3, 6], "bn1": [1, 3, 6], "dw": [1, 3, 6]})
    speedup_and_compare(model, torch.randn(2, 3, 6, 6), masks)
    assert model.dw.groups == model.dw.in_channels == model.dw.out_channels == 5
    assert model.conv1.out_channels == 5 and model.pw.in_channels == 5


class CatNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(3, 6, 1)
        self.head = nn.Conv2d(10, 2, 1)

    def forward(self, x):
        return self.head(torch.cat([self.a(x), torch.relu(self.b(x))], dim=1))


def test_cat_slices_channels():
    torch.manual_seed(0)
    model = CatNet()
    speedup_and_compare(model, torch.randn(2, 3, 4, 4), filter_masks(model, {"a": [0], "b": [2, 3, 5]}))
    assert model.a.out_channels == 3 and model.b.out_channels == 3 and model.head.in_channels == 6


def test_mlp_and_masks_file(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 10), nn.BatchNorm1d(10), nn.ReLU(), nn.Linear(10, 8), nn.Tanh(), nn.Linear(8, 3))
    masks = filter_masks(model, {"0": [0, 1, 2, 3], "1": [0, 1, 2, 3], "3": [7]})
    path = tmp_path / "mask.pth"
    torch.save(masks, path)
    x = torch.randn(5, 6)
    masked = copy.deepcopy(model).eval()
    apply_compression_results(masked, str(path))
    ModelSpeedup(model.eval(), x, str(path)).speedup_model()
    assert torch.allclose(model(x), masked(x), atol=1e-5)
    assert [m.out_features for m in model if isinstance(m, nn.Linear)] == [6, 7, 3]
    assert model[1].num_features == 6


class FixedView(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 2 * 2, 2)

    def forward(self, x):
        return self.fc(self.conv(x).view(-1, 16))


class Unsupported(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)

    def forward(self, x):
        return torch.softmax(self.conv(x), dim=1)


class Wrapped(nn.Module):
    """Shaped like a pruner's module wrapper."""

    def __init__(self, module):
        super().__init__()
        self.module = module
        self.register_buffer("weight_mask", torch.ones_like(module.weight))

    def forward(self, x):
        return self.module(x)


def test_errors_are_one_line_and_name_the_problem():
    x = torch.randn(2, 1, 4, 4)
    model = FixedView()
    with pytest.raises(ValueError, match=r"view_?\d*'.*fixed size 16") as err:
        ModelSpeedup(model, x, filter_masks(model, {"conv": [0]})).speedup_model()
    assert "\n" not in str(err.value) and model.conv.out_channels == 4
    model = Unsupported()
    with pytest.raises(ValueError, match=r"node 'softmax'.*function softmax"):
        ModelSpeedup(model, x, filter_masks(model, {"conv": [0]})).speedup_model()
    with pytest.raises(ValueError, match=r"masks\['nope'\]: no module"):
        ModelSpeedup(model, x, {"nope": {"weight": torch.ones(1)}})
    with pytest.raises(ValueError, match=r"masks\['conv'\]\['weight'\]: shape \(4,\)"):
        ModelSpeedup(model, x, {"conv": {"weight": torch.ones(4)}})
    wrapped = Unsupported()
    wrapped.conv = Wrapped(wrapped.conv)
    with pytest.raises(ValueError, match=r"masks\['conv'\]: the model is still wrapped.*_unwrap_model"):
        ModelSpeedup(wrapped, x, {"conv": {"weight": torch.ones(4, 1, 3, 3)}})
    with pytest.raises(ValueError, match="batch_dim"):
        ModelSpeedup(model, x, {}, batch_dim=1)


def test_unsupported_op_on_unpruned_channels_is_left_alone():
    model = Unsupported()
    x = torch.randn(2, 1, 4, 4)
    before = model(x)
    ModelSpeedup(model, x, {}).speedup_model()
    assert torch.allclose(model(x), before)


class ShapeOps(nn.Module):
    def __init__(self, literal=False):
        super().__init__()
        self.literal = literal
        self.conv = nn.Conv2d(2, 6, 3)
        self.conv1d = nn.Conv1d(6, 4, 1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        y = self.conv(x)
        y = y.view(y.size(0), 6, -1) if self.literal else y.view(y.size(0), y.size(1), -1)
        y = self.conv1d(y).sum(2)
        return self.fc(y.unsqueeze(-1).squeeze(-1))


def test_unsqueeze_squeeze_and_channel_keeping_view():
    torch.manual_seed(0)
    model = ShapeOps()
    speedup_and_compare(model, torch.randn(2, 2, 5, 5), filter_masks(model, {"conv": [0, 5], "conv1d": [1]}))
    assert model.conv.out_channels == 4 and model.conv1d.in_channels == 4 and model.fc.in_features == 3
    model = ShapeOps(literal=True)
    with pytest.raises(ValueError, match="fixed size 6"):
        ModelSpeedup(model, torch.randn(2, 2, 5, 5), filter_masks(model, {"conv": [0]})).speedup_model()


def test_flatten_module_and_avgpool_with_padding():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.AvgPool2d(3, 1, padding=1), nn.Flatten(), nn.Linear(4 * 2 * 2, 3))
    speedup_and_compare(model, torch.randn(2, 1, 4, 4), filter_masks(model, {"0": [1, 2]}))
    assert model[0].out_channels == 2 and model[3].in_features == 8
