"""Latency predictors for hardware-aware one-shot search (``ProxylessTrainer(latency_predictor=...)``).

A predictor is any callable ``predictor(module, example_inputs) -> float``: the cost of running
``module`` on ``example_inputs`` (a tuple of tensors of batch size 1). Two are built in: a FLOPs count
(deterministic, hardware-independent, no nni-compress needed) and the wall-clock
:class:`~nni.retiarii.strategy.hardware.MeasuredLatencyPredictor` shared with ``LatencyFilter``.
"""
from __future__ import annotations

from typing import Any, List, Tuple

import torch
import torch.nn as nn

from ...strategy.hardware import MeasuredLatencyPredictor  # one implementation, shared with LatencyFilter

__all__ = ['FlopsLatencyPredictor', 'MeasuredLatencyPredictor', 'count_flops']


def count_flops(module: nn.Module, example_inputs: Tuple[Any, ...]) -> float:
    """Multiply-accumulate operations of one forward pass of ``module`` (convolutions, linear layers, poolings, elementwise norms).

    Deliberately not nni-compress's ``count_flops_params`` (used by ``FlopsPredictor``): nni-nas does not
    depend on nni-compress, and that counter divides by the batch size and counts other layers (activations
    in ``mode='full'``, no LayerNorm / GroupNorm), so the predicted costs would change.
    """
    total: List[float] = [0.0]

    def hook(sub: nn.Module, inputs: Tuple[Any, ...], output: Any) -> None:
        if not isinstance(output, torch.Tensor):
            return
        if isinstance(sub, nn.modules.conv._ConvNd):
            kernel = sub.weight.numel() // sub.out_channels  # (in / groups) * prod(kernel)
            total[0] += output.numel() * kernel
        elif isinstance(sub, nn.Linear):
            total[0] += output.numel() * sub.in_features
        elif isinstance(sub, (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)):
            size = sub.kernel_size if isinstance(sub.kernel_size, tuple) else (sub.kernel_size,) * (output.dim() - 2)
            total[0] += output.numel() * float(torch.tensor(size).prod())
        elif isinstance(sub, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)):
            total[0] += 2 * output.numel()

    handles = [m.register_forward_hook(hook) for m in module.modules() if not list(m.children())]
    try:
        was_training = module.training
        module.eval()
        with torch.no_grad():
            module(*example_inputs)
        module.train(was_training)
    finally:
        for handle in handles:
            handle.remove()
    return total[0]


class FlopsLatencyPredictor:
    """Predicts cost as MFLOPs (millions of multiply-accumulates) of the module on the example input."""

    def __call__(self, module: nn.Module, example_inputs: Tuple[Any, ...]) -> float:
        return count_flops(module, example_inputs) / 1e6
