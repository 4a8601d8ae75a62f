"""Base class of the quantization speedup backends, and the registry that finds them lazily."""
from __future__ import annotations

import abc
import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any, Callable


class BackendUnavailableError(ImportError):
    """A backend's runtime (package or device) is missing here; the message names an alternative."""


class BaseModelSpeedup(abc.ABC):
    """Base speedup class for backend engines.

    Args:
        model: the PyTorch model (after quantization-aware training or as float).
        config: the calibration config returned by a quantizer's ``export_model``.
    """

    def __init__(self, model, config):
        self.model = model
        self.config = config

    @abc.abstractmethod
    def compress(self) -> None:
        """Builds the inference engine from the model and the config."""

    @abc.abstractmethod
    def inference(self, test_data) -> tuple[Any, float]:
        """Runs the engine on ``test_data``; returns ``(output, latency in seconds)``."""

    @abc.abstractmethod
    def export_quantized_model(self, path: str) -> None:
        """Writes the built engine / quantized model to ``path``."""

    @abc.abstractmethod
    def load_quantized_model(self, path: str) -> None:
        """Loads what :meth:`export_quantized_model` wrote, ready for :meth:`inference`."""


@dataclass(frozen=True)
class _Backend:
    target: str  # "module:Class"
    available: Callable[[], bool]


def _has(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def _tensorrt_available() -> bool:
    if not _has("tensorrt"):
        return False
    import torch

    return torch.cuda.is_available()


_PKG = __name__.rsplit(".", 1)[0]
_BACKENDS: dict[str, _Backend] = {
    "onnxruntime": _Backend(f"{_PKG}.integrated_onnxruntime:ModelSpeedupONNXRuntime",
                            lambda: _has("onnx", "onnxruntime")),
    "tensorrt": _Backend(f"{_PKG}.integrated_tensorrt:ModelSpeedupTensorRT", _tensorrt_available),
}


def register_backend(name: str, target: str, available: Callable[[], bool] | None = None) -> None:
    """Adds a backend: ``target`` is ``"module:Class"`` (imported on first use), ``available``
    says whether it can run on this machine (default: always)."""
    if ":" not in target:
        raise ValueError(f"target={target!r}: expected 'module:Class'")
    _BACKENDS[name] = _Backend(target, available or (lambda: True))


def list_backends() -> list[str]:
    """Every registered backend name (nothing is imported)."""
    return sorted(_BACKENDS)


def available_backends() -> list[str]:
    """The backends whose runtime is installed (and, for TensorRT, a CUDA GPU present)."""
    return [name for name in list_backends() if _BACKENDS[name].available()]


def get_backend(name: str) -> type[BaseModelSpeedup]:
    """The speedup class of backend ``name`` (e.g. ``'onnxruntime'``, ``'tensorrt'``)."""
    if name not in _BACKENDS:
        raise ValueError(f"backend={name!r}: unknown; registered backends: {', '.join(list_backends())}")
    module, cls = _BACKENDS[name].target.split(":")
    return getattr(importlib.import_module(module), cls)
