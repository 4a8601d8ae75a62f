"""Canonicalise a v2 ``config_list`` into layer groups, with one-line errors for bad entries.

Decisions (docs' gaps): the last matching dict wins wholesale (keys are not merged); ``exclude`` is
honoured by its boolean value; ``sparsity`` is an alias of ``sparsity_per_layer`` (both in one
dict is an error); an ``op_names`` entry naming no module of the model is an error (a typo would
otherwise silently prune nothing).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from torch import nn

# 'default' for pruners that accept any weighted layer (the upstream ``weighted_modules`` list).
WEIGHTED_MODULES = ('Conv1d', 'Conv2d', 'Conv3d', 'ConvTranspose1d', 'ConvTranspose2d', 'ConvTranspose3d',
                    'Linear', 'Bilinear', 'PReLU', 'Embedding', 'EmbeddingBag')
SPARSITY_KEYS = ('sparsity', 'sparsity_per_layer', 'total_sparsity')


@dataclass
class LayerGroup:
    """Layers pruned together: one layer for ``sparsity_per_layer``, all matched layers for ``total_sparsity``."""
    names: List[str]
    sparsity: float
    is_total: bool = False
    max_sparsity_per_layer: Optional[float] = None
    config: Dict = field(default_factory=dict)


def _check_fraction(i: int, key: str, value, *, allow_one: bool = False) -> float:
    hi = '1]' if allow_one else '1)'
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value < 0 or value > 1 \
            or (value == 1 and not allow_one):
        raise ValueError(f'config_list[{i}].{key}: must be a number in [0, {hi}, got {value!r}')
    return float(value)


def _check_str_list(i: int, key: str, value) -> List[str]:
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f'config_list[{i}].{key}: must be a non-empty list of strings, got {value!r}')
    return list(value)


def validate_config_list(config_list, *, pruner_name: str, allowed_keys: Sequence[str],
                         default_op_types: Sequence[str], supported_op_types: Optional[Sequence[str]]) -> List[Dict]:
    """Check every entry and return a normalised copy (``sparsity`` renamed ``sparsity_per_layer``, op types expanded)."""
    if not isinstance(config_list, (list, tuple)):
        raise ValueError(f'config_list: must be a list of dicts, got {type(config_list).__name__}')
    allowed = set(allowed_keys) | {'op_types', 'op_names', 'exclude'}
    out = []
    for i, cfg in enumerate(config_list):
        if not isinstance(cfg, dict):
            raise ValueError(f'config_list[{i}]: must be a dict, got {type(cfg).__name__}')
        unknown = sorted(set(cfg) - allowed)
        if unknown:
            raise ValueError(f'config_list[{i}]: unknown key {unknown[0]!r} for {pruner_name}; allowed: {", ".join(sorted(allowed))}')
        if 'op_types' not in cfg and 'op_names' not in cfg:
            raise ValueError(f'config_list[{i}]: needs op_types or op_names')
        new: Dict = {}
        if 'op_types' in cfg:
            types = []
            for t in _check_str_list(i, 'op_types', cfg['op_types']):
                expanded = list(default_op_types) if t == 'default' else [t]
                for e in expanded:
                    if supported_op_types is not None and e not in supported_op_types:
                        raise ValueError(f'config_list[{i}].op_types: {e!r} is not supported by {pruner_name}; '
                                         f'allowed: {", ".join(supported_op_types)}, default')
                    types.append(e)
            new['op_types'] = types
        if 'op_names' in cfg:
            new['op_names'] = _check_str_list(i, 'op_names', cfg['op_names'])
        exclude = cfg.get('exclude', False)
        if not isinstance(exclude, bool):
            raise ValueError(f'config_list[{i}].exclude: must be true or false, got {exclude!r}')
        if exclude:
            new['exclude'] = True
            out.append(new)
            continue
        present = [k for k in SPARSITY_KEYS if k in cfg]
        if not present:
            keys = ', '.join(k for k in SPARSITY_KEYS if k in allowed)
            raise ValueError(f'config_list[{i}]: needs one of {keys} (or exclude: true)')
        if len(present) > 1:
            raise ValueError(f'config_list[{i}]: give only one of {", ".join(present)}')
        key = present[0]
        value = _check_fraction(i, key, cfg[key])
        if key == 'total_sparsity':
            new['total_sparsity'] = value
            if 'max_sparsity_per_layer' in cfg:
                new['max_sparsity_per_layer'] = _check_fraction(i, 'max_sparsity_per_layer', cfg['max_sparsity_per_layer'],
                                                                allow_one=True)
        else:
            if 'max_sparsity_per_layer' in cfg:
                raise ValueError(f'config_list[{i}].max_sparsity_per_layer: only allowed together with total_sparsity')
            new['sparsity_per_layer'] = value
        if 'rho' in cfg:
            rho = cfg['rho']
            if isinstance(rho, bool) or not isinstance(rho, numbers.Real) or rho <= 0:
                raise ValueError(f'config_list[{i}].rho: must be a positive number, got {rho!r}')
            new['rho'] = float(rho)
        out.append(new)
    return out


def _matches(cfg: Dict, name: str, module: nn.Module) -> bool:
    if 'op_types' in cfg and type(module).__name__ not in cfg['op_types']:
        return False
    if 'op_names' in cfg and name not in cfg['op_names']:
        return False
    return True


def build_layer_groups(model: nn.Module, config_list: List[Dict], *, pruner_name: str,
                       supported_op_types: Optional[Sequence[str]]) -> List[LayerGroup]:
    """Assign each module to the last matching config and group the layers (config already validated)."""
    modules = {name: m for name, m in model.named_modules() if name}
    for i, cfg in enumerate(config_list):
        for n in cfg.get('op_names', []):
            if n not in modules:
                raise ValueError(f'config_list[{i}].op_names: no module named {n!r} in the model')
            mtype = type(modules[n]).__name__
            if not cfg.get('exclude') and supported_op_types is not None and mtype not in supported_op_types \
                    and 'op_types' not in cfg:
                raise ValueError(f'config_list[{i}].op_names: {n!r} is a {mtype}; {pruner_name} supports '
                                 f'{", ".join(supported_op_types)}')
    chosen: Dict[str, int] = {}
    for name, module in modules.items():
        if not isinstance(getattr(module, 'weight', None), nn.Parameter):
            continue
        for i, cfg in enumerate(config_list):
            if _matches(cfg, name, module):
                chosen[name] = i
    groups: List[LayerGroup] = []
    total_groups: Dict[int, LayerGroup] = {}
    for name, i in chosen.items():
        cfg = config_list[i]
        if cfg.get('exclude'):
            continue
        if 'total_sparsity' in cfg:
            if i not in total_groups:
                total_groups[i] = LayerGroup([], cfg['total_sparsity'], True, cfg.get('max_sparsity_per_layer'), cfg)
                groups.append(total_groups[i])
            total_groups[i].names.append(name)
        else:
            groups.append(LayerGroup([name], cfg['sparsity_per_layer'], False, None, cfg))
    return groups
