"""The v1 quantizers: Naive, QAT, DoReFa, BNN, LSQ and Observer (post-training).

All simulate quantization in float ("fake quantization"); ``export_model`` writes the quantized
weights and returns the calibration config a speedup backend consumes.
"""
from __future__ import annotations

import logging
import math
from typing import Any

import torch
from torch import nn

from nni.compression.pytorch.compressor import QuantGrad, Quantizer, QuantizerModuleWrapper
from nni.compression.pytorch.quantization.literal import calc_scale_zero_point, fake_quantize, quant_range
from nni.compression.pytorch.quantization.settings import get_quant_scheme_dtype
from nni.compression.pytorch.utils.config_validation import ConfigListError

__all__ = ["BNNQuantizer", "DoReFaQuantizer", "LsqQuantizer", "NaiveQuantizer", "ObserverQuantizer", "QAT_Quantizer"]

_logger = logging.getLogger(__name__)


def _register_scale(wrapper: QuantizerModuleWrapper, quant_type: str, scale: torch.Tensor,
                    zero_point: torch.Tensor, alias: bool) -> None:
    """``<type>_scale`` / ``<type>_zero_point`` buffers; the first registered also as ``scale`` /
    ``zero_point`` (the docs read ``module.scale`` of a weight-quantized layer)."""
    wrapper.register_quant_state(f"{quant_type}_scale", scale)
    wrapper.register_quant_state(f"{quant_type}_zero_point", zero_point)
    if alias:
        wrapper.register_quant_state("scale", scale)
        wrapper.register_quant_state("zero_point", zero_point)


def _primary_type(types: list[str]) -> str:
    return next(t for t in ("weight", "output", "input") if t in types)


class NaiveQuantizer(Quantizer):
    """Quantize weights to 8 bits (per tensor, symmetric; ``quant_bits`` may choose other widths).

    ``config_list`` defaults to every weighted layer: ``[{'quant_types': ['weight'], 'quant_bits': 8,
    'op_types': ['default']}]``, so ``NaiveQuantizer(model).compress()`` works without one.
    """

    def __init__(self, model: nn.Module, config_list: list[dict] | None = None,
                 optimizer: torch.optim.Optimizer | None = None):
        if config_list is None:
            config_list = [{"quant_types": ["weight"], "quant_bits": 8, "op_types": ["default"]}]
        super().__init__(model, config_list, optimizer)

    def _check_entry_bits(self, where, quant_type, bits, entry):
        if bits < 2:
            raise ConfigListError(f"{where}: NaiveQuantizer needs at least 2 bits (symmetric signed), got {bits}")

    def quantize_weight(self, wrapper, **kwargs):
        weight = kwargs["weight"]
        qmin, qmax = quant_range(wrapper.quant_bits("weight"), "int", symmetric=True)
        scale, zero_point = calc_scale_zero_point(weight.min(), weight.max(), qmin, qmax, symmetric=True)
        return fake_quantize(weight, scale, zero_point, qmin, qmax)


