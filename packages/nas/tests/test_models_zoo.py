"""The shared model zoo (nni.retiarii.models): shapes, sizes, argument errors, and that the CNNs
survive ModelSpeedup and count_flops_params (when nni-compress is installed)."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from nni.retiarii import models


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("make,x,classes", [
    (lambda: models.vgg_small(10, 3, (4, 8, 8)), torch.randn(2, 3, 32, 32), 10),
    (lambda: models.vgg_small(5, 1, (4, 8), image_size=8, hidden=16), torch.randn(2, 1, 8, 8), 5),
    (lambda: models.resnet_small(7, 3, (4, 8, 8)), torch.randn(2, 3, 16, 16), 7),
    (lambda: models.resnet_small(7, 1, (4, 8), blocks_per_stage=1), torch.randn(2, 1, 8, 8), 7),
    (lambda: models.mobilenet_small(6, 3, (8, 16, 16)), torch.randn(2, 3, 16, 16), 6),
    (lambda: models.digits_cnn(), torch.randn(2, 1, 8, 8), 10),
    (lambda: models.digits_cnn(4, widths=(8, 16), hidden=None, padding=0, pool=False), torch.randn(2, 1, 8, 8), 4),
    (lambda: models.digits_cnn(batch_norm=True), torch.randn(2, 1, 8, 8), 10),
    (lambda: models.mlp(64, (32, 16), 10), torch.randn(2, 1, 8, 8), 10),
    (lambda: models.mlp(64, (), 3), torch.randn(2, 64), 3),
    (lambda: models.transformer_small(3, 16, 4, 32, 2), torch.randn(2, 5, 16), 3),
])
def test_output_shape_and_backward(make, x, classes):
    model = make()
    out = model(x)
    assert out.shape == (x.shape[0], classes)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_parameter_counts_match_the_architecture():
    # conv(1->16) 160 + conv(16->32) 4640 + fc(512->64) 32832 + fc(64->10) 650
    assert n_params(models.digits_cnn()) == 160 + 4640 + 32832 + 650
    assert n_params(models.digits_cnn(batch_norm=True)) == 160 + 4640 + 32832 + 650 + 2 * (16 + 32)
    assert n_params(models.mlp(64, (32,), 10)) == 64 * 32 + 32 + 32 * 10 + 10
    dw = models.mobilenet_small(10, 3, (8,), strides=(1,))
    # stem 3*8*9, bn 16, depthwise 8*9 (groups=8), bn 16, pointwise 8*8, bn 16, fc 8*10+10
    assert n_params(dw) == 216 + 16 + 72 + 16 + 64 + 16 + 90
    assert dw.layers[0].dw.groups == 8
    # wider is bigger; a residual block only adds a downsample where the width changes
    assert n_params(models.vgg_small(widths=(8, 16, 32))) > n_params(models.vgg_small(widths=(4, 8, 16)))
    res = models.resnet_small(widths=(8, 8))
    assert res.layers[0].downsample is None and res.layers[2].downsample is not None


def test_digits_cnn_module_names_and_seeded_weights_match_the_hand_written_net():
    class Plain(nn.Module):  # what the examples used to write by hand
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
            self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
            self.fc1 = nn.Linear(512, 64)
            self.fc2 = nn.Linear(64, 10)

        def forward(self, x):
            x = torch.relu(self.conv1(x))
            x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
            return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))

    torch.manual_seed(3)
    plain = Plain()
    torch.manual_seed(3)
    zoo = models.digits_cnn()
    assert zoo.state_dict().keys() == plain.state_dict().keys()
    x = torch.randn(4, 1, 8, 8)
    assert torch.equal(zoo(x), plain(x))
    names = [n for n, _ in zoo.named_children()]
    assert names == ["conv1", "relu1", "conv2", "relu2", "pool", "fc1", "relu3", "fc2"]
    assert [n for n, _ in models.digits_cnn(batch_norm=True, hidden=None).named_children()] == \
        ["conv1", "bn1", "relu1", "conv2", "bn2", "relu2", "pool", "fc"]


@pytest.mark.parametrize("make,message", [
    (lambda: models.vgg_small(widths=()), r"widths: got \(\); allowed: a non-empty sequence of positive ints"),
    (lambda: models.vgg_small(widths=(8, 0)), r"widths\[1\]: got 0; allowed: a positive int"),
    (lambda: models.vgg_small(image_size=20), r"image_size: got 20; allowed: a multiple of 2\*\*len\(widths\) = 8"),
    (lambda: models.resnet_small(num_classes=0), r"num_classes: got 0"),
    (lambda: models.mobilenet_small(widths=(8, 16), strides=(1, 3)), r"strides: got \(1, 3\); allowed: one stride"),
    (lambda: models.digits_cnn(widths=(8, 16, 32)), r"widths: .*allowed: two ints"),
    (lambda: models.digits_cnn(padding=2), r"padding: got 2; allowed: 0 or 1"),
    (lambda: models.digits_cnn(image_size=4, padding=0), r"image_size: got 4; allowed: large enough"),
    (lambda: models.mlp(hidden=16), r"hidden: got 16; allowed: a sequence"),
    (lambda: models.transformer_small(hidden=10, heads=4), r"heads: got 4; allowed: a divisor of hidden \(10\)"),
])
def test_bad_arguments_give_one_line_errors(make, message):
    with pytest.raises(ValueError, match=message) as info:
        make()
    assert "\n" not in str(info.value)


def _half_filter_masks(model: nn.Module, names) -> dict:
    """Zeroes the first half of the filters of the named convs (weights and bias)."""
    modules = dict(model.named_modules())
    masks = {}
    for name in names:
        conv = modules[name]
        weight = torch.ones_like(conv.weight)
        weight[: conv.out_channels // 2] = 0
        masks[name] = {"weight": weight}
        if conv.bias is not None:
            bias = torch.ones_like(conv.bias)
            bias[: conv.out_channels // 2] = 0
            masks[name]["bias"] = bias
    return masks


@pytest.mark.parametrize("make,x,convs,aware", [
    (lambda: models.vgg_small(10, 3, (4, 8), image_size=16), torch.randn(2, 3, 16, 16),
     ["features.0", "features.3", "features.7"], False),
    (lambda: models.resnet_small(10, 3, (4, 8)), torch.randn(2, 3, 16, 16), None, True),
    (lambda: models.mobilenet_small(10, 3, (8, 16)), torch.randn(2, 3, 16, 16), ["conv1", "layers.0.pw", "layers.1.pw"],
     True),
    (lambda: models.digits_cnn(batch_norm=True), torch.randn(2, 1, 8, 8), ["conv1", "conv2"], False),
])
def test_cnns_speed_up_and_count_flops(make, x, convs, aware):
    pytest.importorskip("nni.compression.pytorch")
    from nni.compression.pytorch import ModelSpeedup, apply_compression_results
    from nni.compression.pytorch.utils.counter import count_flops_params
    from nni.compression.pytorch.utils.mask_conflict import fix_mask_conflict

    torch.manual_seed(0)
    model = make().eval()
    if convs is None:
        convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    masks = _half_filter_masks(model, convs)
    if aware:  # residual adds / grouped convs: the conflicts are resolved before speedup
        masks = fix_mask_conflict(masks, model, x[:1])
    masked = copy.deepcopy(model)
    apply_compression_results(masked, masks)
    flops_before, params_before, _ = count_flops_params(model, x[:1], verbose=False)
    assert params_before == n_params(model) - sum(
        m.weight.numel() + m.bias.numel() for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    ModelSpeedup(model, x, masks).speedup_model()
    flops_after, params_after, _ = count_flops_params(model, x[:1], verbose=False)
    assert flops_after < 0.7 * flops_before and params_after < params_before
    with torch.no_grad():
        assert torch.allclose(model(x), masked(x), atol=1e-5)


def test_transformer_head_pruning_and_speedup():
    pytest.importorskip("nni.compression.pytorch")
    from nni.algorithms.compression.pytorch.pruning import TransformerHeadPruner
    from nni.compression.pytorch import ModelSpeedup

    torch.manual_seed(0)
    model = models.transformer_small(3, 16, 4, 32, 2).eval()
    x = torch.randn(2, 5, 16)
    pruner = TransformerHeadPruner(model, [{"sparsity": 0.5, "op_types": ["Linear"]}], head_hidden_dim=4,
                                   dummy_input=x)
    pruner.compress()
    assert pruner.attention_name_groups == [[f"layers.{i}.{n}" for n in "qkvo"] for i in range(2)]
    with torch.no_grad():
        expected = model(x)
    masks = pruner.get_masks()
    pruner._unwrap_model()
    ModelSpeedup(model, x, masks).speedup_model()
    assert model.layers[0].q.out_features == 8 and model.layers[1].o.in_features == 8
    with torch.no_grad():
        assert torch.allclose(model(x), expected, atol=1e-5)
