"""PyTorch compression framework: :class:`Compressor`, :class:`Pruner`, :class:`Quantizer`, module wrappers, and
(lazily) :class:`ModelSpeedup` / :func:`apply_compression_results`."""
from __future__ import annotations

from .compressor import Compressor, LayerInfo, Pruner, PrunerModuleWrapper
from .quantizer import QuantGrad, QuantType, Quantizer, QuantizerModuleWrapper

__all__ = ["Compressor", "LayerInfo", "ModelSpeedup", "Pruner", "PrunerModuleWrapper", "QuantGrad", "QuantType",
           "Quantizer", "QuantizerModuleWrapper", "apply_compression_results"]

_SPEEDUP_NAMES = ("ModelSpeedup", "apply_compression_results")


def __getattr__(name: str):
    # speedup is a separate subpackage: import it only when asked for, so the framework imports
    # on its own and `import nni.compression.pytorch` stays cheap.
    if name in _SPEEDUP_NAMES:
        from . import speedup

        return getattr(speedup, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
