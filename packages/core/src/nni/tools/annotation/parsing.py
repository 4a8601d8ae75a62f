"""Finding NNI annotations in a Python module and turning each into a search-space entry
and a source edit.

An annotation is a statement that is only a string literal whose text starts with ``@nni.``:

* ``'''@nni.variable(nni.<type>(...), name=x)'''`` — the next statement must assign ``x``;
  its right-hand side becomes ``nni.smartparam.<type>(..., name='<module>/x', default=<rhs>)``;
* ``'''@nni.function_choice(f(a), g(a), name=f)'''`` — the first call of ``f`` in the next
  statement becomes ``nni.smartparam.function_choice(lambda: f(a), lambda: g(a), ...)``;
* ``'''@nni.report_intermediate_result(m)'''`` / ``'''@nni.report_final_result(m)'''`` —
  the string becomes the call ``nni.report_intermediate_result(m)`` / ``nni.report_final_result(m)``.

Parameter names in the generated search space are ``<module>/<name>``: the module path of the
file relative to the code directory, dotted (``mnist``, ``models.cnn``; a package's
``__init__.py`` is the package), a slash, then the annotation's ``name`` as written
(``learning_rate``, ``self.lr``).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from nni.common.hpo_utils.validation import ALL_TYPES, check_search_space

__all__ = ['Annotation', 'Edit', 'ModuleAnnotations', 'parse_module', 'module_name_of']

_REPORTS = ('report_intermediate_result', 'report_final_result')
_KINDS = ('variable', 'function_choice') + _REPORTS
_ARGC = {'choice': None, 'randint': 2, 'uniform': 2, 'quniform': 3, 'loguniform': 2, 'qloguniform': 3,
         'normal': 2, 'qnormal': 3, 'lognormal': 2, 'qlognormal': 3}


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
    if kind in _REPORTS:
        if len(call.args) != 1 or call.keywords:
            raise AnnotationError(f'{where}: @nni.{kind} takes exactly one argument (the metric)')
        start, end = src.span(stmt)
        extra_lines = src.text.count('\n', start, end)
        code = f'nni.{kind}({ast.unparse(call.args[0])}' + '\n' * extra_lines + ')'
        return Annotation(kind, stmt.lineno, edit=Edit(start, end, code))

    sampling, name_node = _variable_args(call, kind, where)
    name = ast.unparse(name_node)
    key = f'{module}/{name}'
    if kind == 'variable':
        return _variable(stmt, following, src, sampling, name, key, where)
    return _function_choice(stmt, following, src, call, name, key, where)


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
    if name_node is None:
        raise AnnotationError(f'{where}: @nni.{kind} needs name=<the assigned {"variable" if kind == "variable" else "function"}>')
    if not isinstance(name_node, (ast.Name, ast.Attribute)):
        raise AnnotationError(f'{where}: @nni.{kind} name must be an identifier, got {ast.unparse(name_node)!r}')
    if kind == 'variable' and len(args) != 1:
        raise AnnotationError(f'{where}: @nni.variable takes one sampling function (e.g. nni.choice(...)) and name=')
    if kind == 'function_choice' and not args:
        raise AnnotationError(f'{where}: @nni.function_choice needs at least one function call')
    return args, name_node


def _variable(stmt, following, src: _Source, args, name: str, key: str, where: str) -> Annotation:
    value = _assigned_value(following, name)
    if value is None:
        raise AnnotationError(f'{where}: @nni.variable(name={name}) must be followed by an assignment to {name}')
    sampling = args[0]
    type_ = _nni_attr(sampling.func) if isinstance(sampling, ast.Call) else None
    if type_ not in ALL_TYPES:
        raise AnnotationError(f'{where}: @nni.variable needs a sampling function nni.<type>(...) with type one of '
                              f'{", ".join(ALL_TYPES)}; got {ast.unparse(sampling)!r}')
    space, code_args = _sampling(sampling, where)
    _check(key, space, where)
    code = f'nni.smartparam.{type_}({code_args}, name={key!r}, default=({src.segment(value)}))'
    start, end = src.span(value)
    return Annotation('variable', stmt.lineno, key, space, Edit(start, end, code))


def _assigned_value(stmt: Optional[ast.stmt], name: str) -> Optional[ast.expr]:
    if isinstance(stmt, ast.Assign) and any(ast.unparse(t) == name for t in stmt.targets):
        return stmt.value
    if isinstance(stmt, ast.AnnAssign) and stmt.value is not None and ast.unparse(stmt.target) == name:
        return stmt.value
    return None


def _sampling(call: ast.Call, where: str) -> Tuple[Dict[str, Any], str]:
    """Search-space entry and the smartparam argument text for ``nni.<type>(...)``."""
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
    if not options:
        raise AnnotationError(f'{where}: nni.choice needs at least one option')
    plain = [o for o in options if not _is_sampling(o)]
    literals = [_literal_scalar(o) for o in plain]
    all_literal = all(ok for ok, _ in literals)
    entries: List[Any] = []
    keys: List[Any] = []
    code: List[str] = []
    for option in options:
        if _is_sampling(option):
            inner_space, inner_code = _sampling(option, where)
            label = ast.unparse(option)
            entries.append({'_name': label, 'value': inner_space})
            keys.append(label)
            code.append(f'nni.smartparam.nested_sample({_nni_attr(option.func)!r}, {inner_code})')
        else:
            ok, value = _literal_scalar(option)
            label = value if all_literal else ast.unparse(option)
            entries.append(label)
            keys.append(label)
            code.append(ast.unparse(option))
    text = ', '.join(code)
    if not all_literal or len(plain) != len(options):
        text += f', keys={keys!r}'
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


def _function_choice(stmt, following, src: _Source, call: ast.Call, name: str, key: str, where: str) -> Annotation:
    functions = list(call.args)
    for f in functions:
        if not isinstance(f, ast.Call):
            raise AnnotationError(f'{where}: @nni.function_choice options must be complete function calls '
                                  f'such as max_pool(x, 2), got {ast.unparse(f)!r}')
    target = _first_call(following, name)
    if target is None:
        raise AnnotationError(f'{where}: @nni.function_choice(name={name}) must be followed by a statement '
                              f'that calls {name}(...)')
    labels = [ast.unparse(f) for f in functions]
    space = {'_type': 'choice', '_value': labels}
    _check(key, space, where)
    lambdas = ', '.join(f'lambda: {label}' for label in labels)
    code = (f'nni.smartparam.function_choice({lambdas}, name={key!r}, keys={labels!r}, '
            f'default=lambda: ({src.segment(target)}))')
    start, end = src.span(target)
    return Annotation('function_choice', stmt.lineno, key, space, Edit(start, end, code))


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
