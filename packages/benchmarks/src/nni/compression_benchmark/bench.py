"""Masked vs sped-up latency, FLOPs and output difference."""
from __future__ import annotations

import copy
import statistics
import time
from typing import Any

import torch
from torch import nn

from nni.compression.pytorch import ModelSpeedup, apply_compression_results
from nni.compression.pytorch.utils.counter import count_flops_params
from nni.compression.pytorch.utils.mask_conflict import fix_mask_conflict
from nni.compression.pytorch.utils.shape_dependency import ChannelDependency

from nni.retiarii.models import resnet_small, vgg_small

TARGET_LATENCY_RATIO = 0.6
TARGET_FLOPS_RATIO = 0.3


def make_vgg(widths=(32, 64, 128)) -> nn.Module:
    """The zoo's VGG-style CNN on 3x32x32 inputs (6 conv-BN-ReLU at the default widths, 2 Linear)."""
    return vgg_small(10, 3, widths)


def make_resnet(widths=(32, 64, 128)) -> nn.Module:
    """The zoo's ResNet-style CNN on 3x32x32 inputs (stem + 6 basic blocks with residual adds)."""
    return resnet_small(10, 3, widths)


def _randomise_bn(model: nn.Module, generator: torch.Generator) -> None:
    """Gives BNs trained-looking statistics so the benchmark does not rely on identity BNs."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.uniform_(-0.5, 0.5, generator=generator)


def _following_bn(model: nn.Module) -> dict[str, str]:
    """conv name -> the BatchNorm2d right after it (by registration order, which matches these models)."""
    pairs, previous = {}, None
    for name, module in model.named_modules():
        if isinstance(module, nn.BatchNorm2d) and previous is not None:
            pairs[previous] = name
            previous = None
        elif isinstance(module, nn.Conv2d):
            previous = name
    return pairs


def l1_filter_masks(model: nn.Module, sparsity: float, dummy_input: torch.Tensor | None = None,
                    mask_bn: bool = False) -> dict[str, Any]:
    """L1-filter masks: in every conv, the ``int(n * sparsity)`` filters with the smallest L1 norm.

    With ``dummy_input`` the masks are dependency-aware: convs of one ChannelDependency set
    (joined by residual adds) prune the same filters, chosen by the L1 norm summed over the set.
    Like L1FilterPruner, only the convs are masked (a pruned channel leaves BN as a constant,
    which ModelSpeedup folds exactly); ``mask_bn=True`` also masks the BatchNorm after each conv.
    """
    convs = {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    if dummy_input is not None:
        groups = ChannelDependency(model, dummy_input).dependency_sets
    else:
        groups = [{name} for name in convs]
    bns = _following_bn(model)
    modules = dict(model.named_modules())
    masks: dict[str, Any] = {}
    for group in groups:
        names = sorted(group)
        score = sum(convs[n].weight.detach().abs().reshape(convs[n].out_channels, -1).sum(1) for n in names)
        pruned = torch.argsort(score, stable=True)[: int(score.numel() * sparsity)]
        for name in names:
            weight = torch.ones_like(convs[name].weight)
            weight[pruned] = 0
            masks[name] = {"weight": weight}
            if convs[name].bias is not None:
                bias = torch.ones_like(convs[name].bias)
                bias[pruned] = 0
                masks[name]["bias"] = bias
            if mask_bn and name in bns:
                bn = modules[bns[name]]
                keep = torch.ones_like(bn.weight)
                keep[pruned] = 0
                masks[bns[name]] = {"weight": keep, "bias": keep.clone()}
    return masks


def _latency(model: nn.Module, x: torch.Tensor, repeats: int) -> float:
    with torch.no_grad():
        model(x)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_model(name: str, model: nn.Module, batch: int = 64, repeats: int = 7, sparsity: float = 0.5,
                dependency_aware: bool = False, seed: int = 0) -> dict[str, Any]:
    """Masks ``model`` at ``sparsity`` (L1 filter), speeds it up and compares with the masked model."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    _randomise_bn(model, generator)
    model.eval()
    x = torch.randn(batch, 3, 32, 32, generator=generator)
    masks = l1_filter_masks(model, sparsity, x[:1] if dependency_aware else None)
    if dependency_aware:
        masks = fix_mask_conflict(masks, model, x[:1])
    masked = copy.deepcopy(model)
    apply_compression_results(masked, masks)
    flops_full, params_full, _ = count_flops_params(model, x[:1], verbose=False)
    start = time.perf_counter()
    ModelSpeedup(model, x[:2], masks).speedup_model()
    speedup_s = time.perf_counter() - start
    flops_fast, params_fast, _ = count_flops_params(model, x[:1], verbose=False)
    with torch.no_grad():
        diff = float((model(x) - masked(x)).abs().max())
    t_masked = _latency(masked, x, repeats)
    t_fast = _latency(model, x, repeats)
    result = {
        "model": name, "batch": batch, "sparsity": sparsity, "dependency_aware": dependency_aware,
        "threads": torch.get_num_threads(), "repeats": repeats,
        "masked_latency_s": round(t_masked, 5), "speedup_latency_s": round(t_fast, 5),
        "latency_ratio": round(t_fast / t_masked, 3),
        "flops_original": flops_full, "flops_speedup": flops_fast,
        "flops_ratio": round(flops_fast / flops_full, 3),
        "params_original": params_full, "params_speedup": params_fast,
        "max_abs_output_diff": diff, "speedup_seconds": round(speedup_s, 3),
    }
    result["targets_met"] = {"latency": result["latency_ratio"] <= TARGET_LATENCY_RATIO,
                             "flops": result["flops_ratio"] <= TARGET_FLOPS_RATIO,
                             "outputs_equal": diff <= 1e-4}
    return result


def run_all(batch: int = 64, repeats: int = 7, threads: int | None = 1) -> list[dict[str, Any]]:
    """Both benchmarks; ``threads=None`` leaves torch's thread count as is."""
    if threads is not None:
        torch.set_num_threads(threads)
    return [bench_model("vgg", make_vgg(), batch, repeats),
            bench_model("resnet", make_resnet(), batch, repeats, dependency_aware=True)]
