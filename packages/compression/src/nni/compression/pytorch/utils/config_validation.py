"""Validation and canonicalisation of a compressor's ``config_list``.

Every problem is a one-line :class:`ValueError` naming the entry (``config_list[i]``), the key,
what was wrong and what is allowed.
"""
from __future__ import annotations

import logging
import numbers
from typing import Any, Iterable, Sequence

__all__ = ["DEFAULT_OP_TYPES", "ConfigListError", "validate_config_list"]

_logger = logging.getLogger(__name__)

#: What ``'default'`` in ``op_types`` means unless a compressor says otherwise: the module types
#: that carry a weight (NNI's ``default_layers.weighted_modules``).
DEFAULT_OP_TYPES = (
    "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
    "Linear", "Bilinear", "PReLU", "Embedding", "EmbeddingBag",
)

_COMMON_KEYS = ("op_types", "op_names", "exclude")
_PRUNING_KEYS = ("sparsity", "sparsity_per_layer", "total_sparsity", "max_sparsity_per_layer", "rho",
                 "prune_iterations")
_QUANT_KEYS = ("quant_types", "quant_bits", "quant_dtype", "quant_scheme", "quant_start_step")
_QUANT_TYPES = ("weight", "input", "output")
_QUANT_DTYPES = ("int", "uint")
_QUANT_SCHEMES = ("per_tensor_affine", "per_tensor_symmetric", "per_channel_affine", "per_channel_symmetric")
_FRACTION_KEYS = ("sparsity", "sparsity_per_layer", "total_sparsity", "max_sparsity_per_layer")


class ConfigListError(ValueError):
    """A ``config_list`` entry is invalid (one line: entry, key, problem, what is allowed)."""


