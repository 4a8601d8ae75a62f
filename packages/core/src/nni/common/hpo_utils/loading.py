"""Reading search spaces from JSON or YAML files or text.

* Files are read as UTF-8 (a BOM is accepted); unicode parameter names are kept as they are.
* ``.yml`` / ``.yaml`` files are YAML, every other file JSON (falling back to YAML when the
  content is not JSON, as NNI accepts YAML-looking search-space files).
* YAML numbers in scientific notation without a dot (``1e-5``) are read as floats, unlike
  YAML 1.1's default resolver which would read a string (an NNI v2.5 bug fix).
* Duplicate keys in one JSON object or YAML mapping are an error (naming the key, and for
  YAML its line) rather than silently keeping the last one.
* Arrays / mappings nested deeper than :data:`MAX_NESTING` levels are an error (not a
  ``RecursionError``).
* Every error is one line and names the file.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Union

import yaml

from nni.runtime.rest_api import nesting_depth

__all__ = ['load_search_space', 'load_json_or_yaml', 'YamlLoader', 'MAX_NESTING']

#: Deepest nesting of lists / mappings in a config or search space file (real ones need < 10;
#: the parsers recurse per level and would hit Python's recursion limit near 1,000).
MAX_NESTING = 100


class YamlLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``1e-5`` / ``1E+3`` as floats, refuses duplicate
    keys and nesting deeper than :data:`MAX_NESTING`."""

    _depth = 0

    def compose_node(self, parent, index):
        # Composing recurses per level: count the levels and stop before Python's limit.
        nested = self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent)
        self._depth += nested
        try:
            if nested and self._depth > MAX_NESTING:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(
                    None, None, f'lists/mappings nested deeper than {MAX_NESTING} levels', mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= nested

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = {}
            for key_node, _ in node.value:
                if key_node.tag == 'tag:yaml.org,2002:merge':
                    continue  # '<<' merges may be overridden by the mapping's own keys
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # an unhashable key: SafeLoader reports it
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None, None, f'duplicate key {key!r} (first at line {first})', key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


YamlLoader.add_implicit_resolver(
    'tag:yaml.org,2002:float',
    re.compile(r'''^(?:[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)
                    |[-+]?(?:[0-9][0-9_]*)\.[0-9_]*
                    |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$''', re.X),
    list('-+0123456789.'),
)


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(f'duplicate key {key!r}')
        result[key] = value
    return result


def load_json_or_yaml(text: str, source: str = '<string>', yaml_first: bool = False) -> Any:
    """Parse ``text`` as JSON (or YAML when ``yaml_first`` or when it is not JSON).

    Raises:
        ValueError: one line naming ``source`` and the position of the syntax error.
    """
    if text.startswith('\ufeff'):
        text = text[1:]
    if not yaml_first:
        try:
            data = json.loads(text, object_pairs_hook=_no_duplicates)
            if nesting_depth(data) > MAX_NESTING:  # shallower than the recursion limit, still absurd
                raise RecursionError
            return data
        except _DuplicateKey as e:
            raise ValueError(f'{source}: invalid search space: {e}') from None
        except RecursionError:
            raise ValueError(f'{source}: invalid JSON: arrays/objects nested deeper than {MAX_NESTING} levels') from None
        except json.JSONDecodeError as json_error:
            try:
                return yaml.load(text, Loader=YamlLoader)
            except yaml.YAMLError:
                raise ValueError(f'{source}: invalid JSON at line {json_error.lineno} column '
                                 f'{json_error.colno}: {json_error.msg}') from None
    try:
        return yaml.load(text, Loader=YamlLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, 'problem_mark', None)
        where = f' at line {mark.line + 1} column {mark.column + 1}' if mark is not None else ''
        problem = getattr(e, 'problem', None) or str(e).splitlines()[0]
        raise ValueError(f'{source}: invalid YAML{where}: {problem}') from None


def load_search_space(path_or_str: Union[str, os.PathLike, dict]) -> dict:
    """Load a search space from a file, from JSON/YAML text, or pass a dict through.

    Args:
        path_or_str: a ``dict`` (returned unchanged); a ``pathlib.Path`` / ``os.PathLike``
            (always a file); or a ``str`` that is read as a file when it names an existing
            file or ends with ``.json``/``.yml``/``.yaml``, and otherwise parsed as JSON or
            YAML text.

    Returns:
        The search space dict (not validated: call ``validate_search_space``).

    Raises:
        ValueError: the file is missing or unreadable, the text does not parse, or the top
            level is not a mapping; the message names the file.
    """
    if isinstance(path_or_str, dict):
        return path_or_str
    if isinstance(path_or_str, str) and not _looks_like_file(path_or_str):
        data = load_json_or_yaml(path_or_str, 'search space text')
        source = 'search space text'
    else:
        path = Path(os.fspath(path_or_str)).expanduser()
        source = f'search space file {str(path)!r}'
        try:
            text = path.read_text(encoding='utf-8')
        except FileNotFoundError:
            raise ValueError(f'{source}: file not found') from None
        except IsADirectoryError:
            raise ValueError(f'{source}: is a directory, expected a JSON or YAML file') from None
        except UnicodeDecodeError as e:
            raise ValueError(f'{source}: not UTF-8 text ({e.reason} at byte {e.start})') from None
        except OSError as e:
            raise ValueError(f'{source}: cannot read ({e.strerror})') from None
        data = load_json_or_yaml(text, source, yaml_first=path.suffix.lower() in ('.yml', '.yaml'))
    if not isinstance(data, dict):
        kind = 'empty' if data is None else type(data).__name__
        raise ValueError(f'{source}: top level must be a mapping of parameter names to '
                         f'{{"_type": ..., "_value": [...]}}, got {kind}')
    return data


def _looks_like_file(text: str) -> bool:
    stripped = text.strip()
    if not stripped or stripped[0] in '{[' or '\n' in stripped:
        return False
    if stripped.lower().endswith(('.json', '.yml', '.yaml')):
        return True
    try:
        return os.path.isfile(os.path.expanduser(stripped))
    except (OSError, ValueError):
        return False
