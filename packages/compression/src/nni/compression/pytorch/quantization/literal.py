"""Fake-quantization arithmetic: integer ranges, scale / zero point, quantize-dequantize.

``q = clamp(round(x / scale) + zero_point, qmin, qmax)`` and ``x' = (q - zero_point) * scale``.
Affine ranges are widened to contain 0 so that 0 is exactly representable (zero padding, ReLU).
"""
from __future__ import annotations

import torch

__all__ = ["calc_scale_zero_point", "fake_quantize", "quant_range"]


def quant_range(bits: int, dtype: str = "int", symmetric: bool = False, reduce_range: bool = False) -> tuple[int, int]:
    """Integer range ``(qmin, qmax)`` of ``bits`` bits.

    ``'uint'``: ``[0, 2^b - 1]``; ``'int'``: ``[-2^(b-1), 2^(b-1) - 1]``, or the zero-centred
    ``[-(2^(b-1) - 1), 2^(b-1) - 1]`` when ``symmetric``. ``reduce_range`` drops one bit.
    """
    if reduce_range:
        bits -= 1
    if dtype == "uint":
        return 0, 2 ** bits - 1
    if symmetric:
        return -(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def calc_scale_zero_point(rmin: torch.Tensor, rmax: torch.Tensor, qmin: int, qmax: int,
                          symmetric: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero point mapping the real range ``[rmin, rmax]`` (scalars or per-channel
    vectors) onto ``[qmin, qmax]``.

    Symmetric: ``scale = max(|rmin|, |rmax|) / (qmax - zero_point)`` with ``zero_point`` 0 for
    signed ranges and the middle ``2^(b-1)`` for unsigned ones. Affine: ``scale = (rmax - rmin) /
    (qmax - qmin)``, ``zero_point = qmin - round(rmin / scale)``. A zero range gets scale 1.
    """
    rmin = torch.clamp(rmin.float(), max=0.0)
    rmax = torch.clamp(rmax.float(), min=0.0)
    if symmetric:
        zero_point = 0 if qmin < 0 else (qmin + qmax + 1) // 2
        scale = torch.maximum(-rmin, rmax) / (qmax - zero_point)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        return scale, torch.full_like(scale, float(zero_point))
    scale = (rmax - rmin) / (qmax - qmin)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    zero_point = torch.clamp(qmin - torch.round(rmin / scale), qmin, qmax)
    return scale, zero_point


def fake_quantize(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, qmin: int, qmax: int,
                  axis: int | None = None) -> torch.Tensor:
    """Quantize then dequantize ``x``; ``axis`` is the channel dim of per-channel ``scale``."""
    if axis is not None and scale.dim() == 1:
        shape = [1] * x.dim()
        shape[axis] = -1
        scale = scale.reshape(shape)
        zero_point = zero_point.reshape(shape)
    q = torch.clamp(torch.round(x / scale) + zero_point, qmin, qmax)
    return (q - zero_point) * scale
