"""The auto-compression search space: built by :class:`AutoCompressionSearchSpaceGenerator`,
decoded in the trial by :func:`decode_parameters`.

The space is one nested ``choice`` named ``algorithm_name`` with an option per algorithm::

    {'algorithm_name': {'_type': 'choice', '_value': [
        {'_name': 'level',
         'config_list::default::::sparsity': {'_type': 'uniform', '_value': [0.01, 0.99]}},
        {'_name': 'qat',
         'config_list::weight:output::Conv2d:Linear::::quant_bits::weight': {'_type': 'choice', '_value': [8]},
         'config_list::weight:output::Conv2d:Linear::::quant_bits::output': {'_type': 'choice', '_value': [8]}},
    ]}}

Each config_list entry is keyed by what it selects: ``config_list::<op_types>::<op_names>::<key>``
for pruners and ``config_list::<quant_types>::<op_types>::<op_names>::<key>`` for quantizers
(list items joined by ``:``; an absent list is empty); a dict value that is not a search-space
dict (``quant_bits: {'weight': 8}``) gets one key per item (``...::quant_bits::weight``).
Constructor arguments of the algorithm are ``parameter::<name>``. Values that are not search-space
dicts are wrapped as ``{'_type': 'choice', '_value': [value]}``. The tuner samples one option, and
the trial rebuilds the config_list from its keys in their order (the order the entries were given:
JSON keeps it from the tuner to the trial).
"""
from __future__ import annotations

import copy
from typing import Any

from .constants import algorithm_kind

__all__ = ["AutoCompressionSearchSpaceGenerator", "decode_parameters", "ALGORITHM_KEY"]

#: the one top-level parameter of the search space
ALGORITHM_KEY = "algorithm_name"
_CONFIG = "config_list"
_PARAM = "parameter"
_SEP = "::"


def _selectors(kind: str) -> tuple[str, ...]:
    return ("quant_types", "op_types", "op_names") if kind == "quantizer" else ("op_types", "op_names")


def _is_search_dict(value: Any) -> bool:
    return isinstance(value, dict) and "_type" in value


def _wrap(value: Any) -> Any:
    return copy.deepcopy(value) if _is_search_dict(value) else {"_type": "choice", "_value": [copy.deepcopy(value)]}


def _check_search_dict(value: Any, where: str) -> None:
    from nni.common.hpo_utils import validate_search_space

    try:
        validate_search_space({"x": value}, raise_exception=True)
    except ValueError as err:
        msg = " ".join(str(err).split()).replace("search space 'x': ", "")
        raise ValueError(f"{where}: {msg}") from None


def _check_name(value: Any, where: str) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a string, got {type(value).__name__}")
    if _SEP in value:
        raise ValueError(f"{where} must not contain {_SEP!r} (it separates the parts of search space keys), got {value!r}")


def _selector_part(entry: dict, key: str, where: str) -> str:
    if key not in entry:
        return ""
    items = entry[key]
    if not isinstance(items, (list, tuple)) or not items:
        raise ValueError(f"{where}[{key!r}] must be a non-empty list of strings, got {items!r}")
    for item in items:
        if not isinstance(item, str) or not item or ":" in item:
            raise ValueError(f"{where}[{key!r}] items must be non-empty strings without ':', got {item!r}")
    return ":".join(items)


