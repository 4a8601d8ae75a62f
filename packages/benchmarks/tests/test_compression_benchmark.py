"""The ModelSpeedup benchmark on tiny widths: masks, equality, FLOPs and channel counts."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("nni.compression.pytorch")

from nni.compression_benchmark import bench_model, l1_filter_masks, make_resnet, make_vgg  # noqa: E402


def test_l1_filter_masks_prune_smallest_filters():
    model = make_vgg((4, 8, 8))
    with torch.no_grad():
        model.features[0].weight.copy_(torch.arange(1, 5).float().reshape(4, 1, 1, 1).expand(4, 3, 3, 3))
    masks = l1_filter_masks(model, 0.5)
    kept = (masks["features.0"]["weight"].reshape(4, -1) != 0).all(1).tolist()
    assert kept == [False, False, True, True] and masks["features.0"]["bias"].tolist() == [0, 0, 1, 1]
    assert "features.1" not in masks
    assert l1_filter_masks(model, 0.5, mask_bn=True)["features.1"]["weight"].tolist() == [0, 0, 1, 1]


@pytest.mark.parametrize("maker,aware", [(make_vgg, False), (make_resnet, True)])
def test_bench_model_tiny(maker, aware):
    result = bench_model("tiny", maker((4, 8, 8)), batch=2, repeats=1, dependency_aware=aware)
    assert result["max_abs_output_diff"] <= 1e-4
    assert result["flops_ratio"] <= 0.35 and result["params_speedup"] < 0.6 * result["params_original"]
    assert set(result["targets_met"]) == {"latency", "flops", "outputs_equal"}
