"""A small model zoo shared by NAS, compression (tests, examples) and the benchmarks.

torchvision cannot be installed beside the project's CPU torch, so the few small networks the
project needs are written here once: plain ``torch.nn`` modules (no mutation primitives), torch
being the only import, so they are ordinary fixed models for NAS, pruners, quantizers and
``ModelSpeedup`` alike.

Why here (``nni.retiarii.models``, in nni-nas): models are what NAS is about and nni-nas already
imports torch; nni-compress must not depend on nni-nas at run time, so the zoo is only in
nni-compress's ``test`` extra (its tests) and is imported by the compression examples and by
nni-benchmarks (which depends on both). Compression is a consumer of models, not their owner.

Constructors (each exercises one architecture feature):

- :func:`vgg_small` -- plain conv-BN-ReLU chains and max-pools (channel pruning + speedup of a chain).
- :func:`resnet_small` -- residual adds (dependency-aware pruning, ``ChannelDependency``).
- :func:`mobilenet_small` -- depthwise-separable blocks (grouped convs, ``GroupDependency``).
- :func:`digits_cnn` -- two convs + fc on scikit-learn's 8x8 digits, with or without BatchNorm.
- :func:`mlp` -- Linear-only network (fine-grained / Linear pruning, quantization of Linear).
- :func:`transformer_small` -- multi-head attention blocks with separate q/k/v/o (head pruning).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = [
    'vgg_small', 'resnet_small', 'mobilenet_small', 'digits_cnn', 'mlp', 'transformer_small',
    'VGGSmall', 'ResNetSmall', 'BasicBlock', 'MobileNetSmall', 'DepthwiseSeparable', 'DigitsCNN', 'MLP',
    'TransformerSmall', 'AttentionBlock',
]


def _positive_int(name: str, value, allowed: str = 'a positive int') -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f'{name}: got {value!r}; allowed: {allowed}')
    return value


def _widths(name: str, value) -> tuple[int, ...]:
    if isinstance(value, int) or not isinstance(value, Sequence) or len(value) == 0:
        raise ValueError(f'{name}: got {value!r}; allowed: a non-empty sequence of positive ints')
    for index, width in enumerate(value):
        _positive_int(f'{name}[{index}]', width)
    return tuple(value)


class VGGSmall(nn.Module):
    """VGG-style: per stage (conv3x3-BN-ReLU) x ``convs_per_stage`` + max-pool; then Linear-ReLU-Dropout-Linear.

    Module names: ``features.<i>`` (one ``nn.Sequential``), ``classifier.<i>``.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, widths: Sequence[int] = (32, 64, 128),
                 image_size: int = 32, hidden: int = 256, dropout: float = 0.5, convs_per_stage: int = 2):
        super().__init__()
        widths = _widths('widths', widths)
        for name, value in (('num_classes', num_classes), ('in_channels', in_channels), ('hidden', hidden),
                            ('convs_per_stage', convs_per_stage), ('image_size', image_size)):
            _positive_int(name, value)
        if image_size % 2 ** len(widths):
            raise ValueError(f'image_size: got {image_size}; allowed: a multiple of 2**len(widths) = '
                             f'{2 ** len(widths)} (one max-pool per stage)')
        layers: list[nn.Module] = []
        cin = in_channels
        for width in widths:
            for _ in range(convs_per_stage):
                layers += [nn.Conv2d(cin, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
                cin = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        side = image_size // 2 ** len(widths)
        self.classifier = nn.Sequential(nn.Linear(cin * side * side, hidden), nn.ReLU(inplace=True),
                                        nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the identity (or a 1x1 conv-BN ``downsample``), then ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
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


class ResNetSmall(nn.Module):
    """ResNet-style: stem conv3x3-BN-ReLU, stages of basic blocks (stride 2 from the second stage), global pool, fc.

    Module names: ``conv1``, ``bn1``, ``layers.<i>`` (``BasicBlock``), ``fc``.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, widths: Sequence[int] = (32, 64, 128),
                 blocks_per_stage: int = 2):
        super().__init__()
        widths = _widths('widths', widths)
        for name, value in (('num_classes', num_classes), ('in_channels', in_channels),
                            ('blocks_per_stage', blocks_per_stage)):
            _positive_int(name, value)
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        blocks: list[nn.Module] = []
        cin = widths[0]
        for index, width in enumerate(widths):
            blocks.append(BasicBlock(cin, width, 1 if index == 0 else 2))
            blocks += [BasicBlock(width, width, 1) for _ in range(blocks_per_stage - 1)]
            cin = width
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.layers(torch.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class DepthwiseSeparable(nn.Module):
    """Depthwise conv3x3 (``groups=cin``)-BN-ReLU, then pointwise conv1x1-BN-ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)
        self.pw = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x):
        return torch.relu(self.bn2(self.pw(torch.relu(self.bn1(self.dw(x))))))


class MobileNetSmall(nn.Module):
    """MobileNet(v1)-style: stem conv3x3-BN-ReLU, depthwise-separable blocks, global pool, fc.

    Module names: ``conv1``, ``bn1``, ``layers.<i>.{dw,bn1,pw,bn2}``, ``fc``.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, widths: Sequence[int] = (16, 32, 64),
                 strides: Sequence[int] | None = None, stem_width: int | None = None):
        super().__init__()
        widths = _widths('widths', widths)
        strides = tuple(strides) if strides is not None else (1,) + (2,) * (len(widths) - 1)
        if len(strides) != len(widths) or any(s not in (1, 2) for s in strides):
            raise ValueError(f'strides: got {strides!r}; allowed: one stride (1 or 2) per entry of widths '
                             f'({len(widths)})')
        stem = widths[0] if stem_width is None else stem_width
        for name, value in (('num_classes', num_classes), ('in_channels', in_channels), ('stem_width', stem)):
            _positive_int(name, value)
        self.conv1 = nn.Conv2d(in_channels, stem, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        blocks, cin = [], stem
        for width, stride in zip(widths, strides):
            blocks.append(DepthwiseSeparable(cin, width, stride))
            cin = width
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.layers(torch.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class DigitsCNN(nn.Module):
    """conv1 [-bn1] -relu1 -> conv2 [-bn2] -relu2 [-> pool] -> fc1 -relu3 -> fc2 (or one ``fc`` when ``hidden=None``).

    ReLUs and the pool are modules, registered in forward order, so quantizers can select them
    (``op_types: ['ReLU']``); parametric layers are created in the same order as the simple
    hand-written versions, so the same seed gives the same weights.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, widths: Sequence[int] = (16, 32),
                 hidden: int | None = 64, batch_norm: bool = False, padding: int = 1, pool: bool = True,
                 image_size: int = 8):
        super().__init__()
        widths = _widths('widths', widths)
        if len(widths) != 2:
            raise ValueError(f'widths: got {widths!r}; allowed: two ints (conv1 and conv2 output channels)')
        for name, value in (('num_classes', num_classes), ('in_channels', in_channels), ('image_size', image_size)):
            _positive_int(name, value)
        if hidden is not None:
            _positive_int('hidden', hidden, 'a positive int or None (one Linear layer)')
        if padding not in (0, 1):
            raise ValueError(f'padding: got {padding!r}; allowed: 0 or 1')
        side = image_size - 4 + 4 * padding
        if pool:
            side //= 2
        if side <= 0:
            raise ValueError(f'image_size: got {image_size}; allowed: large enough for two 3x3 convs '
                             f'(padding {padding}){" and a 2x2 pool" if pool else ""}')
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=padding)
        if batch_norm:
            self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(widths[0], widths[1], 3, padding=padding)
        if batch_norm:
            self.bn2 = nn.BatchNorm2d(widths[1])
        self.relu2 = nn.ReLU()
        if pool:
            self.pool = nn.MaxPool2d(2)
        flat = widths[1] * side * side
        if hidden is None:
            self.fc = nn.Linear(flat, num_classes)
        else:
            self.fc1 = nn.Linear(flat, hidden)
            self.relu3 = nn.ReLU()
            self.fc2 = nn.Linear(hidden, num_classes)
        self.batch_norm, self.use_pool, self.hidden = batch_norm, pool, hidden

    def forward(self, x):
        x = self.conv1(x)
        x = self.relu1(self.bn1(x) if self.batch_norm else x)
        x = self.conv2(x)
        x = self.relu2(self.bn2(x) if self.batch_norm else x)
        if self.use_pool:
            x = self.pool(x)
        x = torch.flatten(x, 1)
        if self.hidden is None:
            return self.fc(x)
        return self.fc2(self.relu3(self.fc1(x)))


