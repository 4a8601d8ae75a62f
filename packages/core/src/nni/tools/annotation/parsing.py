"""Finding NNI annotations in a Python module and turning each into a search-space entry
and a source edit.

An annotation is a statement that is only a string literal whose text starts with ``@nni.``
(NNI v2.5's grammar). In a file ``mnist.py``:

* ``'''@nni.variable(nni.<type>(...), name=x)'''`` — the next statement must assign ``x``; its
  right-hand side becomes ``nni.<type>(..., name='x', key='mnist/x/<type>', default=<rhs>)``
  (``nni.choice`` gets one dict ``{label: option}``, see :mod:`nni.smartparam`);
* ``'''@nni.function_choice(f(a), g(a), name=f)'''`` — the first call of ``f`` in the next
  statement becomes ``nni.function_choice({'f(a)': lambda: f(a), 'g(a)': lambda: g(a)},
  name='f', key='mnist/f/function_choice', default=lambda: (<the original call>))``;
* ``'''@nni.get_next_parameter()'''``, ``'''@nni.report_intermediate_result(m)'''``,
  ``'''@nni.report_final_result(m)'''``, ``'''@nni.training_update(...)'''`` — the string
  becomes the call ``nni.<kind>(...)``;
* ``'''@nni.mutable_layers({layer_choice: [...], fixed_inputs: [...], optional_inputs: [...],
  optional_input_size: n, layer_output: out}, ...)'''`` — each dict (a layer) becomes
  ``out = nni.mutable_layer('mnist/mutable_block_<line>', 'mutable_layer_<i>', ...)``.

Search-space keys are ``<module>/<name>/<function>``: the module path of the file relative to
the code directory, dotted (``mnist``, ``models.cnn``; a package's ``__init__.py`` is the
package), the annotation's ``name`` as written (``learning_rate``, ``self.lr``; ``__line<N>``
for a ``function_choice`` without ``name``, N its line), and the sampling function
(``choice``, ``uniform``, ..., or ``function_choice``). A ``mutable_layers`` block is one key
``<module>/mutable_block_<N>`` of type ``mutable_layer``.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from nni.common.hpo_utils.validation import ALL_TYPES, check_search_space

__all__ = ['Annotation', 'Edit', 'ModuleAnnotations', 'parse_module', 'module_name_of']

_CALLS = ('get_next_parameter', 'report_intermediate_result', 'report_final_result', 'training_update')
_KINDS = ('variable', 'function_choice', 'mutable_layers') + _CALLS
_ARGC = {'choice': None, 'randint': 2, 'uniform': 2, 'quniform': 3, 'loguniform': 2, 'qloguniform': 3,
         'normal': 2, 'qnormal': 3, 'lognormal': 2, 'qlognormal': 3}
_LAYER_FIELDS = ('layer_choice', 'fixed_inputs', 'optional_inputs', 'optional_input_size', 'layer_output')


@dataclass
class Edit:
    """Replace source characters ``[start, end)`` with ``text``."""

    start: int
    end: int
    text: str


@dataclass
class Annotation:
    kind: str
    lineno: int
    key: Optional[str] = None
    space: Optional[Dict[str, Any]] = None
    edit: Optional[Edit] = None


@dataclass
class ModuleAnnotations:
    module: str
    annotations: List[Annotation] = field(default_factory=list)
    import_edit: Optional[Edit] = None

    @property
    def search_space(self) -> Dict[str, Any]:
        return {a.key: a.space for a in self.annotations if a.key is not None}


def module_name_of(relative_path: str) -> str:
    """``models/cnn.py`` -> ``models.cnn``; ``pkg/__init__.py`` -> ``pkg``."""
    parts = relative_path.replace('\\', '/').split('/')
    parts[-1] = parts[-1][:-3] if parts[-1].endswith('.py') else parts[-1]
    if parts[-1] == '__init__' and len(parts) > 1:
        parts.pop()
    return '.'.join(parts)


class _Source:
    """Maps AST (line, UTF-8 byte column) positions to character offsets."""

    def __init__(self, text: str):
        self.text = text
        self.lines = text.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def offset(self, lineno: int, col: int) -> int:
        line = self.lines[lineno - 1] if lineno - 1 < len(self.lines) else ''
        return self.starts[lineno - 1] + len(line.encode('utf-8')[:col].decode('utf-8', errors='replace'))

    def span(self, node: ast.AST) -> Tuple[int, int]:
        return (self.offset(node.lineno, node.col_offset), self.offset(node.end_lineno, node.end_col_offset))

    def segment(self, node: ast.AST) -> str:
        start, end = self.span(node)
        return self.text[start:end]


class AnnotationError(ValueError):
    pass


def is_annotation(stmt: ast.stmt) -> bool:
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str) and stmt.value.value.strip().startswith('@nni.'))


def parse_module(source: str, module: str, filename: str) -> ModuleAnnotations:
    """Find every annotation of ``source``.

    Raises:
        ValueError: a malformed annotation, one line starting with ``<filename>:<line>:``.
    """
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as e:
        raise AnnotationError(f'{filename}:{e.lineno}: cannot parse Python source: {e.msg}') from None
    src = _Source(source)
    result = ModuleAnnotations(module)
    seen: Dict[str, Tuple[int, Dict[str, Any]]] = {}
    for body in _statement_lists(tree):
        for index, stmt in enumerate(body):
            if not is_annotation(stmt):
                continue
            following = body[index + 1] if index + 1 < len(body) else None
            annotation = _annotation(stmt, following, src, module, filename)
            if annotation.key is not None:
                if annotation.key in seen and seen[annotation.key][1] != annotation.space:
                    raise AnnotationError(
                        f'{filename}:{stmt.lineno}: parameter {annotation.key!r} is already annotated at line '
                        f'{seen[annotation.key][0]} with a different search space; use another name')
                seen.setdefault(annotation.key, (stmt.lineno, annotation.space))
            result.annotations.append(annotation)
    result.annotations.sort(key=lambda a: a.lineno)
    if result.annotations:
        result.import_edit = _import_edit(tree, src)
    return result


def _statement_lists(tree: ast.AST):
    for node in ast.walk(tree):
        for name in ('body', 'orelse', 'finalbody'):
            body = getattr(node, name, None)
            if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                yield body


def _annotation(stmt: ast.Expr, following: Optional[ast.stmt], src: _Source, module: str,
                filename: str) -> Annotation:
    text = stmt.value.value.strip()
    where = f'{filename}:{stmt.lineno}'
    try:
        call = ast.parse(text[1:].strip(), mode='eval').body
    except SyntaxError as e:
        raise AnnotationError(f'{where}: invalid annotation {text!r}: {e.msg}') from None
    if not (isinstance(call, ast.Call) and _nni_attr(call.func) in _KINDS):
        raise AnnotationError(f'{where}: unknown annotation {text.split("(")[0]!r}; supported: '
                              + ', '.join('@nni.' + k for k in _KINDS))
    kind = _nni_attr(call.func)
    start, end = src.span(stmt)
    # the replacement keeps the annotation's line count, so later lines keep their numbers
    extra_lines = src.text.count('\n', start, end)
    if kind in _CALLS:
        _check_call(call, kind, where)
        code = ast.unparse(call)[:-1] + '\n' * extra_lines + ')'
        return Annotation(kind, stmt.lineno, edit=Edit(start, end, code))
    if kind == 'mutable_layers':
        key, space, code = _mutable_layers(call, module, stmt.lineno, where)
        return Annotation(kind, stmt.lineno, key, space, Edit(start, end, code[:-1] + '\n' * extra_lines + ')'))

    sampling, name_node = _variable_args(call, kind, where)
    if kind == 'variable':
        name = ast.unparse(name_node)
        return _variable(stmt, following, src, sampling, name, where, module)
    return _function_choice(stmt, following, src, sampling, name_node, where, module)


def _check_call(call: ast.Call, kind: str, where: str) -> None:
    if kind == 'get_next_parameter' and (call.args or call.keywords):
        raise AnnotationError(f'{where}: @nni.get_next_parameter takes no arguments')
    if kind in ('report_intermediate_result', 'report_final_result') and (len(call.args) != 1 or call.keywords):
        raise AnnotationError(f'{where}: @nni.{kind} takes exactly one argument (the metric)')


def _nni_attr(node: ast.AST) -> Optional[str]:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == 'nni':
        return node.attr
    return None


def _variable_args(call: ast.Call, kind: str, where: str):
    name_node = None
    args = list(call.args)
    for keyword in call.keywords:
        if keyword.arg != 'name':
            raise AnnotationError(f'{where}: @nni.{kind} got an unexpected keyword {keyword.arg!r}; only name= is allowed')
        name_node = keyword.value
    if name_node is None and kind == 'variable' and len(args) == 2:
        name_node = args.pop()
    if name_node is None and kind == 'variable':
        raise AnnotationError(f'{where}: @nni.variable needs name=<the assigned variable>')
    if name_node is not None and not isinstance(name_node, (ast.Name, ast.Attribute)):
        raise AnnotationError(f'{where}: @nni.{kind} name must be an identifier, got {ast.unparse(name_node)!r}')
    if kind == 'variable' and len(args) != 1:
        raise AnnotationError(f'{where}: @nni.variable takes one sampling function (e.g. nni.choice(...)) and name=')
    if kind == 'function_choice' and not args:
        raise AnnotationError(f'{where}: @nni.function_choice needs at least one function call')
    return args, name_node


def _variable(stmt, following, src: _Source, args, name: str, where: str, module: str) -> Annotation:
    value = _assigned_value(following, name)
    if value is None:
        raise AnnotationError(f'{where}: @nni.variable(name={name}) must be followed by an assignment to {name}')
    sampling = args[0]
    type_ = _nni_attr(sampling.func) if isinstance(sampling, ast.Call) else None
    if type_ not in ALL_TYPES:
        raise AnnotationError(f'{where}: @nni.variable needs a sampling function nni.<type>(...) with type one of '
                              f'{", ".join(ALL_TYPES)}; got {ast.unparse(sampling)!r}')
    key = f'{module}/{name}/{type_}'
    space, code_args = _sampling(sampling, where)
    _check(key, space, where)
    code = f'nni.{type_}({code_args}, name={name!r}, key={key!r}, default=({src.segment(value)}))'
    start, end = src.span(value)
    return Annotation('variable', stmt.lineno, key, space, Edit(start, end, code))


def _assigned_value(stmt: Optional[ast.stmt], name: str) -> Optional[ast.expr]:
    if isinstance(stmt, ast.Assign) and any(ast.unparse(t) == name for t in stmt.targets):
        return stmt.value
    if isinstance(stmt, ast.AnnAssign) and stmt.value is not None and ast.unparse(stmt.target) == name:
        return stmt.value
    return None


def _sampling(call: ast.Call, where: str) -> Tuple[Dict[str, Any], str]:
    """Search-space entry and the runtime's argument text for ``nni.<type>(...)``."""
    type_ = _nni_attr(call.func)
    if call.keywords:
        raise AnnotationError(f'{where}: nni.{type_} takes positional arguments only')
    if type_ == 'choice':
        return _choice(call.args, where)
    if len(call.args) != _ARGC[type_]:
        raise AnnotationError(f'{where}: nni.{type_} takes {_ARGC[type_]} arguments, got {len(call.args)}')
    values = []
    for arg in call.args:
        try:
            number = ast.literal_eval(arg)
        except ValueError:
            number = None
        if not isinstance(number, (int, float)) or isinstance(number, bool):
            raise AnnotationError(f'{where}: arguments of nni.{type_} must be literal numbers, got {ast.unparse(arg)!r}')
        values.append(number)
    return {'_type': type_, '_value': values}, ', '.join(repr(v) for v in values)