def _fraction(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigListError(f"{where} must be a number in [0, 1), got {value!r}")
    if not 0 <= value < 1:
        raise ConfigListError(f"{where} must be in [0, 1) (the fraction of weights to prune), got {value!r}")
    return float(value)


def _str_list(where: str, value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value \
            or not all(isinstance(v, str) for v in value):
        raise ConfigListError(f"{where} must be a non-empty list of strings, got {value!r}")
    return list(value)


def _per_type(where: str, value: Any, quant_types: list[str], check) -> Any:
    """A quantization key is one value for every quant type or a dict quant type -> value."""
    if isinstance(value, dict):
        for qt, v in value.items():
            if qt not in quant_types:
                raise ConfigListError(f"{where} has key {qt!r} that is not in quant_types {quant_types}")
            check(f"{where}[{qt!r}]", v)
        return dict(value)
    check(where, value)
    return value


def _check_bits(where: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 32:
        raise ConfigListError(f"{where} must be an integer number of bits in [1, 32], got {v!r}")


def _choice(allowed: Sequence[str]):
    def check(where: str, v: Any) -> None:
        if v not in allowed:
            raise ConfigListError(f"{where} must be one of {list(allowed)}, got {v!r}")
    return check


def validate_config_list(model, config_list: Any, *, pruner: bool = True,
                         default_op_types: Iterable[str] | None = None,
                         extra_keys: Iterable[str] = ()) -> list[dict]:
    """Check a ``config_list`` and return a canonical copy.

    Canonical form: a new list of new dicts; ``op_types`` / ``op_names`` are lists; ``'default'``
    in ``op_types`` is replaced by ``default_op_types`` (:data:`DEFAULT_OP_TYPES` when None);
    ``exclude`` is a bool (an entry with ``exclude: False`` is kept as a normal entry); fractions
    are floats. Entry order is kept: for a layer matched by several entries the last one wins.

    Args:
        model: the ``torch.nn.Module`` to compress; ``op_names`` that name none of its modules only
            log a warning (as NNI does), unless the name is empty.
        config_list: list of dicts (see the docs' config_list spec).
        pruner: True for pruners (each entry needs a sparsity key or ``exclude``), False for
            quantizers (each entry needs ``quant_types`` and ``quant_bits`` or ``exclude``).
        default_op_types: what ``'default'`` expands to for this compressor.
        extra_keys: further keys this compressor accepts.

    Raises:
        ConfigListError: one line naming ``config_list[i]`` and the key.
    """
    if not isinstance(config_list, (list, tuple)):
        raise ConfigListError(f"config_list must be a list of dicts, got {type(config_list).__name__}")
    defaults = list(DEFAULT_OP_TYPES if default_op_types is None else default_op_types)
    allowed = set(_COMMON_KEYS) | set(_PRUNING_KEYS if pruner else _QUANT_KEYS) | set(extra_keys)
    module_names = {name for name, _ in model.named_modules()} if model is not None else None
    result = []
    for i, entry in enumerate(config_list):
        at = f"config_list[{i}]"
        if not isinstance(entry, dict):
            raise ConfigListError(f"{at} must be a dict, got {type(entry).__name__}")
        unknown = sorted(set(entry) - allowed, key=str)
        if unknown:
            raise ConfigListError(f"{at} has unknown key {unknown[0]!r}; allowed keys: {sorted(allowed)}")
        out: dict = {}
        if "op_types" not in entry and "op_names" not in entry:
            raise ConfigListError(f"{at} needs 'op_types' or 'op_names' to say which layers it applies to")
        if "op_types" in entry:
            types = _str_list(f"{at}['op_types']", entry["op_types"])
            expanded: list[str] = []
            for t in types:
                for name in (defaults if t == "default" else [t]):
                    if name not in expanded:
                        expanded.append(name)
            out["op_types"] = expanded
        if "op_names" in entry:
            names = _str_list(f"{at}['op_names']", entry["op_names"])
            if module_names is not None:
                missing = [n for n in names if n not in module_names]
                if missing:
                    _logger.warning("%s['op_names']: %s name no module of the model", at, missing)
            out["op_names"] = names
        if "exclude" in entry:
            if not isinstance(entry["exclude"], bool):
                raise ConfigListError(f"{at}['exclude'] must be True or False, got {entry['exclude']!r}")
            out["exclude"] = entry["exclude"]
        for key, value in entry.items():
            if key in out:
                continue
            where = f"{at}[{key!r}]"
            if key in _FRACTION_KEYS:
                out[key] = _fraction(where, value)
            elif key in ("prune_iterations", "quant_start_step"):
                if isinstance(value, bool) or not isinstance(value, int) or value < (1 if key == "prune_iterations" else 0):
                    low = 1 if key == "prune_iterations" else 0
                    raise ConfigListError(f"{where} must be an integer >= {low}, got {value!r}")
                out[key] = value
            elif key == "rho":
                if isinstance(value, bool) or not isinstance(value, numbers.Real) or value <= 0:
                    raise ConfigListError(f"{where} must be a positive number, got {value!r}")
                out[key] = float(value)
            elif key == "quant_types":
                qts = _str_list(where, value)
                for qt in qts:
                    _choice(_QUANT_TYPES)(where, qt)
                out[key] = qts
            else:
                out[key] = value
        if not out.get("exclude"):
            if pruner:
                if "sparsity" in out and "sparsity_per_layer" in out:
                    raise ConfigListError(f"{at} has both 'sparsity' and 'sparsity_per_layer' (aliases); keep one")
                if not any(k in out for k in ("sparsity", "sparsity_per_layer", "total_sparsity")):
                    raise ConfigListError(
                        f"{at} needs 'sparsity' (or 'sparsity_per_layer' / 'total_sparsity'), or 'exclude': True")
                if "max_sparsity_per_layer" in out and "total_sparsity" not in out:
                    raise ConfigListError(f"{at}['max_sparsity_per_layer'] is only allowed with 'total_sparsity'")
            else:
                if "quant_types" not in out or "quant_bits" not in out:
                    raise ConfigListError(f"{at} needs 'quant_types' and 'quant_bits', or 'exclude': True")
                qts = out["quant_types"]
                out["quant_bits"] = _per_type(f"{at}['quant_bits']", out["quant_bits"], qts, _check_bits)
                if isinstance(out["quant_bits"], dict):
                    missing = [qt for qt in qts if qt not in out["quant_bits"]]
                    if missing:
                        raise ConfigListError(f"{at}['quant_bits'] has no bits for {missing[0]!r}; give every "
                                              f"quant type in {qts} or one int for all")
                if "quant_dtype" in out:
                    out["quant_dtype"] = _per_type(f"{at}['quant_dtype']", out["quant_dtype"], qts, _choice(_QUANT_DTYPES))
                if "quant_scheme" in out:
                    out["quant_scheme"] = _per_type(f"{at}['quant_scheme']", out["quant_scheme"], qts,
                                                    _choice(_QUANT_SCHEMES))
        result.append(out)
    return result