class QAT_Quantizer(Quantizer):  # noqa: N801 - NNI's public name
    """Quantization-aware training (Jacob et al., CVPR 2018): fake-quantized forward, float
    weights updated by straight-through gradients.

    Weights are quantized from their current range on every forward; inputs and outputs from
    ranges tracked as exponential moving averages (decay 0.99) of their min / max in training mode.
    ``quant_start_step`` (per entry) keeps a layer float until that many optimizer steps have run
    (ranges are tracked meanwhile). ``quant_dtype`` / ``quant_scheme`` (per entry or by
    :func:`~nni.compression.pytorch.quantization.settings.set_quant_scheme_dtype`) choose signed /
    unsigned and per-tensor / per-channel (weights only, channel = dim 0), symmetric / affine.

    Args:
        model: the model to quantize.
        config_list: quantization config entries.
        optimizer: its steps drive ``quant_start_step``; without one, call :meth:`step_with_optimizer`.
        dummy_input: enables BatchNorm folding of Conv/Linear -> BN pairs.
    """

    extra_config_keys = ("quant_dtype", "quant_scheme", "quant_start_step")

    def __init__(self, model: nn.Module, config_list: list[dict], optimizer: torch.optim.Optimizer | None = None,
                 dummy_input: Any = None):
        super().__init__(model, config_list, optimizer, dummy_input=dummy_input)
        if optimizer is None and any(w.config.get("quant_start_step", 0) > 0 for w in self.get_modules_wrapper()):
            _logger.warning("QAT_Quantizer: quant_start_step counts optimizer steps but no optimizer was given; "
                            "call quantizer.step_with_optimizer() after each step")

    @staticmethod
    def _setting(entry: dict, quant_type: str) -> tuple[str, str]:
        scheme, dtype = get_quant_scheme_dtype(quant_type)
        for key in ("quant_scheme", "quant_dtype"):
            value = entry.get(key)
            if isinstance(value, dict):
                value = value.get(quant_type)
            if value is not None:
                scheme, dtype = (value, dtype) if key == "quant_scheme" else (scheme, value)
        return scheme, dtype

    def _check_entry_bits(self, where, quant_type, bits, entry):
        scheme, dtype = self._setting(entry, quant_type)
        if scheme.startswith("per_channel") and quant_type != "weight":
            raise ConfigListError(f"{where.rsplit('[', 1)[0]}['quant_scheme']: per-channel schemes apply to 'weight' "
                                  f"only, got {scheme!r} for {quant_type!r}")
        if dtype == "int" and scheme.endswith("symmetric") and bits < 2:
            raise ConfigListError(f"{where}: symmetric 'int' quantization needs at least 2 bits, got {bits} "
                                  f"for {quant_type!r}")

    def _params(self, wrapper: QuantizerModuleWrapper, quant_type: str) -> tuple[int, int, bool, bool]:
        scheme, dtype = wrapper.quant_settings[quant_type]
        symmetric = scheme.endswith("symmetric")
        qmin, qmax = quant_range(wrapper.quant_bits(quant_type), dtype, symmetric=symmetric)
        return qmin, qmax, symmetric, scheme.startswith("per_channel")

    def _init_wrapper(self, wrapper):
        types = wrapper.quant_types
        wrapper.quant_settings = {qt: self._setting(wrapper.config, qt) for qt in types}
        primary = _primary_type(types)
        for qt in ("weight", "input", "output"):
            if qt not in types:
                continue
            per_channel = wrapper.quant_settings[qt][0].startswith("per_channel")
            shape = (wrapper.module.weight.shape[0],) if per_channel else ()
            _register_scale(wrapper, qt, torch.ones(shape), torch.zeros(shape), alias=qt == primary)

    def _active(self, wrapper: QuantizerModuleWrapper) -> bool:
        return wrapper.steps.item() >= wrapper.config.get("quant_start_step", 0)

    def quantize_weight(self, wrapper, **kwargs):
        weight = kwargs["weight"]
        if not self._active(wrapper):
            return weight
        qmin, qmax, symmetric, per_channel = self._params(wrapper, "weight")
        if per_channel:
            flat = weight.detach().reshape(weight.shape[0], -1)
            low, high = flat.min(dim=1).values, flat.max(dim=1).values
        else:
            low, high = weight.detach().min(), weight.detach().max()
        scale, zero_point = calc_scale_zero_point(low, high, qmin, qmax, symmetric)
        wrapper.quant_state("weight_scale").copy_(scale)
        wrapper.quant_state("weight_zero_point").copy_(zero_point)
        return fake_quantize(weight, scale, zero_point, qmin, qmax, axis=0 if per_channel else None)

    def _quantize_activation(self, tensor: torch.Tensor, wrapper: QuantizerModuleWrapper, kind: str) -> torch.Tensor:
        if not self._active(wrapper):
            return tensor
        qmin, qmax, symmetric, _ = self._params(wrapper, kind)
        low = wrapper.quant_state(f"tracked_min_{kind}")
        high = wrapper.quant_state(f"tracked_max_{kind}")
        scale, zero_point = calc_scale_zero_point(low, high, qmin, qmax, symmetric)
        wrapper.quant_state(f"{kind}_scale").copy_(scale)
        wrapper.quant_state(f"{kind}_zero_point").copy_(zero_point)
        return fake_quantize(tensor, scale, zero_point, qmin, qmax)

    def quantize_input(self, inputs, wrapper, **kwargs):
        return self._quantize_activation(inputs, wrapper, "input")

    def quantize_output(self, output, wrapper, **kwargs):
        return self._quantize_activation(output, wrapper, "output")


