"""Compressor framework: wrap the configured layers of a model and mask their weights.

A :class:`Pruner` replaces each selected module by a :class:`PrunerModuleWrapper` in its parent
(the wrapper keeps the name, the original module becomes ``<name>.module``); the wrapper holds
``weight_mask`` / ``bias_mask`` buffers and zeroes the masked weights before every forward. When an
optimizer is given, a step hook re-applies the masks right after each ``optimizer.step()`` so the
masked weights stay zero during fine-tuning.
"""
from __future__ import annotations

import abc
import logging
from typing import Any, Callable

import torch
from torch import nn

from .utils.config_validation import ConfigListError, validate_config_list

__all__ = ["Compressor", "LayerInfo", "Pruner", "PrunerModuleWrapper",
           "QuantGrad", "QuantType", "Quantizer", "QuantizerModuleWrapper"]

_QUANTIZER_NAMES = ("QuantGrad", "QuantType", "Quantizer", "QuantizerModuleWrapper")


def __getattr__(name: str):
    # the quantizer base lives in .quantizer, which imports this module: resolve lazily
    if name in _QUANTIZER_NAMES:
        from . import quantizer

        return getattr(quantizer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

_logger = logging.getLogger(__name__)


class LayerInfo:
    """A module of the model: its qualified ``name``, the ``module`` and its class name ``type``."""

    def __init__(self, name: str, module: nn.Module):
        self.name = name
        self.module = module
        self.type = type(module).__name__

    def __repr__(self) -> str:
        return f"LayerInfo({self.name!r}, {self.type})"


def _get_parent(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    *path, last = name.split(".")
    parent = model
    for part in path:
        parent = getattr(parent, part)
    return parent, last


class Compressor(abc.ABC):
    """Base class of pruners and quantizers.

    Args:
        model: the model to compress (modified in place: selected layers get wrapped).
        config_list: list of config dicts; for a layer matched by several, the last one wins.
        optimizer: optional optimizer whose ``step()`` is hooked (pass a fresh one: NNI may modify it).
    """

    #: what ``'default'`` in ``op_types`` expands to for this compressor
    default_op_types: tuple[str, ...] | None = None

    def __init__(self, model: nn.Module, config_list: list[dict], optimizer: torch.optim.Optimizer | None = None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.bound_model = model
        self.optimizer = optimizer
        self.config_list = self.validate_config(model, config_list)
        self.modules_to_compress: list[tuple[LayerInfo, dict]] | None = None
        self.modules_wrapper: list[nn.Module] = []
        self.is_wrapped = False
        self._collector_handles: dict[int, list] = {}
        self._next_collector_id = 0
        self._optimizer_hooks: list = []
        self.reset()

    # -- configuration -------------------------------------------------------------------------
    def validate_config(self, model: nn.Module, config_list: list[dict]) -> list[dict]:
        """Check ``config_list`` and return its canonical form (one-line ``ValueError`` otherwise)."""
        return validate_config_list(model, config_list, pruner=isinstance(self, Pruner),
                                    default_op_types=self.default_op_types)

    def select_config(self, layer: LayerInfo) -> dict | None:
        """The config for ``layer``: the last matching entry, wholesale; None if unmatched or excluded."""
        selected = None
        for config in self.config_list:
            if "op_types" in config and layer.type not in config["op_types"]:
                continue
            if "op_names" in config and layer.name not in config["op_names"]:
                continue
            selected = config
        if selected is None or selected.get("exclude", False):
            return None
        return selected

    def _detect_modules_to_compress(self) -> list[tuple[LayerInfo, dict]]:
        if self.modules_to_compress is None:
            self.modules_to_compress = []
            for name, module in self.bound_model.named_modules():
                if module is self.bound_model:
                    continue  # the root cannot be replaced inside a parent
                layer = LayerInfo(name, module)
                config = self.select_config(layer)
                if config is not None:
                    self.modules_to_compress.append((layer, config))
        return self.modules_to_compress

    def get_modules_to_compress(self) -> list[tuple[LayerInfo, dict]]:
        """The ``(LayerInfo, config)`` pairs of the layers this compressor compresses."""
        return self.modules_to_compress

    def get_modules_wrapper(self) -> list[nn.Module]:
        """The wrapper modules, in model order."""
        return self.modules_wrapper

    # -- wrapping ------------------------------------------------------------------------------
    @abc.abstractmethod
    def _wrap_modules(self, layer: LayerInfo, config: dict) -> nn.Module:
        """Return the wrapper module for ``layer`` (Pruner / Quantizer say how)."""

    def _wrap_model(self) -> None:
        for wrapper in reversed(self.modules_wrapper):
            parent, attr = _get_parent(self.bound_model, wrapper.name)
            setattr(parent, attr, wrapper)
        self.is_wrapped = True

    def _unwrap_model(self) -> None:
        """Put the original modules back (masks stay in the wrappers)."""
        for wrapper in self.modules_wrapper:
            parent, attr = _get_parent(self.bound_model, wrapper.name)
            setattr(parent, attr, wrapper.module)
        self.is_wrapped = False

    def reset(self, checkpoint: dict | None = None) -> None:
        """Unwrap, optionally load ``checkpoint`` (a state dict of the unwrapped model), re-wrap."""
        if self.is_wrapped:
            self._unwrap_model()
        if checkpoint is not None:
            self.bound_model.load_state_dict(checkpoint)
        self.modules_to_compress = None
        self.modules_wrapper = []
        for layer, config in self._detect_modules_to_compress():
            self.modules_wrapper.append(self._wrap_modules(layer, config))
        self._wrap_model()

    def set_wrappers_attribute(self, name: str, value: Any) -> None:
        """Give every wrapper attribute ``name``: a tensor becomes a buffer (saved in state_dict)."""
        for wrapper in self.get_modules_wrapper():
            if isinstance(value, torch.Tensor):
                wrapper.register_buffer(name, value.clone())
            else:
                setattr(wrapper, name, value)

    def compress(self) -> nn.Module:
        """Instrument the model (the configured layers are wrapped) and return it."""
        return self.bound_model

    def update_epoch(self, epoch: int) -> None:
        """Called at the start of each epoch; compressors with a schedule override it."""

    # -- hooks ---------------------------------------------------------------------------------
    def add_activation_collector(self, collector: Callable[[nn.Module, Any, Any], None]) -> int:
        """Call ``collector(wrapper, input, output)`` after every wrapper forward; returns an id."""
        handles = [wrapper.register_forward_hook(collector) for wrapper in self.get_modules_wrapper()]
        self._next_collector_id += 1
        self._collector_handles[self._next_collector_id] = handles
        return self._next_collector_id

    def remove_activation_collector(self, collector_id: int) -> None:
        """Remove a collector added by :meth:`add_activation_collector`."""
        for handle in self._collector_handles.pop(collector_id, []):
            handle.remove()

    def patch_optimizer(self, *tasks: Callable[[], None]) -> None:
        """Run ``tasks`` right after every ``self.optimizer.step()``."""
        if self.optimizer is None:
            return

        def hook(_optimizer, _args, _kwargs):
            for task in tasks:
                task()

        self._optimizer_hooks.append(self.optimizer.register_step_post_hook(hook))

    def patch_optimizer_before(self, *tasks: Callable[[], None]) -> None:
        """Run ``tasks`` right before every ``self.optimizer.step()`` (gradients are available)."""
        if self.optimizer is None:
            return

        def hook(_optimizer, _args, _kwargs):
            for task in tasks:
                task()

        self._optimizer_hooks.append(self.optimizer.register_step_pre_hook(hook))


class PrunerModuleWrapper(nn.Module):
    """Wraps a module to prune: holds ``weight_mask`` (and ``bias_mask``) and applies them.

    Args:
        module: the wrapped module (must have a ``weight``).
        module_name: its qualified name in the model.
        module_type: its class name.
        config: the config entry selected for it.
        pruner: the owning :class:`Pruner`.
    """

    def __init__(self, module: nn.Module, module_name: str, module_type: str, config: dict, pruner: "Pruner"):
        super().__init__()
        self.module = module
        self.name = module_name
        self.type = module_type
        self.config = config
        # a plain attribute would register the pruner's model as a submodule: keep it out
        object.__setattr__(self, "pruner", pruner)
        weight = module.weight
        self.register_buffer("weight_mask", torch.ones_like(weight.data))
        bias = getattr(module, "bias", None)
        if isinstance(bias, torch.Tensor):
            self.register_buffer("bias_mask", torch.ones_like(bias.data))
        else:
            self.register_buffer("bias_mask", None)

    def apply_masks(self) -> None:
        """Zero the masked weights (and biases) in place."""
        with torch.no_grad():
            self.module.weight.data.mul_(self.weight_mask)
            if self.bias_mask is not None and getattr(self.module, "bias", None) is not None:
                self.module.bias.data.mul_(self.bias_mask)

    def forward(self, *inputs, **kwargs):
        self.apply_masks()
        return self.module(*inputs, **kwargs)


class Pruner(Compressor):
    """Base class of the v1 pruners: subclasses implement :meth:`calc_mask`.

    Masks are computed by :meth:`compress` (through :meth:`update_mask`) and re-applied after every
    ``optimizer.step()`` when an optimizer is given.
    """

    default_op_types = None

    def __init__(self, model: nn.Module, config_list: list[dict], optimizer: torch.optim.Optimizer | None = None):
        super().__init__(model, config_list, optimizer)
        self.patch_optimizer(self._apply_all_masks)

    def _wrap_modules(self, layer: LayerInfo, config: dict) -> PrunerModuleWrapper:
        weight = getattr(layer.module, "weight", None)
        if not isinstance(weight, torch.Tensor):
            raise ConfigListError(
                f"config_list selects layer '{layer.name}' ({layer.type}) which has no weight to prune; "
                f"select layers with a weight (e.g. Conv2d, Linear)")
        wrapper = PrunerModuleWrapper(layer.module, layer.name, layer.type, config, self)
        return wrapper.to(weight.device)

    def _apply_all_masks(self) -> None:
        for wrapper in self.get_modules_wrapper():
            wrapper.apply_masks()

    @abc.abstractmethod
    def calc_mask(self, wrapper: PrunerModuleWrapper, **kwargs) -> dict | None:
        """Return ``{'weight_mask': t[, 'bias_mask': t]}`` for ``wrapper``, or None to keep its masks."""

    def update_mask(self) -> None:
        """Compute the masks of every wrapper with :meth:`calc_mask` and store them in its buffers."""
        for idx, wrapper in enumerate(self.get_modules_wrapper()):
            masks = self.calc_mask(wrapper, wrapper_idx=idx)
            if masks is not None:
                self._set_masks(wrapper, masks)

    @staticmethod
    def _set_masks(wrapper: PrunerModuleWrapper, masks: dict) -> None:
        for key, value in masks.items():
            if key not in ("weight_mask", "bias_mask"):
                raise KeyError(f"calc_mask returned unknown mask key {key!r}; expected 'weight_mask' / 'bias_mask'")
            if value is None or getattr(wrapper, key) is None:
                continue
            current = getattr(wrapper, key)
            if value.shape != current.shape:
                raise ValueError(f"{key} for layer '{wrapper.name}' has shape {tuple(value.shape)}, "
                                 f"expected {tuple(current.shape)}")
            current.copy_(value.to(current.device, current.dtype))
        wrapper.apply_masks()

    def compress(self) -> nn.Module:
        """Compute the masks and return the wrapped model."""
        self.update_mask()
        return self.bound_model

    @property
    def mask_dict(self) -> dict[str, torch.Tensor]:
        """Layer name -> weight mask (same shape as the layer's weight)."""
        return {w.name: w.weight_mask for w in self.get_modules_wrapper()}

    def get_masks(self) -> dict[str, dict[str, torch.Tensor]]:
        """``{name: {'weight': mask, 'bias': mask}}`` (``'bias'`` absent for layers without bias),
        the format of the mask file and of ``ModelSpeedup``."""
        masks = {}
        for wrapper in self.get_modules_wrapper():
            entry = {"weight": wrapper.weight_mask.detach().clone()}
            if wrapper.bias_mask is not None:
                entry["bias"] = wrapper.bias_mask.detach().clone()
            masks[wrapper.name] = entry
        return masks

    def export_model(self, model_path: str, mask_path: str | None = None, onnx_path: str | None = None,
                     input_shape=None, device=None, dummy_input=None, opset_version: int | None = None) -> None:
        """Save the state dict of the unwrapped model with the masks applied (same keys as the
        original model), optionally the masks (``torch.save`` of :meth:`get_masks`) and an ONNX model.

        ``input_shape`` / ``device`` (deprecated in the docs) build a ``torch.randn`` dummy input for
        ONNX when ``dummy_input`` is not given.
        """
        if onnx_path is not None and dummy_input is None and input_shape is None:
            raise ValueError("export_model: onnx_path needs dummy_input (or the deprecated input_shape)")
        self._apply_all_masks()
        was_wrapped = self.is_wrapped
        if was_wrapped:
            self._unwrap_model()
        try:
            torch.save(self.bound_model.state_dict(), model_path)
            _logger.info("Model state_dict saved to %s", model_path)
            if mask_path is not None:
                torch.save(self.get_masks(), mask_path)
                _logger.info("Mask dict saved to %s", mask_path)
            if onnx_path is not None:
                if dummy_input is None:
                    dummy_input = torch.randn(*input_shape, device=device or "cpu")
                # the TorchScript exporter: the dynamo one needs onnxscript, which nni-compress does not declare
                kwargs = {"dynamo": False} if opset_version is None else {"dynamo": False, "opset_version": opset_version}
                try:
                    torch.onnx.export(self.bound_model, dummy_input, onnx_path, **kwargs)
                except ModuleNotFoundError as err:
                    raise RuntimeError(f"export_model: ONNX export needs the '{err.name}' package; "
                                       f"install it or leave onnx_path unset") from None
                _logger.info("Model in onnx with input shape %s saved to %s", tuple(dummy_input.shape), onnx_path)
        finally:
            if was_wrapped:
                self._wrap_model()

    def load_model_state_dict(self, model_state: dict) -> None:
        """Load a state dict saved from the unwrapped model (e.g. by :meth:`export_model`)."""
        if self.is_wrapped:
            self._unwrap_model()
            try:
                self.bound_model.load_state_dict(model_state)
            finally:
                self._wrap_model()
        else:
            self.bound_model.load_state_dict(model_state)

    def get_pruned_weights(self, dim: int = 0) -> dict[str, float]:
        """Log and return, per layer, the fraction of slices along ``dim`` that are fully masked."""
        result = {}
        for wrapper in self.get_modules_wrapper():
            mask = wrapper.weight_mask
            other = [d for d in range(mask.dim()) if d != dim]
            kept = mask.sum(dim=other) > 0 if other else mask > 0
            result[wrapper.name] = 1.0 - kept.float().mean().item()
            _logger.info("simulated prune %s: %.2f of dim %d", wrapper.name, result[wrapper.name], dim)
        return result