class MLP(nn.Module):
    """Flatten, then ``fc1``-``relu1``-...-``fc<n>`` (Linear layers only)."""

    def __init__(self, in_features: int = 64, hidden: Sequence[int] = (64,), num_classes: int = 10):
        super().__init__()
        _positive_int('in_features', in_features)
        _positive_int('num_classes', num_classes)
        if isinstance(hidden, int) or not isinstance(hidden, Sequence):
            raise ValueError(f'hidden: got {hidden!r}; allowed: a sequence of positive ints (may be empty)')
        for index, width in enumerate(hidden):
            _positive_int(f'hidden[{index}]', width)
        sizes = [in_features, *hidden, num_classes]
        self.depth = len(sizes) - 1
        for index in range(self.depth):
            self.add_module(f'fc{index + 1}', nn.Linear(sizes[index], sizes[index + 1]))
            if index < self.depth - 1:
                self.add_module(f'relu{index + 1}', nn.ReLU())

    def forward(self, x):
        x = torch.flatten(x, 1)
        for index in range(1, self.depth):
            x = getattr(self, f'relu{index}')(getattr(self, f'fc{index}')(x))
        return getattr(self, f'fc{self.depth}')(x)


class AttentionBlock(nn.Module):
    """Multi-head self-attention with separate Linear ``q``/``k``/``v``/``o``, post-LayerNorm, then a residual FFN.

    Heads are split with ``view(b, s, -1, head_dim)`` (not a literal head count), so a head-pruned
    block still runs after ``ModelSpeedup`` shrinks q/k/v/o.
    """

    def __init__(self, hidden: int = 16, heads: int = 4, ffn: int = 32):
        super().__init__()
        if hidden % heads:
            raise ValueError(f'heads: got {heads}; allowed: a divisor of hidden ({hidden})')
        self.head_dim = hidden // heads
        self.q, self.k, self.v, self.o = (nn.Linear(hidden, hidden) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(hidden, ffn), nn.Linear(ffn, hidden)
        self.ln = nn.LayerNorm(hidden)

    def forward(self, x):
        b, s, _ = x.shape
        d = self.head_dim
        q, k, v = (t.view(b, s, -1, d).transpose(1, 2) for t in (self.q(x), self.k(x), self.v(x)))
        att = torch.softmax(q @ k.transpose(-2, -1) / d ** 0.5, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().reshape(b, s, -1)
        x = self.ln(x + self.o(y))
        return x + self.fc2(torch.relu(self.fc1(x)))


class TransformerSmall(nn.Module):
    """``depth`` attention blocks (``layers.<i>``) on ``[batch, seq, hidden]`` inputs, mean over seq, ``head``."""

    def __init__(self, num_classes: int = 3, hidden: int = 16, heads: int = 4, ffn: int = 32, depth: int = 2):
        super().__init__()
        for name, value in (('num_classes', num_classes), ('hidden', hidden), ('heads', heads), ('ffn', ffn),
                            ('depth', depth)):
            _positive_int(name, value)
        self.layers = nn.ModuleList([AttentionBlock(hidden, heads, ffn) for _ in range(depth)])
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.head(x.mean(1))


def vgg_small(num_classes: int = 10, in_channels: int = 3, widths: Sequence[int] = (32, 64, 128),
              image_size: int = 32, hidden: int = 256, dropout: float = 0.5) -> VGGSmall:
    """VGG-style CNN (plain conv-BN-ReLU chains, max-pools): channel pruning and speedup of a chain."""
    return VGGSmall(num_classes, in_channels, widths, image_size, hidden, dropout)


def resnet_small(num_classes: int = 10, in_channels: int = 3, widths: Sequence[int] = (32, 64, 128),
                 blocks_per_stage: int = 2) -> ResNetSmall:
    """ResNet-style CNN (residual adds): dependency-aware pruning (convs joined by an add prune alike)."""
    return ResNetSmall(num_classes, in_channels, widths, blocks_per_stage)


def mobilenet_small(num_classes: int = 10, in_channels: int = 3, widths: Sequence[int] = (16, 32, 64),
                    strides: Sequence[int] | None = None) -> MobileNetSmall:
    """MobileNet-style CNN (depthwise-separable blocks): grouped convs in pruning and speedup."""
    return MobileNetSmall(num_classes, in_channels, widths, strides)


def digits_cnn(num_classes: int = 10, in_channels: int = 1, widths: Sequence[int] = (16, 32),
               hidden: int | None = 64, batch_norm: bool = False, padding: int = 1, pool: bool = True,
               image_size: int = 8) -> DigitsCNN:
    """Two-conv CNN for scikit-learn's 8x8 digits (with or without BatchNorm): the examples' and tests' workhorse.

    The default is conv(1->16)-conv(16->32)-maxpool-fc(512->64)-fc(64->10).
    """
    return DigitsCNN(num_classes, in_channels, widths, hidden, batch_norm, padding, pool, image_size)


def mlp(in_features: int = 64, hidden: Sequence[int] = (64,), num_classes: int = 10) -> MLP:
    """Linear-only network (inputs flattened): Linear pruning / quantization without convs."""
    return MLP(in_features, hidden, num_classes)


def transformer_small(num_classes: int = 3, hidden: int = 16, heads: int = 4, ffn: int = 32,
                      depth: int = 2) -> TransformerSmall:
    """Attention blocks with separate q/k/v/o Linear layers: TransformerHeadPruner and head speedup."""
    return TransformerSmall(num_classes, hidden, heads, ffn, depth)
