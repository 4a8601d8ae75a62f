"""NNI annotation: tune hyper-parameters by adding string literals to trial code.

* :func:`expand_annotations` copies a code folder, converting the annotations into calls of
  the annotation runtime (``nni.choice``, ``nni.function_choice``, ``nni.mutable_layer``, ...,
  see :mod:`nni.smartparam`) and the trial API;
* :func:`generate_search_space` builds the search space the annotations describe.

See :mod:`nni.tools.annotation.parsing` for the grammar and the key format
(``<module>/<name>/<function>``, e.g. ``mnist/batch_size/choice``).
"""
from __future__ import annotations

from .code_generator import convert_source, expand_annotations
from .search_space_generator import generate_search_space

__all__ = ['convert_source', 'expand_annotations', 'generate_search_space']
