"""Model spaces of the NAS benchmarks, labelled so that the benchmark execution engine
(``execution_engine='benchmark'``) can look each sampled architecture up in the benchmark's database.

- :class:`NasBench201Space`: the NAS-Bench-201 network (stem conv, 3 stages of ``num_cells`` cells with a
  residual reduction block between stages, global pooling, linear). Every cell shares one architecture:
  the choices are ``cell/0_1``, ``cell/0_2``, ``cell/0_3``, ``cell/1_2``, ``cell/1_3``, ``cell/2_3``, each over
  ``none``, ``skip_connect``, ``conv_1x1``, ``conv_3x3``, ``avg_pool_3x3`` (the values of a NAS-Bench-201 ``arch``).
- :class:`NasBench101Space`: the NAS-Bench-101 network (stem conv3x3, 3 stacks of ``num_modules_per_stack``
  cells, max-pooling and doubled channels between stacks). The choices are ``cell/num_nodes``,
  ``cell/op1`` ... ``cell/op5`` (``conv3x3-bn-relu``, ``conv1x1-bn-relu``, ``maxpool3x3``) and
  ``cell/input1`` ... ``cell/input6``.

Both run as real networks too (e.g. under ``fixed_arch`` for retraining the architecture a search found).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Optional, Sequence

import torch
import torch.nn as torch_nn

from .nn import pytorch as nn
from .wrapper import model_wrapper

__all__ = ['NB201_OPS', 'NB101_OPS', 'NasBench201Space', 'NasBench101Space']

#: The operators of NAS-Bench-201, named as in its database.
NB201_OPS = ('none', 'skip_connect', 'conv_1x1', 'conv_3x3', 'avg_pool_3x3')
#: The operators of NAS-Bench-101, named as in its database.
NB101_OPS = ('conv3x3-bn-relu', 'conv1x1-bn-relu', 'maxpool3x3')


class _ReLUConvBN(torch_nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__(torch_nn.ReLU(), torch_nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
                         torch_nn.BatchNorm2d(c_out))


class _ConvBNReLU(torch_nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int):
        super().__init__(torch_nn.Conv2d(c_in, c_out, kernel, 1, kernel // 2, bias=False), torch_nn.BatchNorm2d(c_out),
                         torch_nn.ReLU())


class _Zero(torch_nn.Module):
    """NAS-Bench-201's ``none``: the edge carries nothing (zeros of the output width)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.c_out = c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = list(x.shape)
        shape[1] = self.c_out
        return x.new_zeros(shape)


class _Skip(torch_nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.proj = None if c_in == c_out else _ReLUConvBN(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.proj is None else self.proj(x)


class _AvgPool(torch_nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.proj = None if c_in == c_out else _ReLUConvBN(c_in, c_out, 1)
        self.pool = torch_nn.AvgPool2d(3, 1, 1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x if self.proj is None else self.proj(x))


_NB201_FACTORIES = {
    'none': _Zero,
    'skip_connect': _Skip,
    'conv_1x1': lambda c_in, c_out: _ReLUConvBN(c_in, c_out, 1),
    'conv_3x3': lambda c_in, c_out: _ReLUConvBN(c_in, c_out, 3),
    'avg_pool_3x3': _AvgPool,
}


class _ResidualReduction(torch_nn.Module):
    """NAS-Bench-201's reduction block between stages: a stride-2 basic residual block."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.a = _ReLUConvBN(c_in, c_out, 3, 2)
        self.b = _ReLUConvBN(c_out, c_out, 3)
        self.shortcut = torch_nn.Sequential(torch_nn.AvgPool2d(2, 2), torch_nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x)) + self.shortcut(x)


def _check_ops(where: str, ops: Optional[Sequence[str]], allowed: Sequence[str]) -> list:
    ops = list(allowed) if ops is None else list(ops)
    bad = [op for op in ops if op not in allowed]
    if not ops or bad or len(set(ops)) != len(ops):
        raise ValueError(f'{where}: op_candidates must be distinct names among {", ".join(allowed)}, got {ops!r}')
    return ops


@model_wrapper
class NasBench201Space(nn.Module):
    """The NAS-Bench-201 search space (15,625 cells) as a runnable network.

    Args:
        num_channels: channels of the stem (16 in the benchmark); stages use 1x, 2x and 4x.
        num_cells: cells per stage (5 in the benchmark).
        num_classes: outputs of the classifier.
        op_candidates: a subset of :data:`NB201_OPS` to search (default: all five).
        in_channels: channels of the input images.
    """

    def __init__(self, num_channels: int = 16, num_cells: int = 5, num_classes: int = 10,
                 op_candidates: Optional[Sequence[str]] = None, in_channels: int = 3):
        super().__init__()
        ops = _check_ops('NasBench201Space', op_candidates, NB201_OPS)
        factories = OrderedDict((name, _NB201_FACTORIES[name]) for name in ops)
        self.stem = torch_nn.Sequential(torch_nn.Conv2d(in_channels, num_channels, 3, 1, 1, bias=False),
                                        torch_nn.BatchNorm2d(num_channels))
        layers = []
        c = num_channels
        for stage in range(3):
            if stage > 0:
                layers.append(_ResidualReduction(c, c * 2))
                c *= 2
            for _ in range(num_cells):
                layers.append(nn.NasBench201Cell(factories, c, c, num_tensors=4, label='cell'))
        self.cells = torch_nn.Sequential(*layers)
        self.head = torch_nn.Sequential(torch_nn.BatchNorm2d(c), torch_nn.ReLU(), torch_nn.AdaptiveAvgPool2d(1))
        self.classifier = torch_nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(x, 1))


_NB101_FACTORIES = {
    'conv3x3-bn-relu': lambda c: _ConvBNReLU(c, c, 3),
    'conv1x1-bn-relu': lambda c: _ConvBNReLU(c, c, 1),
    'maxpool3x3': lambda c: torch_nn.MaxPool2d(3, 1, 1),
}


@model_wrapper
class NasBench101Space(nn.Module):
    """The NAS-Bench-101 search space (cells of at most 7 vertices and 9 edges) as a runnable network.

    Args:
        stem_out_channels: channels after the stem (128 in the benchmark); doubled after each stack.
        num_stacks: stacks of cells, separated by 2x2 max-pooling (3 in the benchmark).
        num_modules_per_stack: cells per stack (3 in the benchmark).
        num_classes: outputs of the classifier.
        op_candidates: a subset of :data:`NB101_OPS` (default: all three).
        in_channels: channels of the input images.
    """

    def __init__(self, stem_out_channels: int = 128, num_stacks: int = 3, num_modules_per_stack: int = 3,
                 num_classes: int = 10, op_candidates: Optional[Sequence[str]] = None, in_channels: int = 3):
        super().__init__()
        ops = _check_ops('NasBench101Space', op_candidates, NB101_OPS)
        factories = OrderedDict((name, _NB101_FACTORIES[name]) for name in ops)
        c = stem_out_channels
        self.stem = _ConvBNReLU(in_channels, c, 3)
        layers = []
        c_in = c
        for stack in range(num_stacks):
            if stack > 0:
                layers.append(torch_nn.MaxPool2d(2, 2))
                c *= 2
            for _ in range(num_modules_per_stack):
                layers.append(nn.NasBench101Cell(factories, c_in, c, lambda i, o: _ConvBNReLU(i, o, 1),
                                                 max_num_nodes=7, max_num_edges=9, label='cell'))
                c_in = c
        self.cells = torch_nn.Sequential(*layers)
        self.pool = torch_nn.AdaptiveAvgPool2d(1)
        self.classifier = torch_nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(x, 1))
