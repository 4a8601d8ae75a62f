"""count_flops_params: the docs' anchors, masks, modes, custom ops, table."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nni.compression.pytorch import ModelSpeedup
from nni.compression.pytorch.utils.counter import count_flops_params


class NaiveModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5, 1)
        self.conv2 = nn.Conv2d(20, 50, 5, 1)
        self.fc1 = nn.Linear(4 * 4 * 50, 500)
        self.relu1 = nn.ReLU6()
        self.relu2 = nn.ReLU6()
        self.relu3 = nn.ReLU6()
        self.fc2 = nn.Linear(500, 10)
        self.pool1 = nn.MaxPool2d(2, 2)
        self.pool2 = nn.MaxPool2d(2, 2)

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = x.view(x.size(0), -1)
        return self.fc2(self.relu3(self.fc1(x)))


class Wrapper(nn.Module):
    """The shape of a pruner's module wrapper: inner ``module`` plus a ``weight_mask`` buffer."""

    def __init__(self, module, mask):
        super().__init__()
        self.module = module
        self.register_buffer("weight_mask", mask)

    def forward(self, x):
        return F.conv2d(x, self.module.weight * self.weight_mask, self.module.bias)


def test_docs_example_results_format():
    model = nn.Sequential()
    model.add_module("conv", nn.Conv2d(3, 5, 1))
    model.add_module("conv2", nn.Conv2d(5, 5, 1))
    flops, params, results = count_flops_params(model, (1, 3, 2, 2), verbose=False)
    assert (flops, params) == (160, 50)
    assert results == {
        "conv": {"flops": [60], "params": [20], "weight_size": [(5, 3, 1, 1)], "input_size": [(1, 3, 2, 2)],
                 "output_size": [(1, 5, 2, 2)], "module_type": ["Conv2d"]},
        "conv2": {"flops": [100], "params": [30], "weight_size": [(5, 5, 1, 1)], "input_size": [(1, 5, 2, 2)],
                  "output_size": [(1, 5, 2, 2)], "module_type": ["Conv2d"]}}


def test_naive_model_per_sample_and_after_speedup():
    model = NaiveModel()
    assert count_flops_params(model, (1, 1, 28, 28), verbose=False)[:2] == (2_293_000, 431_080)
    flops, params, _ = count_flops_params(model, (torch.randn(8, 1, 28, 28),), verbose=False)
    assert (flops, params) == (2_293_000, 431_080)  # per sample: batch size does not matter
    mask = torch.ones_like(model.conv1.weight)
    mask[::2] = 0
    bias = torch.ones_like(model.conv1.bias)
    bias[::2] = 0
    ModelSpeedup(model, torch.randn(2, 1, 28, 28), {"conv1": {"weight": mask, "bias": bias}}).speedup_model()
    assert model.conv1.out_channels == 10 and model.conv2.in_channels == 10
    assert count_flops_params(model, (1, 1, 28, 28), verbose=False)[:2] == (1_349_000, 418_320)


def test_masked_wrapper_counts_remaining_filters_only():
    model = NaiveModel()
    mask = torch.ones_like(model.conv1.weight)
    mask[:10] = 0
    model.conv1 = Wrapper(model.conv1, mask)
    flops, _, results = count_flops_params(model, torch.zeros(1, 1, 28, 28), verbose=False)
    assert flops == 2_149_000  # pruned input channels of conv2 are not seen (as the docs warn)
    assert results["conv1"]["params"] == [10 * 25 + 10] and "conv1.module" not in results


def test_full_mode_custom_ops_and_table(capsys):
    model = NaiveModel()
    flops, params, results = count_flops_params(model, (1, 1, 28, 28), mode="full")
    assert results["relu1"]["flops"] == [20 * 24 * 24] and results["pool1"]["flops"] == [20 * 12 * 12 * 4]
    assert flops == 2_293_000 + 11_520 + 11_520 + 3_200 + 3_200 + 500
    table = capsys.readouterr().out
    assert "conv1" in table and "288,000" in table and "FLOPs total: 2,322,940" in table
    custom = {nn.Linear: lambda m, x, y: {"flops": 1, "params": 2}}
    flops, params, _ = count_flops_params(model, (1, 1, 28, 28), custom_ops=custom, verbose=False)
    assert (flops, params) == (288_000 + 1_600_000 + 2, 520 + 25_050 + 4)
    with pytest.raises(ValueError, match="mode: 'fast'.*'default', 'full'"):
        count_flops_params(model, (1, 1, 28, 28), mode="fast")
    with pytest.raises(ValueError, match="x: expected"):
        count_flops_params(model, "1x1x28x28")