class DoReFaQuantizer(Quantizer):
    """DoReFa-Net weight quantization (Zhou et al., 2016): ``w_q = 2 quantize_k(tanh(w) /
    (2 max|tanh(w)|) + 1/2) - 1`` with ``quantize_k(x) = round((2^k - 1) x) / (2^k - 1)``, so the
    weights take ``2^k`` levels in ``[-1, 1]``; straight-through gradients."""

    def __init__(self, model: nn.Module, config_list: list[dict], optimizer: torch.optim.Optimizer | None = None):
        super().__init__(model, config_list, optimizer)

    def quantize_weight(self, wrapper, **kwargs):
        weight = kwargs["weight"]
        levels = 2 ** wrapper.quant_bits("weight") - 1
        out = torch.tanh(weight)
        denominator = 2 * out.abs().max()
        out = out / torch.where(denominator > 0, denominator, torch.ones_like(denominator)) + 0.5
        return 2 * torch.round(out * levels) / levels - 1


class _ClippedSTE(QuantGrad):
    """Straight-through estimator cancelled where ``|x| > 1`` (the BNN paper's ``1_{|x| <= 1}``)."""

    @staticmethod
    def quant_backward(tensor, grad_output, quant_type):
        return grad_output * (tensor.abs() <= 1).to(grad_output.dtype)


class BNNQuantizer(Quantizer):
    """Binarized neural networks (Courbariaux et al., 2016): weights and outputs (e.g. of
    ``Hardtanh``) become ``sign(x)`` in ``{-1, +1}`` (0 -> +1); gradients pass straight through where
    ``|x| <= 1``; after each optimizer step the float weights are clipped to ``[-1, 1]``. Bits must be 1."""

    quant_grad = _ClippedSTE

    def __init__(self, model: nn.Module, config_list: list[dict], optimizer: torch.optim.Optimizer | None = None):
        super().__init__(model, config_list, optimizer)

    def _check_entry_bits(self, where, quant_type, bits, entry):
        if bits != 1:
            raise ConfigListError(f"{where}: BNNQuantizer binarizes, quant_bits must be 1, got {bits}")

    @staticmethod
    def _sign(x: torch.Tensor) -> torch.Tensor:
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    def quantize_weight(self, wrapper, **kwargs):
        return self._sign(kwargs["weight"])

    def quantize_output(self, output, wrapper, **kwargs):
        return self._sign(output)

    def step_with_optimizer(self):
        super().step_with_optimizer()
        with torch.no_grad():
            for wrapper in self.get_modules_wrapper():
                if "weight" in wrapper.quant_types:
                    wrapper.module.old_weight.clamp_(-1, 1)


def _round_ste(x: torch.Tensor) -> torch.Tensor:
    return (torch.round(x) - x).detach() + x


def _grad_scale(x: torch.Tensor, factor: float) -> torch.Tensor:
    """``x`` in the forward, gradient multiplied by ``factor`` in the backward."""
    scaled = x * factor
    return (x - scaled).detach() + scaled


