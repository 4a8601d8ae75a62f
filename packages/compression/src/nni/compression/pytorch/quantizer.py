"""Quantizer framework: wrap the configured layers and fake-quantize their weight, input and output.

A :class:`Quantizer` replaces each selected module by a :class:`QuantizerModuleWrapper` (same name;
the original module becomes ``<name>.module``). For weight quantization the module's ``weight``
parameter is kept as ``module.old_weight`` (the float weight the optimizer updates) and
``module.weight`` becomes a buffer holding the quantized weight of the last forward. Quantization
state (``scale``, ``zero_point``, tracked ranges) is registered on the wrapped module, as in the
docs' ``qmodel.conv1.module.scale``. :meth:`Quantizer.export_model` writes the quantized weights
into the original parameters and removes the wrappers for good.
"""
from __future__ import annotations

import enum
import inspect
import logging
import math
import warnings
from typing import Any

import torch
from torch import nn

from .compressor import Compressor, LayerInfo, _get_parent
from .utils.config_validation import ConfigListError

__all__ = ["CALIBRATION_KEYS", "QuantGrad", "QuantType", "Quantizer", "QuantizerModuleWrapper"]

_logger = logging.getLogger(__name__)

#: EMA decay of the tracked input / output ranges
EMA_DECAY = 0.99

#: the keys a layer's entry of the calibration config may hold (the docs' ``weight_bit`` naming)
CALIBRATION_KEYS = ("weight_bit", "input_bit", "output_bit", "tracked_min_input", "tracked_max_input",
                    "tracked_min_output", "tracked_max_output")

_BN_FOLDABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


class QuantType(str, enum.Enum):
    """Which tensor a quantization applies to (compares equal to ``'input'`` / ``'weight'`` / ``'output'``)."""

    INPUT = "input"
    WEIGHT = "weight"
    OUTPUT = "output"

    def __str__(self) -> str:
        return self.value


class QuantGrad(torch.autograd.Function):
    """Autograd function of a quantization: the forward calls the quantizer's ``quantize_*``; the
    backward is :meth:`quant_backward`, by default the straight-through estimator (the gradient
    passes unchanged). Subclass and override :meth:`quant_backward`, then set
    ``quantizer.quant_grad = YourGrad`` to customise it.
    """

    @staticmethod
    def quant_backward(tensor: torch.Tensor, grad_output: torch.Tensor, quant_type: QuantType) -> torch.Tensor:
        """Gradient w.r.t. the quantization input ``tensor``: straight-through, ``grad_output``."""
        return grad_output

    @staticmethod
    def forward(ctx, tensor, quant_type, wrapper):  # noqa: D401 - autograd signature
        quantizer = wrapper.quantizer
        ctx.save_for_backward(tensor)
        ctx.quant_type = quant_type
        # the quantizer's current class: the backward of a subclass set as quant_grad
        ctx.grad_cls = quantizer.quant_grad or QuantGrad
        out = quantizer._dispatch(quant_type, tensor, wrapper)
        return out.clone() if out is tensor else out

    @staticmethod
    def backward(ctx, grad_output):
        (tensor,) = ctx.saved_tensors
        # a copy: quant_backward may edit it in place (as the docs' example does), and autograd can
        # hand over an expanded tensor whose elements share memory
        return ctx.grad_cls.quant_backward(tensor, grad_output.clone(), ctx.quant_type), None, None


