"""Hypermodules: modules whose structure is searched. ``AutoActivation`` (Ramachandran et al., 2017)."""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Optional, Sequence

import torch
import torch.nn as nn

from ...utils import generate_label
from .api import LayerChoice

__all__ = ['AutoActivation', 'UNARY_OPS', 'BINARY_OPS']

_EPS = 1e-7


class _Unary(nn.Module):
    """One unary function of the "Searching for Activation Functions" search space; ``beta`` is one scalar."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name  # the function is looked up by name so the module pickles
        self.beta = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return UNARY_OPS[self.name](x, self.beta)

    def extra_repr(self) -> str:
        return self.name


class _Binary(nn.Module):
    """One binary function; ``forward`` takes the pair ``[x1, x2]``."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name
        self.beta = nn.Parameter(torch.ones(1))

    def forward(self, pair: Sequence[torch.Tensor]) -> torch.Tensor:
        return BINARY_OPS[self.name](pair[0], pair[1], self.beta)

    def extra_repr(self) -> str:
        return self.name


# The unary and binary sets of Table 1 of arXiv:1710.05941 ("Searching for Activation Functions").
# Where the paper's function is undefined for part of the input, it is made total: sqrt and log take |x|,
# and division adds a small epsilon to |x2|, keeping its sign.
UNARY_OPS: 'OrderedDict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]' = OrderedDict([
    ('identity', lambda x, b: x),
    ('negative', lambda x, b: -x),
    ('abs', lambda x, b: torch.abs(x)),
    ('square', lambda x, b: x ** 2),
    ('cube', lambda x, b: x ** 3),
    ('sqrt', lambda x, b: torch.sqrt(torch.abs(x) + _EPS)),
    ('beta_mul', lambda x, b: b * x),
    ('beta_add', lambda x, b: x + b),
    ('log', lambda x, b: torch.log(torch.abs(x) + _EPS)),
    ('exp', lambda x, b: torch.exp(x)),
    ('sin', lambda x, b: torch.sin(x)),
    ('cos', lambda x, b: torch.cos(x)),
    ('sinh', lambda x, b: torch.sinh(x)),
    ('cosh', lambda x, b: torch.cosh(x)),
    ('tanh', lambda x, b: torch.tanh(x)),
    ('asinh', lambda x, b: torch.asinh(x)),
    ('atan', lambda x, b: torch.atan(x)),
    ('sinc', lambda x, b: torch.sinc(x)),
    ('max0', lambda x, b: torch.clamp(x, min=0)),
    ('min0', lambda x, b: torch.clamp(x, max=0)),
    ('sigmoid', lambda x, b: torch.sigmoid(x)),
    ('softplus', lambda x, b: nn.functional.softplus(x)),
    ('gaussian', lambda x, b: torch.exp(-x ** 2)),
    ('erf', lambda x, b: torch.erf(x)),
    ('beta', lambda x, b: b.expand_as(x)),
])

BINARY_OPS: 'OrderedDict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]]' = OrderedDict([
    ('add', lambda a, c, b: a + c),
    ('mul', lambda a, c, b: a * c),
    ('sub', lambda a, c, b: a - c),
    ('div', lambda a, c, b: a / (torch.where(c >= 0, torch.ones_like(c), -torch.ones_like(c)) * (torch.abs(c) + _EPS))),
    ('max', lambda a, c, b: torch.maximum(a, c)),
    ('min', lambda a, c, b: torch.minimum(a, c)),
    ('sigmoid_mul', lambda a, c, b: torch.sigmoid(a) * c),
    ('exp_sq_diff', lambda a, c, b: torch.exp(-b * (a - c) ** 2)),
    ('exp_abs_diff', lambda a, c, b: torch.exp(-b * torch.abs(a - c))),
    ('beta_mix', lambda a, c, b: b * a + (1 - b) * c),
])


class AutoActivation(nn.Module):
    """A searched activation function built of ``unit_num`` core units (arXiv:1710.05941).

    ``out = u_0(x)``, then for each unit ``i``: ``out = b_i(out, u_{i+1}(x))``, where every ``u`` is a
    ``LayerChoice`` over :data:`UNARY_OPS` (labels ``<label>/unary_<j>``) and every ``b`` one over
    :data:`BINARY_OPS` (labels ``<label>/binary_<i>``). Each op's ``beta`` is a single learnable scalar
    (not per channel). Shapes are preserved.
    """

    def __init__(self, unit_num: int = 1, label: Optional[str] = None):
        super().__init__()
        self.label = generate_label(label)
        if not isinstance(unit_num, int) or isinstance(unit_num, bool) or unit_num < 1:
            raise ValueError(f'AutoActivation {self.label!r}: unit_num must be a positive int, got {unit_num!r}')
        self.unit_num = unit_num
        self.unaries = nn.ModuleList([
            LayerChoice(OrderedDict((name, _Unary(name)) for name in UNARY_OPS), label=f'{self.label}/unary_{j}')
            for j in range(unit_num + 1)])
        self.binaries = nn.ModuleList([
            LayerChoice(OrderedDict((name, _Binary(name)) for name in BINARY_OPS), label=f'{self.label}/binary_{i}')
            for i in range(unit_num)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.unaries[0](x)
        for i, binary in enumerate(self.binaries):
            out = binary([out, self.unaries[i + 1](x)])
        return out