def _is_sampling(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and _nni_attr(node.func) in ALL_TYPES


def _choice(options: List[ast.expr], where: str) -> Tuple[Dict[str, Any], str]:
    """A literal option is listed (and labelled) as its value, any other as its source text."""
    if not options:
        raise AnnotationError(f'{where}: nni.choice needs at least one option')
    entries: List[Any] = []
    labels: List[Any] = []
    code: List[str] = []
    for option in options:
        label = ast.unparse(option)
        if _is_sampling(option):
            inner_space, inner_code = _sampling(option, where)
            entries.append({'_name': label, 'value': inner_space})
            code.append(f'nni.smartparam.nested_sample({_nni_attr(option.func)!r}, {inner_code})')
        else:
            ok, value = _literal_scalar(option)
            label = value if ok else label
            entries.append(label)
            code.append(ast.unparse(option))
        # labels are dict keys at run time: True and 1 (or 1 and 1.0) would collide
        if any(label == other for other in labels):
            raise AnnotationError(f'{where}: nni.choice options must be distinct, {ast.unparse(option)!r} repeats an option')
        labels.append(label)
    text = '{' + ', '.join(f'{label!r}: {c}' for label, c in zip(labels, code)) + '}'
    return {'_type': 'choice', '_value': entries}, text


def _literal_scalar(node: ast.expr) -> Tuple[bool, Any]:
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None
    if value is None or isinstance(value, (bool, int, str)) or (isinstance(value, float) and value == value
                                                                and abs(value) != float('inf')):
        return True, value
    return False, None


def _function_choice(stmt, following, src: _Source, functions: List[ast.expr], name_node: Optional[ast.expr],
                     where: str, module: str) -> Annotation:
    for f in functions:
        if not isinstance(f, ast.Call):
            raise AnnotationError(f'{where}: @nni.function_choice options must be complete function calls '
                                  f'such as max_pool(x, 2), got {ast.unparse(f)!r}')
    # without name=, the replaced call is the first option's function (v2.5 names it by line)
    function = ast.unparse(name_node) if name_node is not None else ast.unparse(functions[0].func)
    name = ast.unparse(name_node) if name_node is not None else f'__line{stmt.lineno}'
    key = f'{module}/{name}/function_choice'
    target = _first_call(following, function)
    if target is None:
        raise AnnotationError(f'{where}: @nni.function_choice(name={function}) must be followed by a statement '
                              f'that calls {function}(...)')
    labels = [ast.unparse(f) for f in functions]
    if len(set(labels)) != len(labels):
        raise AnnotationError(f'{where}: @nni.function_choice options must be distinct')
    space = {'_type': 'choice', '_value': labels}
    _check(key, space, where)
    table = '{' + ', '.join(f'{label!r}: lambda: {label}' for label in labels) + '}'
    code = (f'nni.function_choice({table}, name={name!r}, key={key!r}, '
            f'default=lambda: ({src.segment(target)}))')
    start, end = src.span(target)
    return Annotation('function_choice', stmt.lineno, key, space, Edit(start, end, code))


def _mutable_layers(call: ast.Call, module: str, lineno: int, where: str) -> Tuple[str, Dict[str, Any], str]:
    """Key, search-space entry and code (``out = nni.mutable_layer(...); ...``) of one block."""
    if call.keywords or not call.args:
        raise AnnotationError(f'{where}: @nni.mutable_layers takes one dict per layer, '
                              f'e.g. {{layer_choice: [conv(x)], layer_output: out}}')
    key = f'{module}/mutable_block_{lineno}'
    value: Dict[str, Any] = {}
    code: List[str] = []
    for index, layer in enumerate(call.args):
        layer_id = f'mutable_layer_{index}'
        fields = _layer_fields(layer, f'{where}: @nni.mutable_layers layer {index}')
        space, text = _mutable_layer(fields, key, layer_id, f'{where}: @nni.mutable_layers layer {index}')
        value[layer_id] = space
        code.append(text)
    return key, {'_type': 'mutable_layer', '_value': value}, '; '.join(code)


def _layer_fields(layer: ast.expr, where: str) -> Dict[str, ast.expr]:
    if not isinstance(layer, ast.Dict):
        raise AnnotationError(f'{where}: must be a dict {{layer_choice: [...], layer_output: <variable>, ...}}, '
                              f'got {ast.unparse(layer)!r}')
    fields: Dict[str, ast.expr] = {}
    for k, v in zip(layer.keys, layer.values):
        name = k.id if isinstance(k, ast.Name) else k.value if isinstance(k, ast.Constant) else None
        if name not in _LAYER_FIELDS:
            shown = ast.unparse(k) if k is not None else '**'
            raise AnnotationError(f'{where}: unknown field {shown!r}; allowed: {", ".join(_LAYER_FIELDS)}')
        fields[name] = v
    for required in ('layer_choice', 'layer_output'):
        if required not in fields:
            raise AnnotationError(f'{where}: {required} is required')
    return fields


def _expressions(fields: Dict[str, ast.expr], name: str, where: str) -> List[ast.expr]:
    node = fields.get(name)
    if node is None:
        return []
    if not isinstance(node, ast.List) or any(isinstance(e, ast.Starred) for e in node.elts):
        raise AnnotationError(f'{where}: {name} must be a list [...], got {ast.unparse(node)!r}')
    return node.elts


def _mutable_layer(fields: Dict[str, ast.expr], key: str, layer_id: str, where: str) -> Tuple[Dict[str, Any], str]:
    choices = _expressions(fields, 'layer_choice', where)
    if not choices:
        raise AnnotationError(f'{where}: layer_choice must list at least one function call')
    funcs, funcs_args = [], []
    for c in choices:
        if not isinstance(c, ast.Call):
            raise AnnotationError(f'{where}: layer_choice items must be function calls such as conv(size=3), '
                                  f'got {ast.unparse(c)!r}')
        if (c.args and c.keywords) or any(isinstance(a, ast.Starred) for a in c.args) or any(k.arg is None for k in c.keywords):
            raise AnnotationError(f'{where}: layer_choice call {ast.unparse(c)!r} must take positional arguments only '
                                  f'or keyword arguments only')
        label = ast.unparse(c)
        args = ('{' + ', '.join(f'{k.arg!r}: {ast.unparse(k.value)}' for k in c.keywords) + '}' if c.keywords
                else '[' + ', '.join(ast.unparse(a) for a in c.args) + ']')
        funcs.append(f'{label!r}: {ast.unparse(c.func)}')
        funcs_args.append(f'{label!r}: {args}')
    labels = [ast.unparse(c) for c in choices]
    fixed = [ast.unparse(e) for e in _expressions(fields, 'fixed_inputs', where)]
    optional = [ast.unparse(e) for e in _expressions(fields, 'optional_inputs', where)]
    for name, items in (('layer_choice', labels), ('optional_inputs', optional)):
        if len(set(items)) != len(items):
            raise AnnotationError(f'{where}: {name} items must be distinct')
    size = _input_size(fields.get('optional_input_size'), len(optional), where)
    output = fields['layer_output']
    if not isinstance(output, (ast.Name, ast.Attribute, ast.Subscript)):
        raise AnnotationError(f'{where}: layer_output must be a variable, got {ast.unparse(output)!r}')
    space = {'layer_choice': labels, 'optional_inputs': optional, 'optional_input_size': size}
    code = (f'{ast.unparse(output)} = nni.mutable_layer({key!r}, {layer_id!r}, {{{", ".join(funcs)}}}, '
            f'{{{", ".join(funcs_args)}}}, [{", ".join(fixed)}], '
            f'{{{", ".join(f"{o!r}: {o}" for o in optional)}}}, {size!r})')
    return space, code


def _input_size(node: Optional[ast.expr], count: int, where: str) -> Any:
    if node is None:  # not given: one optional input when there are any
        return 1 if count else 0
    try:
        size = ast.literal_eval(node)
    except ValueError:
        size = None
    is_int = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
    if is_int(size) and 0 <= size <= count:
        return size
    if isinstance(size, list) and len(size) == 2 and all(map(is_int, size)) and 0 <= size[0] <= size[1] <= count:
        return size
    raise AnnotationError(f'{where}: optional_input_size must be an integer or [min, max] between 0 and the number '
                          f'of optional_inputs ({count}), got {ast.unparse(node)!r}')


def _first_call(stmt: Optional[ast.stmt], name: str) -> Optional[ast.Call]:
    if stmt is None or isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return None
    calls = [n for n in ast.walk(stmt) if isinstance(n, ast.Call) and ast.unparse(n.func) == name]
    if not calls:
        return None
    return min(calls, key=lambda n: (n.lineno, n.col_offset))


def _check(key: str, space: Dict[str, Any], where: str) -> None:
    try:
        check_search_space({key: space})
    except ValueError as e:
        raise AnnotationError(f'{where}: {e}') from None


_COMPOUND = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.If, ast.For, ast.AsyncFor, ast.While,
             ast.With, ast.AsyncWith, ast.Try) + tuple(getattr(ast, n) for n in ('Match', 'TryStar') if hasattr(ast, n))


