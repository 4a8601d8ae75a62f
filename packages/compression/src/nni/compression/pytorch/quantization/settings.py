"""Global quantization dtype and scheme per quant type (``'weight'``, ``'input'``, ``'output'``).

A config entry's ``quant_dtype`` / ``quant_scheme`` override these for its layers. Read by
:class:`~nni.algorithms.compression.pytorch.quantization.QAT_Quantizer` when a layer is wrapped,
so call :func:`set_quant_scheme_dtype` before constructing the quantizer.
"""
from __future__ import annotations

__all__ = ["QUANT_DTYPES", "QUANT_SCHEMES", "QUANT_TYPES", "get_quant_scheme_dtype", "reset_quant_scheme_dtype",
           "set_quant_scheme_dtype"]

QUANT_TYPES = ("weight", "input", "output")
QUANT_DTYPES = ("int", "uint")
QUANT_SCHEMES = ("per_tensor_affine", "per_tensor_symmetric", "per_channel_affine", "per_channel_symmetric")

# weights: signed, symmetric, one scale per output channel; activations: unsigned affine per
# tensor (what the docs' QAT examples configure and what int8 backends expect)
_DEFAULTS = {
    "weight": ("per_channel_symmetric", "int"),
    "input": ("per_tensor_affine", "uint"),
    "output": ("per_tensor_affine", "uint"),
}
_settings = dict(_DEFAULTS)


def set_quant_scheme_dtype(quant_type: str, new_scheme: str | None = None, new_dtype: str | None = None) -> None:
    """Set the default scheme and/or dtype of ``quant_type`` for quantizers created afterwards.

    Example: ``set_quant_scheme_dtype('input', 'per_tensor_affine', 'uint')``.
    """
    if quant_type not in QUANT_TYPES:
        raise ValueError(f"set_quant_scheme_dtype: quant_type must be one of {list(QUANT_TYPES)}, got {quant_type!r}")
    if new_scheme is not None and new_scheme not in QUANT_SCHEMES:
        raise ValueError(f"set_quant_scheme_dtype: scheme must be one of {list(QUANT_SCHEMES)}, got {new_scheme!r}")
    if new_dtype is not None and new_dtype not in QUANT_DTYPES:
        raise ValueError(f"set_quant_scheme_dtype: dtype must be one of {list(QUANT_DTYPES)}, got {new_dtype!r}")
    if new_scheme is not None and new_scheme.startswith("per_channel") and quant_type != "weight":
        raise ValueError(f"set_quant_scheme_dtype: per-channel schemes apply to 'weight' only, got {new_scheme!r} "
                         f"for {quant_type!r}")
    scheme, dtype = _settings[quant_type]
    _settings[quant_type] = (new_scheme or scheme, new_dtype or dtype)


def get_quant_scheme_dtype(quant_type: str) -> tuple[str, str]:
    """The current ``(scheme, dtype)`` default of ``quant_type``."""
    return _settings[quant_type]


def reset_quant_scheme_dtype() -> None:
    """Restore the built-in defaults (weight: per_channel_symmetric int; input/output:
    per_tensor_affine uint)."""
    _settings.update(_DEFAULTS)