class QuantizerModuleWrapper(nn.Module):
    """Wraps a module to quantize; its forward quantizes the input, the weight and the output as
    ``config['quant_types']`` says.

    Args:
        module: the wrapped module.
        module_name: its qualified name in the model.
        module_type: its class name.
        config: the config entry selected for it.
        quantizer: the owning :class:`Quantizer`.
        bn_module: the BatchNorm that follows the module, folded into its weight (BN folding).
    """

    def __init__(self, module: nn.Module, module_name: str, module_type: str, config: dict,
                 quantizer: "Quantizer", bn_module: nn.Module | None = None):
        super().__init__()
        self.module = module
        self.name = module_name
        self.type = module_type
        self.config = config
        object.__setattr__(self, "quantizer", quantizer)  # not a submodule
        self.bn_module = bn_module
        self.bn_name: str | None = None
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        # tensors registered on the wrapped module while wrapped (kept here while unwrapped)
        self._module_state: dict[str, torch.Tensor] = {}
        self._weight_param: nn.Parameter | None = None
        self._attached = False
        if "weight" in config["quant_types"]:
            self._weight_param = module.weight

    @property
    def quant_types(self) -> list[str]:
        return self.config["quant_types"]

    def quant_bits(self, quant_type: str) -> int:
        """The configured bits of ``quant_type``."""
        bits = self.config["quant_bits"]
        return bits[str(quant_type)] if isinstance(bits, dict) else bits

    # -- state on the wrapped module -------------------------------------------------------------
    def register_quant_state(self, name: str, value: torch.Tensor) -> None:
        """Register ``value`` (a buffer, or a parameter if it is an ``nn.Parameter``) on the wrapped
        module under ``name``; it is removed again when the model is unwrapped."""
        if name in self._module_state or hasattr(self.module, name):
            raise ValueError(f"layer '{self.name}': module already has an attribute {name!r}")
        self._module_state[name] = value
        if self._attached:
            self._register_on_module(name, value)

    def _register_on_module(self, name: str, value: torch.Tensor) -> None:
        if isinstance(value, nn.Parameter):
            self.module.register_parameter(name, value)
        else:
            self.module.register_buffer(name, value)

    def quant_state(self, name: str) -> torch.Tensor:
        """The current tensor of quantization state ``name`` (attached or not)."""
        module = self.module
        if self._attached:
            return module._parameters[name] if name in module._parameters else module._buffers[name]
        return self._module_state[name]

    def _attach(self) -> None:
        if self._attached:
            return
        module = self.module
        if self._weight_param is not None:
            del module._parameters["weight"]
            module.register_parameter("old_weight", self._weight_param)
            module.register_buffer("weight", self._weight_param.detach().clone())
        for name, value in self._module_state.items():
            self._register_on_module(name, value)
        self._attached = True

    def _detach(self) -> None:
        if not self._attached:
            return
        module = self.module
        for name in self._module_state:
            # the tensor object may have been replaced (e.g. by load_state_dict): keep the current one
            self._module_state[name] = module._parameters.pop(name, None) if name in module._parameters \
                else module._buffers.pop(name)
        if self._weight_param is not None:
            module._buffers.pop("weight", None)
            self._weight_param = module._parameters.pop("old_weight")
            module.register_parameter("weight", self._weight_param)
        self._attached = False

    # -- forward ---------------------------------------------------------------------------------
    def _forward_with(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        module = self.module
        if isinstance(module, nn.Linear):
            return nn.functional.linear(x, weight, bias)
        return module._conv_forward(x, weight, bias)

    def forward(self, *inputs, **kwargs):
        quantizer = self.quantizer
        types = self.quant_types
        module = self.module
        first = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
        if first is not None and ("input" in types or "weight" in types):
            quantizer._observe(self, "input", first)
        if "input" in types and first is not None:
            inputs = (quantizer._apply(QuantType.INPUT, first, self),) + tuple(inputs[1:])
        if "weight" in types:
            if self.bn_module is not None:
                weight, bias = quantizer.fold_bn(*inputs, wrapper=self)
            else:
                weight, bias = module.old_weight, None
            qweight = quantizer._apply(QuantType.WEIGHT, weight, self)
            module._buffers["weight"] = qweight
            try:
                if self.bn_module is not None:
                    output = self._forward_with(inputs[0], qweight, bias)
                else:
                    output = module(*inputs, **kwargs)
            finally:
                # keep the values for inspection, not the graph (deepcopy / pickling need leaves)
                module._buffers["weight"] = qweight.detach()
        else:
            output = module(*inputs, **kwargs)
        if "output" in types and isinstance(output, torch.Tensor):
            quantizer._observe(self, "output", output)
            output = quantizer._apply(QuantType.OUTPUT, output, self)
        return output


class Quantizer(Compressor):
    """Base class of the quantizers: subclasses override ``quantize_weight`` / ``quantize_input`` /
    ``quantize_output`` (only the types they override may appear in ``quant_types``). Both documented
    signatures work: ``quantize_weight(wrapper, **kwargs)`` (the float weight in ``kwargs['weight']``)
    and the tutorial's ``quantize_weight(weight, config, **kwargs)`` (likewise ``quantize_output(output,
    config, **kwargs)`` and ``quantize_input(*inputs, config, **kwargs)``).

    Args:
        model: the model to quantize (selected layers are wrapped in place).
        config_list: entries with ``quant_types`` and ``quant_bits`` (see the docs' config_list).
        optimizer: its ``step()`` is hooked to :meth:`step_with_optimizer`.
        dummy_input: model input used to find Conv/Linear -> BatchNorm pairs; when given, the BN of a
            weight-quantized layer is folded into its weight (see :meth:`fold_bn`).
    """

    #: the autograd function applied around ``quantize_*`` (None: call them directly, e.g. LSQ)
    quant_grad: type[QuantGrad] | None = QuantGrad
    #: config keys besides quant_types / quant_bits this quantizer honours
    extra_config_keys: tuple[str, ...] = ()
    #: whether tracked ranges are exponential moving averages (True) or running min / max (False)
    ema_ranges: bool = True

    def __init__(self, model: nn.Module, config_list: list[dict], optimizer: torch.optim.Optimizer | None = None,
                 dummy_input: Any = None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.dummy_input = dummy_input
        self.conv_bn_patterns: dict[str, str] = {}
        if dummy_input is not None:
            self.conv_bn_patterns = self.find_conv_bn_patterns(model, dummy_input)
        self._bn_slots: list[tuple[QuantizerModuleWrapper, nn.Module]] = []
        self._exported_config: dict | None = None
        super().__init__(model, config_list, optimizer)
        self.patch_optimizer(self.step_with_optimizer)

    # -- configuration ---------------------------------------------------------------------------
    @classmethod
    def supported_quant_types(cls) -> list[str]:
        """The quant types whose ``quantize_*`` method this class overrides."""
        return [t for t in ("weight", "input", "output")
                if getattr(cls, f"quantize_{t}") is not getattr(Quantizer, f"quantize_{t}")]

    def validate_config(self, model: nn.Module, config_list: list[dict]) -> list[dict]:
        """Check ``config_list`` (one-line ``ValueError`` naming the entry and key) and return it canonical."""
        if config_list is None:
            raise ConfigListError(f"{type(self).__name__}: config_list is required")
        canonical = super().validate_config(model, config_list)
        supported = self.supported_quant_types()
        name = type(self).__name__
        for i, (entry, raw) in enumerate(zip(canonical, config_list)):
            at = f"config_list[{i}]"
            for key in ("quant_dtype", "quant_scheme", "quant_start_step"):
                if key in raw and key not in self.extra_config_keys:
                    raise ConfigListError(f"{at}[{key!r}]: {name} does not use {key!r}; only QAT_Quantizer does")
            if entry.get("exclude"):
                continue
            for qt in entry["quant_types"]:
                if qt not in supported:
                    raise ConfigListError(
                        f"{at}['quant_types']: {name} cannot quantize {qt!r}; it supports {supported}")
            for qt in entry["quant_types"]:
                bits = entry["quant_bits"][qt] if isinstance(entry["quant_bits"], dict) else entry["quant_bits"]
                self._check_entry_bits(f"{at}['quant_bits']", qt, bits, entry)
        return canonical

    def _check_entry_bits(self, where: str, quant_type: str, bits: int, entry: dict) -> None:
        """Subclasses reject bit widths they cannot honour (one-line ConfigListError)."""

    # -- wrapping --------------------------------------------------------------------------------
    def _wrap_modules(self, layer: LayerInfo, config: dict) -> QuantizerModuleWrapper:
        module = layer.module
        if "weight" in config["quant_types"] and not isinstance(getattr(module, "weight", None), nn.Parameter):
            raise ConfigListError(
                f"config_list selects layer '{layer.name}' ({layer.type}) for 'weight' quantization but it has "
                f"no weight parameter; select layers with a weight (e.g. Conv2d, Linear)")
        bn_module = None
        bn_name = self.conv_bn_patterns.get(layer.name)
        if bn_name is not None and "weight" in config["quant_types"]:
            bn_module = self.bound_model.get_submodule(bn_name)
        wrapper = QuantizerModuleWrapper(module, layer.name, layer.type, config, self, bn_module=bn_module)
        wrapper.bn_name = bn_name if bn_module is not None else None
        for qt in ("input", "weight"):
            if qt in config["quant_types"]:
                wrapper.register_quant_state("tracked_min_input", torch.tensor(math.inf))
                wrapper.register_quant_state("tracked_max_input", torch.tensor(-math.inf))
                break
        if "output" in config["quant_types"]:
            wrapper.register_quant_state("tracked_min_output", torch.tensor(math.inf))
            wrapper.register_quant_state("tracked_max_output", torch.tensor(-math.inf))
        self._init_wrapper(wrapper)
        device = next((t.device for t in module.parameters()), None) or next(
            (t.device for t in module.buffers()), torch.device("cpu"))
        wrapper.to(device)
        for name, value in list(wrapper._module_state.items()):
            wrapper._module_state[name] = value if value.device == device else (
                nn.Parameter(value.data.to(device)) if isinstance(value, nn.Parameter) else value.to(device))
        return wrapper

    def _init_wrapper(self, wrapper: QuantizerModuleWrapper) -> None:
        """Subclasses register their per-layer state here (``wrapper.register_quant_state``)."""

    def _wrap_model(self) -> None:
        for wrapper in self.modules_wrapper:
            wrapper._attach()
        super()._wrap_model()
        for wrapper in self.modules_wrapper:
            if wrapper.bn_module is not None:
                # the BN now lives in the wrapper (folded); its slot in the model passes through
                parent, attr = _get_parent(self.bound_model, wrapper.bn_name)
                setattr(parent, attr, nn.Identity())

    def _unwrap_model(self) -> None:
        for wrapper in self.modules_wrapper:
            if wrapper.bn_module is not None:
                parent, attr = _get_parent(self.bound_model, wrapper.bn_name)
                setattr(parent, attr, wrapper.bn_module)
        super()._unwrap_model()
        for wrapper in self.modules_wrapper:
            wrapper._detach()

    # -- quantization hooks (override) -----------------------------------------------------------
    def quantize_weight(self, wrapper: QuantizerModuleWrapper, **kwargs) -> torch.Tensor:
        """Return the quantized weight of ``wrapper``; ``kwargs['weight']`` is the float weight to
        quantize (``wrapper.module.old_weight``, BN-folded when folding is on). A subclass that
        does not override this cannot be configured for ``'weight'`` (checked by validate_config)."""
        return kwargs["weight"]

    def quantize_input(self, inputs: torch.Tensor, wrapper: QuantizerModuleWrapper, **kwargs) -> torch.Tensor:
        """Return the quantized first input of ``wrapper``'s forward (override to support ``'input'``)."""
        return inputs

    def quantize_output(self, output: torch.Tensor, wrapper: QuantizerModuleWrapper, **kwargs) -> torch.Tensor:
        """Return the quantized output of ``wrapper``'s forward (override to support ``'output'``)."""
        return output

    def _takes_config(self, method_name: str) -> bool:
        """Whether an override uses the docs' tutorial signature ``(tensor, config, **kwargs)``
        (``quantize_input(*inputs, config, **kwargs)``) instead of the API reference's."""
        cache = self.__dict__.setdefault("_signature_cache", {})
        if method_name not in cache:
            params = inspect.signature(getattr(self, method_name)).parameters
            cache[method_name] = "config" in params and "wrapper" not in params
        return cache[method_name]

    def _dispatch(self, quant_type: str, tensor: torch.Tensor, wrapper: QuantizerModuleWrapper) -> torch.Tensor:
        name = f"quantize_{QuantType(quant_type).value}"
        if self._takes_config(name):
            return getattr(self, name)(tensor, config=wrapper.config, wrapper=wrapper)
        if quant_type == QuantType.WEIGHT:
            return self.quantize_weight(wrapper, weight=tensor)
        if quant_type == QuantType.INPUT:
            return self.quantize_input(tensor, wrapper)
        return self.quantize_output(tensor, wrapper)

    def _apply(self, quant_type: QuantType, tensor: torch.Tensor, wrapper: QuantizerModuleWrapper) -> torch.Tensor:
        if self.quant_grad is None:
            return self._dispatch(quant_type, tensor, wrapper)
        return self.quant_grad.apply(tensor, quant_type, wrapper)

    # -- range tracking --------------------------------------------------------------------------
    def _should_track(self, wrapper: QuantizerModuleWrapper, kind: str) -> bool:
        """Ranges are tracked in training mode, and on the first forward whatever the mode."""
        return wrapper.training or not math.isfinite(wrapper.quant_state(f"tracked_min_{kind}").item())

    def _observe(self, wrapper: QuantizerModuleWrapper, kind: str, tensor: torch.Tensor) -> None:
        if not self._should_track(wrapper, kind):
            return
        with torch.no_grad():
            low, high = tensor.detach().min().float(), tensor.detach().max().float()
            tmin = wrapper.quant_state(f"tracked_min_{kind}")
            tmax = wrapper.quant_state(f"tracked_max_{kind}")
            if not math.isfinite(tmin.item()):
                tmin.copy_(low)
                tmax.copy_(high)
            elif self.ema_ranges:
                tmin.mul_(EMA_DECAY).add_((1 - EMA_DECAY) * low)
                tmax.mul_(EMA_DECAY).add_((1 - EMA_DECAY) * high)
            else:
                torch.minimum(tmin, low, out=tmin)
                torch.maximum(tmax, high, out=tmax)

    @staticmethod
    def tracked_range(wrapper: QuantizerModuleWrapper, kind: str) -> tuple[float, float] | None:
        """The tracked ``(min, max)`` of ``wrapper``'s ``'input'`` / ``'output'``, None if never observed."""
        try:
            low = wrapper.quant_state(f"tracked_min_{kind}").item()
            high = wrapper.quant_state(f"tracked_max_{kind}").item()
        except KeyError:
            return None
        return (low, high) if math.isfinite(low) else None

    # -- BN folding ------------------------------------------------------------------------------
    def find_conv_bn_patterns(self, model: nn.Module, dummy_input: Any) -> dict[str, str]:
        """``{conv name: bn name}`` for every Conv/Linear whose output feeds only a BatchNorm module
        (found on the torch.fx graph of ``model``; ``dummy_input`` checks that it runs)."""
        from .utils._graph import trace

        graph_module = trace(model, dummy_input)
        modules = dict(model.named_modules())
        patterns = {}
        for node in graph_module.graph.nodes:
            if node.op != "call_module" or not isinstance(modules.get(node.target), _BN_FOLDABLE):
                continue
            users = list(node.users)
            if len(users) == 1 and users[0].op == "call_module" and isinstance(modules.get(users[0].target), _BN_TYPES):
                bn = modules[users[0].target]
                if bn.num_features == modules[node.target].weight.shape[0] and bn.track_running_stats:
                    patterns[node.target] = users[0].target
        return patterns

    def fold_bn(self, *inputs: torch.Tensor, wrapper: QuantizerModuleWrapper) -> tuple[torch.Tensor, torch.Tensor]:
        """Fold ``wrapper.bn_module`` into the float weight: returns ``(weight, bias)`` such that the
        layer with them computes layer + BN. In training mode the batch statistics are used (and the
        BN's running statistics updated), in eval mode the running ones."""
        module, bn = wrapper.module, wrapper.bn_module
        weight = module.old_weight
        bias = module.bias if module.bias is not None else torch.zeros_like(bn.running_mean)
        if wrapper.training:
            with torch.no_grad():
                y = wrapper._forward_with(inputs[0], weight, bias)
                dims = [d for d in range(y.dim()) if d != 1]
                mean = y.mean(dim=dims)
                var = y.var(dim=dims, unbiased=False)
                n = y.numel() / y.shape[1]
                bn.num_batches_tracked.add_(1)
                momentum = bn.momentum if bn.momentum is not None else 1.0 / bn.num_batches_tracked.item()
                bn.running_mean.mul_(1 - momentum).add_(momentum * mean)
                bn.running_var.mul_(1 - momentum).add_(momentum * var * n / max(n - 1, 1))
        else:
            mean, var = bn.running_mean, bn.running_var
        gamma = bn.weight if bn.affine else torch.ones_like(mean)
        beta = bn.bias if bn.affine else torch.zeros_like(mean)
        factor = gamma / torch.sqrt(var + bn.eps)
        shape = [-1] + [1] * (weight.dim() - 1)
        return weight * factor.reshape(shape), beta + (bias - mean) * factor

    # -- steps -----------------------------------------------------------------------------------
    def step_with_optimizer(self) -> None:
        """Called after every ``optimizer.step()`` (or by hand when there is no optimizer): counts steps."""
        for wrapper in self.get_modules_wrapper():
            wrapper.steps.add_(1)

    def record_shape(self, model: nn.Module, dummy_input: Any) -> dict[str, tuple]:
        """Run ``dummy_input`` through ``model`` and return ``{layer: (input shape, output shape)}``
        of the quantized layers (also stored as ``wrapper.input_shape`` / ``wrapper.output_shape``)."""
        from .utils._graph import as_tuple

        shapes: dict[str, tuple] = {}

        def hook(wrapper, inputs, output):
            wrapper.input_shape = tuple(inputs[0].shape) if inputs else None
            wrapper.output_shape = tuple(output.shape) if isinstance(output, torch.Tensor) else None
            shapes[wrapper.name] = (wrapper.input_shape, wrapper.output_shape)

        handles = [w.register_forward_hook(hook) for w in self.get_modules_wrapper()]
        try:
            with torch.no_grad():
                model(*as_tuple(dummy_input))
        finally:
            for handle in handles:
                handle.remove()
        return shapes

    # -- calibration config / export -------------------------------------------------------------
    def _calibration_entry(self, wrapper: QuantizerModuleWrapper) -> dict:
        entry: dict[str, Any] = {}
        types = wrapper.quant_types
        for qt in ("weight", "input", "output"):
            if qt in types:
                entry[f"{qt}_bit"] = int(wrapper.quant_bits(qt))
        for kind in ("input", "output"):
            if kind == "input" and not ("input" in types or "weight" in types):
                continue
            if kind == "output" and "output" not in types:
                continue
            tracked = self.tracked_range(wrapper, kind)
            if tracked is None:
                _logger.warning("layer '%s': its %s range was never observed; run the model before exporting",
                                wrapper.name, kind)
                continue
            entry[f"tracked_min_{kind}"], entry[f"tracked_max_{kind}"] = tracked
        return entry

    def calibration_config(self) -> dict[str, dict]:
        """``{layer name: {'weight_bit': 8, 'tracked_min_input': .., 'tracked_max_input': .., ...}}``:
        ``<type>_bit`` for each quantized type; the tracked input range for layers whose weight or
        input is quantized; the tracked output range for layers whose output is quantized."""
        if self._exported_config is not None:
            return self._exported_config
        return {wrapper.name: self._calibration_entry(wrapper) for wrapper in self.get_modules_wrapper()}

    def load_calibration_config(self, calibration_config: dict) -> None:
        """Set the tracked ranges from ``calibration_config`` (exported by this or another quantizer,
        e.g. to start QAT from post-training ranges or to resume). Bits in it must match the config_list."""
        if not isinstance(calibration_config, dict):
            raise ValueError(f"calibration_config must be a dict of layer name -> dict, got "
                             f"{type(calibration_config).__name__}")
        wrappers = {w.name: w for w in self.get_modules_wrapper()}
        for name, entry in calibration_config.items():
            wrapper = wrappers.get(name)
            if wrapper is None:
                _logger.warning("calibration_config: layer %r is not quantized by this quantizer; ignored", name)
                continue
            if not isinstance(entry, dict):
                raise ValueError(f"calibration_config[{name!r}] must be a dict, got {type(entry).__name__}")
            for qt in wrapper.quant_types:
                for key in (f"{qt}_bit", f"{qt}_bits"):
                    if key in entry and int(entry[key]) != wrapper.quant_bits(qt):
                        raise ValueError(f"calibration_config[{name!r}][{key!r}] is {entry[key]}, but config_list "
                                         f"quantizes {name}'s {qt} to {wrapper.quant_bits(qt)} bits")
            with torch.no_grad():
                for kind in ("input", "output"):
                    keys = (f"tracked_min_{kind}", f"tracked_max_{kind}")
                    if keys[0] in entry and keys[0] in wrapper._module_state:
                        for key in keys:
                            wrapper.quant_state(key).fill_(float(entry[key]))
            self._after_calibration_loaded(wrapper)

    def _after_calibration_loaded(self, wrapper: QuantizerModuleWrapper) -> None:
        """Subclasses derive their scales from newly loaded ranges here."""

    def _final_weight(self, wrapper: QuantizerModuleWrapper) -> torch.Tensor:
        """The weight to export: quantized (eval semantics); with BN folding, the quantized folded
        weight divided back by the BN factor, so that layer + BN (eval) computes what the simulation did."""
        module = wrapper.module
        was_training = wrapper.training
        wrapper.train(False)
        try:
            if wrapper.bn_module is None:
                return self._dispatch(QuantType.WEIGHT, module.old_weight.detach(), wrapper).detach()
            bn = wrapper.bn_module
            folded, _ = self.fold_bn(None, wrapper=wrapper)
            qweight = self._dispatch(QuantType.WEIGHT, folded.detach(), wrapper).detach()
            gamma = bn.weight.detach() if bn.affine else torch.ones_like(bn.running_mean)
            factor = gamma / torch.sqrt(bn.running_var + bn.eps)
            shape = [-1] + [1] * (qweight.dim() - 1)
            safe = torch.where(factor != 0, factor, torch.ones_like(factor)).reshape(shape)
            # a channel with gamma == 0 outputs beta whatever its weight: keep the float weight there
            return torch.where((factor != 0).reshape(shape), qweight / safe, module.old_weight.detach())
        finally:
            wrapper.train(was_training)

    def export_model(self, model_path: str, calibration_path: str | None = None, onnx_path: str | None = None,
                     input_shape=None, device=None) -> dict:
        """Save the model with quantized weights (the original state-dict keys, wrappers removed), the
        calibration config (``torch.save``) and optionally an ONNX model; return the calibration config.

        The wrappers are removed for good (BN modules return unfolded), so the model can go on to a
        speedup backend. ``input_shape`` is needed for ``onnx_path``; ``device`` places its dummy input.
        """
        if onnx_path is not None and input_shape is None:
            raise ValueError("export_model: onnx_path needs input_shape (the shape of the dummy input)")
        if self._exported_config is None:
            calibration_config = self.calibration_config()
            if self.is_wrapped:
                with torch.no_grad():
                    final = {w.name: self._final_weight(w) for w in self.get_modules_wrapper()
                             if "weight" in w.quant_types}
                self._unwrap_model()
                with torch.no_grad():
                    for wrapper in self.get_modules_wrapper():
                        if wrapper.name in final:
                            wrapper.module.weight.copy_(final[wrapper.name])
            self._optimizer_hooks_remove()
            self._exported_config = calibration_config
        self.export_model_save(self.bound_model, model_path, self._exported_config, calibration_path, onnx_path,
                               input_shape, device)
        return self._exported_config

    def _optimizer_hooks_remove(self) -> None:
        for handle in self._optimizer_hooks:
            handle.remove()
        self._optimizer_hooks = []

    def export_model_save(self, model: nn.Module, model_path: str, calibration_config: dict | None = None,
                          calibration_path: str | None = None, onnx_path: str | None = None, input_shape=None,
                          device=None) -> None:
        """Save ``model``'s state dict, ``calibration_config`` and optionally an ONNX model."""
        torch.save(model.state_dict(), model_path)
        _logger.info("Model state_dict saved to %s", model_path)
        if calibration_path is not None:
            torch.save(calibration_config, calibration_path)
            _logger.info("Calibration config saved to %s", calibration_path)
        if onnx_path is not None:
            if input_shape is None:
                raise ValueError("export_model: onnx_path needs input_shape (the shape of the dummy input)")
            dummy_input = torch.randn(*input_shape).to(device or "cpu")
            was_training = model.training
            model.eval()
            try:
                # the TorchScript exporter: needs only `onnx` (not onnxscript) and writes plain
                # Conv / Gemm nodes that int8 backends pattern-match; its deprecation note is noise here
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    torch.onnx.export(model, dummy_input, onnx_path, dynamo=False)
            except ModuleNotFoundError as err:
                raise RuntimeError(f"export_model: ONNX export needs the '{err.name}' package (pip install "
                                   f"'nni-compress[onnx]'), or leave onnx_path unset") from None
            finally:
                model.train(was_training)
            _logger.info("Model in onnx with input shape %s saved to %s", tuple(dummy_input.shape), onnx_path)