class LsqQuantizer(Quantizer):
    """Learned step size quantization (Esser et al., ICLR 2020): each quantized tensor has a
    trainable step ``s`` (``module.<type>_scale``, an ``nn.Parameter``):
    ``x_q = round(clamp(x / s, Qn, Qp)) * s`` with ``[Qn, Qp] = [-2^(b-1), 2^(b-1) - 1]``, the
    rounding straight-through and the gradient of ``s`` scaled by ``1 / sqrt(numel * Qp)``.
    ``s`` starts at ``2 mean|x| / sqrt(Qp)`` (weights: at wrapping; activations: first forward).
    The steps are added to ``optimizer`` as a new parameter group.
    """

    quant_grad = None  # the quantization is differentiable in s; rounding has its own STE

    def __init__(self, model: nn.Module, config_list: list[dict], optimizer: torch.optim.Optimizer | None = None,
                 dummy_input: Any = None):
        super().__init__(model, config_list, optimizer, dummy_input=dummy_input)
        if optimizer is not None:
            scales = [wrapper.quant_state(f"{qt}_scale") for wrapper in self.get_modules_wrapper()
                      for qt in wrapper.quant_types]
            if scales:
                optimizer.add_param_group({"params": scales})

    def _check_entry_bits(self, where, quant_type, bits, entry):
        if bits < 2:
            raise ConfigListError(f"{where}: LsqQuantizer needs at least 2 bits (signed range), got {bits}")

    @staticmethod
    def _bounds(wrapper: QuantizerModuleWrapper, quant_type: str) -> tuple[int, int]:
        return quant_range(wrapper.quant_bits(quant_type), "int")

    def _init_wrapper(self, wrapper):
        for qt in wrapper.quant_types:
            value = 0.0  # activations: set from the first batch
            if qt == "weight":
                _, qmax = self._bounds(wrapper, qt)
                value = 2 * wrapper.module.weight.detach().abs().mean().item() / math.sqrt(qmax)
            device = next((p.device for p in wrapper.module.parameters()), torch.device("cpu"))
            scale = nn.Parameter(torch.tensor(value, device=device))
            wrapper.register_quant_state(f"{qt}_scale", scale)

    def _quantize(self, x: torch.Tensor, wrapper: QuantizerModuleWrapper, quant_type: str) -> torch.Tensor:
        qmin, qmax = self._bounds(wrapper, quant_type)
        scale = wrapper.quant_state(f"{quant_type}_scale")
        if scale.item() == 0:
            with torch.no_grad():
                init = 2 * x.detach().abs().mean() / math.sqrt(qmax)
                scale.fill_(init.item() if init.item() > 0 else 1.0)
        step = _grad_scale(scale.abs().clamp_min(1e-8), 1.0 / math.sqrt(x.numel() * qmax))
        return _round_ste(torch.clamp(x / step, qmin, qmax)) * step

    def quantize_weight(self, wrapper, **kwargs):
        return self._quantize(kwargs["weight"], wrapper, "weight")

    def quantize_input(self, inputs, wrapper, **kwargs):
        return self._quantize(inputs, wrapper, "input")

    def quantize_output(self, output, wrapper, **kwargs):
        return self._quantize(output, wrapper, "output")

    def _calibration_entry(self, wrapper):
        entry = super()._calibration_entry(wrapper)
        for kind in ("input", "output"):
            if kind in wrapper.quant_types:  # the learned clipping range, not the observed one
                qmin, qmax = self._bounds(wrapper, kind)
                step = abs(wrapper.quant_state(f"{kind}_scale").item())
                entry[f"tracked_min_{kind}"], entry[f"tracked_max_{kind}"] = qmin * step, qmax * step
        return entry

    def _after_calibration_loaded(self, wrapper):
        with torch.no_grad():
            for kind in ("input", "output"):
                tracked = self.tracked_range(wrapper, kind)
                if kind in wrapper.quant_types and tracked is not None:
                    _, qmax = self._bounds(wrapper, kind)
                    wrapper.quant_state(f"{kind}_scale").fill_(max(abs(tracked[0]), abs(tracked[1])) / qmax or 1.0)


