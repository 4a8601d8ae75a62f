"""ModelSpeedup: turn channel masks into a physically smaller model."""
from .compressor import ConstantInputConv, ModelSpeedup, apply_compression_results, load_masks

__all__ = ["ConstantInputConv", "ModelSpeedup", "apply_compression_results", "load_masks"]
