"""The compression algorithms auto-compression can choose from, by the names the docs give.

The table holds import paths, not classes: a quantizer name resolves only when the quantization
package is installed, and nothing is imported until a trial asks for its algorithm.
"""
from __future__ import annotations

import importlib

__all__ = ["PRUNER_NAMES", "QUANTIZER_NAMES", "algorithm_kind", "get_compressor_class", "available_algorithms"]

_PRUNING = "nni.algorithms.compression.pytorch.pruning"
_QUANTIZATION = "nni.algorithms.compression.pytorch.quantization"

#: name -> (module, class); NNI v2.5's PRUNER_DICT
PRUNER_NAMES: dict[str, tuple[str, str]] = {
    "level": (_PRUNING, "LevelPruner"),
    "slim": (_PRUNING, "SlimPruner"),
    "l1": (_PRUNING, "L1FilterPruner"),
    "l2": (_PRUNING, "L2FilterPruner"),
    "fpgm": (_PRUNING, "FPGMPruner"),
    "taylorfo": (_PRUNING, "TaylorFOWeightFilterPruner"),
    "apoz": (_PRUNING, "ActivationAPoZRankFilterPruner"),
    "mean_activation": (_PRUNING, "ActivationMeanRankFilterPruner"),
}

#: name -> (module, class); NNI v2.5's QUANTIZER_DICT
QUANTIZER_NAMES: dict[str, tuple[str, str]] = {
    "naive": (_QUANTIZATION, "NaiveQuantizer"),
    "qat": (_QUANTIZATION, "QAT_Quantizer"),
    "dorefa": (_QUANTIZATION, "DoReFaQuantizer"),
    "bnn": (_QUANTIZATION, "BNNQuantizer"),
}


def algorithm_kind(name: str) -> str:
    """``'pruner'`` or ``'quantizer'`` for a name of the table; ValueError listing the names otherwise."""
    if name in PRUNER_NAMES:
        return "pruner"
    if name in QUANTIZER_NAMES:
        return "quantizer"
    raise ValueError(f"unknown compression algorithm {name!r}; allowed: pruners {sorted(PRUNER_NAMES)}, "
                     f"quantizers {sorted(QUANTIZER_NAMES)}")


def _load(module: str, cls: str):
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as err:
        # only "the package is not there" means unavailable; a broken import inside it is a bug
        if err.name is not None and module.startswith(err.name):
            return None
        raise
    return getattr(mod, cls, None)


def available_algorithms() -> list[str]:
    """The names whose classes can be imported here (imports the pruning / quantization modules)."""
    return [n for n, (m, c) in {**PRUNER_NAMES, **QUANTIZER_NAMES}.items() if _load(m, c) is not None]


def get_compressor_class(name: str) -> type:
    """The compressor class of ``name`` (imported now).

    Raises:
        ValueError: one line, for a name outside the table or one whose class is not installed,
            listing the available names.
    """
    kind = algorithm_kind(name)
    module, cls = (PRUNER_NAMES if kind == "pruner" else QUANTIZER_NAMES)[name]
    found = _load(module, cls)
    if found is None:
        raise ValueError(f"compression algorithm {name!r} ({module}.{cls}) is not available in this installation; "
                         f"available: {available_algorithms()}")
    return found