class AutoCompressionSearchSpaceGenerator:
    """Builds the nested search space of an auto-compression experiment.

    Example:
        >>> generator = AutoCompressionSearchSpaceGenerator()
        >>> generator.add_config('level', [{'sparsity': {'_type': 'uniform', '_value': [0.01, 0.99]},
        ...                                 'op_types': ['default']}])
        >>> generator.dumps()
        {'algorithm_name': {'_type': 'choice', '_value': [{'_name': 'level', 'config_list::default::::sparsity': {'_type': 'uniform', '_value': [0.01, 0.99]}}]}}
    """

    def __init__(self) -> None:
        self.algorithm_choice_list: list[dict] = []

    def add_config(self, compressor_name: str, config_list: list[dict], **algo_kwargs: Any) -> None:
        """Add an algorithm the tuner may choose.

        Args:
            compressor_name: a pruner (``level``, ``slim``, ``l1``, ``l2``, ``fpgm``, ``taylorfo``,
                ``apoz``, ``mean_activation``) or quantizer (``naive``, ``qat``, ``dorefa``, ``bnn``) name.
            config_list: the algorithm's config_list; any value (``sparsity``, a ``quant_bits``
                item ...) may be a search-space dict such as ``{'_type': 'uniform', '_value': [0.1, 0.9]}``.
            **algo_kwargs: further constructor arguments of the algorithm, plain values or
                search-space dicts (JSON values only: the trial receives them from the tuner).
        Raises:
            ValueError: one line naming the entry and key.
        """
        kind = algorithm_kind(compressor_name)
        if any(option["_name"] == compressor_name for option in self.algorithm_choice_list):
            raise ValueError(f"add_config({compressor_name!r}): already added; give each algorithm once "
                             f"(put all its layers in one config_list)")
        if not isinstance(config_list, (list, tuple)) or not config_list:
            raise ValueError(f"add_config({compressor_name!r}): config_list must be a non-empty list of dicts, "
                             f"got {config_list!r}")
        selectors = _selectors(kind)
        option: dict[str, Any] = {"_name": compressor_name}
        seen: dict[str, int] = {}
        for i, entry in enumerate(config_list):
            where = f"add_config({compressor_name!r}): config_list[{i}]"
            if not isinstance(entry, dict):
                raise ValueError(f"{where} must be a dict, got {type(entry).__name__}")
            if "op_types" not in entry and "op_names" not in entry:
                raise ValueError(f"{where} needs 'op_types' or 'op_names' to say which layers it applies to")
            if kind == "quantizer" and "quant_types" not in entry:
                raise ValueError(f"{where} needs 'quant_types' (a list of 'weight', 'input', 'output')")
            prefix = _SEP.join([_CONFIG] + [_selector_part(entry, key, where) for key in selectors])
            if prefix in seen:
                raise ValueError(f"{where} selects the same {'/'.join(selectors)} as config_list[{seen[prefix]}]; "
                                 f"merge the two entries")
            seen[prefix] = i
            settings = [(k, v) for k, v in entry.items() if k not in selectors]
            if not settings:
                raise ValueError(f"{where} has no setting besides {'/'.join(selectors)} (e.g. 'sparsity' or 'exclude')")
            for key, value in settings:
                _check_name(key, f"{where} key")
                if isinstance(value, dict) and not _is_search_dict(value):
                    if not value:
                        raise ValueError(f"{where}[{key!r}] must not be an empty dict")
                    for sub, sub_value in value.items():
                        _check_name(sub, f"{where}[{key!r}] key")
                        self._put(option, _SEP.join([prefix, key, sub]), sub_value, f"{where}[{key!r}][{sub!r}]")
                else:
                    self._put(option, _SEP.join([prefix, key]), value, f"{where}[{key!r}]")
        for key, value in algo_kwargs.items():
            self._put(option, _SEP.join([_PARAM, key]), value, f"add_config({compressor_name!r}): {key}")
        self.algorithm_choice_list.append(option)

    @staticmethod
    def _put(option: dict, key: str, value: Any, where: str) -> None:
        wrapped = _wrap(value)
        _check_search_dict(wrapped, where)
        option[key] = wrapped

    def dumps(self) -> dict:
        """The search space (a dict for ``experiment.config.search_space``)."""
        if not self.algorithm_choice_list:
            raise ValueError("the search space is empty: call add_config() at least once")
        return {ALGORITHM_KEY: {"_type": "choice", "_value": copy.deepcopy(self.algorithm_choice_list)}}

    @classmethod
    def loads(cls, search_space: dict) -> "AutoCompressionSearchSpaceGenerator":
        """A generator holding the algorithms of a search space made by :meth:`dumps`
        (``loads(s).dumps() == s``)."""
        if not isinstance(search_space, dict) or set(search_space) != {ALGORITHM_KEY}:
            raise ValueError(f"an auto-compression search space has the one key {ALGORITHM_KEY!r}, "
                             f"got {sorted(search_space) if isinstance(search_space, dict) else type(search_space).__name__}")
        choice = search_space[ALGORITHM_KEY]
        if not _is_search_dict(choice) or choice.get("_type") != "choice" or not isinstance(choice.get("_value"), list):
            raise ValueError(f"search space {ALGORITHM_KEY!r} must be a choice of algorithm options")
        generator = cls()
        for option in choice["_value"]:
            unwrapped = {k: (v["_value"][0] if k != "_name" and _is_search_dict(v) and v["_type"] == "choice"
                             and len(v["_value"]) == 1 else v) for k, v in option.items()}
            name, config_list, kwargs = decode_parameters(unwrapped)
            generator.add_config(name, config_list, **kwargs)
        return generator


def decode_parameters(parameters: dict) -> tuple[str, list[dict], dict]:
    """Turn the parameters a tuner sampled from the space into ``(algorithm name, config_list, kwargs)``.

    ``parameters`` is what the trial receives (``{'algorithm_name': {'_name': ..., ...}}``) or the
    inner option dict.

    Example:
        >>> decode_parameters({'algorithm_name': {'_name': 'l1', 'config_list::Conv2d::conv1::sparsity': 0.5}})
        ('l1', [{'op_types': ['Conv2d'], 'op_names': ['conv1'], 'sparsity': 0.5}], {})
    """
    if isinstance(parameters, dict) and ALGORITHM_KEY in parameters:
        parameters = parameters[ALGORITHM_KEY]
    if not isinstance(parameters, dict) or "_name" not in parameters:
        raise ValueError(f"expected the parameters of an auto-compression search space "
                         f"({{{ALGORITHM_KEY!r}: {{'_name': ..., ...}}}}), got {parameters!r}")
    name = parameters["_name"]
    kind = algorithm_kind(name)
    selectors = _selectors(kind)
    entries: dict[tuple, dict] = {}
    kwargs: dict[str, Any] = {}
    for key, value in parameters.items():
        if key == "_name":
            continue
        parts = key.split(_SEP)
        if parts[0] == _PARAM and len(parts) == 2:
            kwargs[parts[1]] = value
            continue
        if parts[0] != _CONFIG or len(parts) not in (len(selectors) + 2, len(selectors) + 3):
            raise ValueError(f"parameter {key!r} of {name!r}: expected "
                             f"'{_SEP.join([_CONFIG, *('<' + s + '>' for s in selectors), '<key>'])}' or "
                             f"'{_PARAM}{_SEP}<argument>'")
        selector = tuple(parts[1:len(selectors) + 1])
        entry = entries.get(selector)
        if entry is None:
            entry = {s: part.split(":") for s, part in zip(selectors, selector) if part}
            entries[selector] = entry
        rest = parts[len(selectors) + 1:]
        if len(rest) == 1:
            entry[rest[0]] = value
        else:
            entry.setdefault(rest[0], {})[rest[1]] = value
    return name, list(entries.values()), kwargs