class ObserverQuantizer(Quantizer):
    """Post-training quantization: until :meth:`compress` the wrapped layers only record the min /
    max of what they see (run calibration batches through the model); :meth:`compress` then fixes
    scale and zero point from those ranges and switches the model to eval mode, after which the
    layers quantize and record nothing.

    As in the docs, settings are fixed: weights per-tensor symmetric signed (``quant_bits``, 8 ->
    qint8); inputs and outputs per-tensor affine unsigned with ``reduce_range`` (one bit less:
    8 -> ``[0, 127]``).
    """

    ema_ranges = False

    def __init__(self, model: nn.Module, config_list: list[dict], optimizer: torch.optim.Optimizer | None = None):
        self.compressed = False
        super().__init__(model, config_list, optimizer)

    def _check_entry_bits(self, where, quant_type, bits, entry):
        if bits < 2:
            raise ConfigListError(f"{where}: ObserverQuantizer needs at least 2 bits, got {bits}")

    def _init_wrapper(self, wrapper):
        primary = _primary_type(wrapper.quant_types)
        for qt in ("weight", "input", "output"):
            if qt in wrapper.quant_types:
                _register_scale(wrapper, qt, torch.ones(()), torch.zeros(()), alias=qt == primary)

    def _range_params(self, wrapper: QuantizerModuleWrapper, quant_type: str) -> tuple[int, int, bool]:
        bits = wrapper.quant_bits(quant_type)
        if quant_type == "weight":
            return (*quant_range(bits, "int", symmetric=True), True)
        return (*quant_range(bits, "uint", reduce_range=True), False)

    def _should_track(self, wrapper, kind):
        return not self.compressed

    def compress(self) -> nn.Module:
        """Fix scales and zero points from the observed ranges; quantize from now on (eval mode)."""
        if not self.compressed:
            for wrapper in self.get_modules_wrapper():
                self._fix_scales(wrapper)
            self.compressed = True
        self.bound_model.eval()
        return self.bound_model

    def _fix_scales(self, wrapper: QuantizerModuleWrapper) -> None:
        with torch.no_grad():
            for qt in wrapper.quant_types:
                qmin, qmax, symmetric = self._range_params(wrapper, qt)
                if qt == "weight":
                    weight = wrapper.module.old_weight
                    low, high = weight.min(), weight.max()
                else:
                    tracked = self.tracked_range(wrapper, qt)
                    if tracked is None:
                        raise ValueError(f"ObserverQuantizer.compress: layer '{wrapper.name}' saw no calibration "
                                         f"data ({qt}); run calibration batches through the model first")
                    low, high = torch.tensor(tracked[0]), torch.tensor(tracked[1])
                scale, zero_point = calc_scale_zero_point(low, high, qmin, qmax, symmetric)
                wrapper.quant_state(f"{qt}_scale").copy_(scale)
                wrapper.quant_state(f"{qt}_zero_point").copy_(zero_point)

    def _quantize(self, x: torch.Tensor, wrapper: QuantizerModuleWrapper, quant_type: str) -> torch.Tensor:
        if not self.compressed:
            return x
        qmin, qmax, _ = self._range_params(wrapper, quant_type)
        return fake_quantize(x, wrapper.quant_state(f"{quant_type}_scale"),
                             wrapper.quant_state(f"{quant_type}_zero_point"), qmin, qmax)

    def quantize_weight(self, wrapper, **kwargs):
        return self._quantize(kwargs["weight"], wrapper, "weight")

    def quantize_input(self, inputs, wrapper, **kwargs):
        return self._quantize(inputs, wrapper, "input")

    def quantize_output(self, output, wrapper, **kwargs):
        return self._quantize(output, wrapper, "output")

    def _after_calibration_loaded(self, wrapper):
        if self.compressed:
            self._fix_scales(wrapper)

    def export_model(self, model_path, calibration_path=None, onnx_path=None, input_shape=None, device=None):
        """As :meth:`Quantizer.export_model`; :meth:`compress` must have run (after calibration)."""
        if not self.compressed and self._exported_config is None:
            raise ValueError("ObserverQuantizer.export_model: call compress() after calibration first")
        return super().export_model(model_path, calibration_path, onnx_path, input_shape, device)

