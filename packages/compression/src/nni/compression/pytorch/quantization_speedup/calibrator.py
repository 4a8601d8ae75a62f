"""TensorRT int8 calibrator for post-training quantization inside TensorRT (needs ``tensorrt``).

``Calibrator`` is created on first access because its base class comes from ``tensorrt``.
Batches are copied to CUDA with torch (no pycuda needed).
"""
from __future__ import annotations

import functools
import logging
import os

_logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=None)
def _calibrator_class():
    try:
        import tensorrt as trt
    except ImportError:
        from .backend import BackendUnavailableError

        raise BackendUnavailableError("Calibrator is TensorRT's int8 calibrator and needs the tensorrt package "
                                      "(not installed); ModelSpeedupONNXRuntime(calib_data_loader=...) "
                                      "calibrates on CPU") from None
    import torch

    class Calibrator(trt.IInt8Calibrator):
        """Feeds ``data_loader`` batches to TensorRT's calibration and caches its result.

        Args:
            data_loader: iterable of input tensors (or ``(input, target)`` pairs), batch first.
            cache_file: where the calibration cache is read from / written to.
            batchsize: the batch size of the batches.
            calibrate_type: a ``tensorrt.CalibrationAlgoType``.
        """

        def __init__(self, data_loader, cache_file, batchsize, calibrate_type=None):
            trt.IInt8Calibrator.__init__(self)
            self.batches = iter(data_loader)
            self.cache_file = cache_file
            self.batchsize = batchsize
            self.algorithm = calibrate_type or trt.CalibrationAlgoType.ENTROPY_CALIBRATION_2
            self.current = None  # keeps the device copy alive while TensorRT reads it

        def get_algorithm(self):
            return self.algorithm

        def get_batch_size(self):
            return self.batchsize

        def get_batch(self, names):
            """Device pointers of the next batch (one per input name), ``[]`` when exhausted."""
            try:
                batch = next(self.batches)
            except StopIteration:
                return []
            data = batch[0] if isinstance(batch, (tuple, list)) else batch
            self.current = torch.as_tensor(data, dtype=torch.float32).contiguous().cuda()
            return [int(self.current.data_ptr())]

        def read_calibration_cache(self):
            """The cache written by an earlier calibration, if any (TensorRT then skips calibrating)."""
            if self.cache_file and os.path.exists(self.cache_file):
                with open(self.cache_file, "rb") as f:
                    return f.read()
            return None

        def write_calibration_cache(self, cache):
            """Writes ``cache`` to ``cache_file``."""
            if self.cache_file:
                with open(self.cache_file, "wb") as f:
                    f.write(cache)
                _logger.info("TensorRT calibration cache written to %s", self.cache_file)

    return Calibrator


def __getattr__(name: str):
    if name == "Calibrator":
        return _calibrator_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
