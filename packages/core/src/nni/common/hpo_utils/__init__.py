"""Search-space helpers shared by every tuner, advisor and the experiment front.

* :func:`validate_search_space` checks a search space and names the offending parameter path;
* :func:`format_search_space` / :func:`deformat_parameters` / :func:`format_parameters` convert
  between the user's search space / parameters and one flat internal model
  (:class:`ParameterSpec`);
* :func:`load_search_space` reads JSON or YAML search spaces.
"""
from __future__ import annotations

from .formatting import (
    FormattedParameters,
    FormattedSearchSpace,
    ParameterKey,
    ParameterSpec,
    deformat_parameters,
    format_parameters,
    format_search_space,
    is_nested_option,
    key_to_path,
)
from .loading import load_search_space
from .validation import ALL_TYPES, validate_search_space

__all__ = [
    'ALL_TYPES',
    'FormattedParameters',
    'FormattedSearchSpace',
    'ParameterKey',
    'ParameterSpec',
    'deformat_parameters',
    'format_parameters',
    'format_search_space',
    'is_nested_option',
    'key_to_path',
    'load_search_space',
    'validate_search_space',
]