def _import_edit(tree: ast.Module, src: _Source) -> Edit:
    """Where to put ``import nni.smartparam`` without moving any line when possible."""
    statement = 'import nni.smartparam'
    body = tree.body
    last_header = None
    for i, stmt in enumerate(body):
        docstring = (i == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
                     and isinstance(stmt.value.value, str) and not is_annotation(stmt))
        future = isinstance(stmt, ast.ImportFrom) and stmt.module == '__future__'
        if docstring or future:
            last_header = stmt
        else:
            break
    if last_header is not None:
        end = src.offset(last_header.end_lineno, last_header.end_col_offset)
        return Edit(end, end, f'; {statement}')
    first = body[0]
    lineno = min([first.lineno] + [d.lineno for d in getattr(first, 'decorator_list', [])])
    start = src.offset(lineno, 0)
    if isinstance(first, _COMPOUND):
        # a blank line just above (not one of the first two, which may hold a coding cookie)
        # takes the import without moving any line
        if lineno > 3 and not src.lines[lineno - 2].strip():
            blank = src.offset(lineno - 1, 0)
            return Edit(blank, blank + len(src.lines[lineno - 2].rstrip('\r\n')), statement)
        return Edit(start, start, f'{statement}\n')
    return Edit(start, start, f'{statement}; ')
