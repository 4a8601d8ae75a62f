"""Quantization speedup: run a quantized model with real low-precision kernels.

``ModelSpeedupTensorRT`` (NVIDIA GPUs, needs ``tensorrt``) keeps NNI's interface;
``ModelSpeedupONNXRuntime`` takes the same arguments and runs int8 on CPU (``onnxruntime``)::

    calibration_config = quantizer.export_model(model_path, calibration_path)
    engine = ModelSpeedupONNXRuntime(model, (64, 1, 8, 8), config=calibration_config)
    engine.compress()
    output, seconds = engine.inference(data)

The backend classes are imported on first use; ``get_backend(name)`` looks one up by name.
"""
from __future__ import annotations

from .backend import (BackendUnavailableError, BaseModelSpeedup, available_backends, get_backend, list_backends,
                      register_backend)
from .calibration import observe_ranges, parse_calibration_config

__all__ = ["BackendUnavailableError", "BaseModelSpeedup", "ModelSpeedupONNXRuntime", "ModelSpeedupTensorRT",
           "available_backends", "get_backend", "list_backends", "observe_ranges", "parse_calibration_config",
           "register_backend"]

_LAZY = {"ModelSpeedupONNXRuntime": "onnxruntime", "ModelSpeedupTensorRT": "tensorrt"}


def __getattr__(name: str):
    if name in _LAZY:
        return get_backend(_LAZY[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
