"""``json.loads`` / ``json.dumps`` for the trial process, without importing :mod:`json`.

``import json`` pulls in :mod:`re` and :mod:`enum`: about 20 ms of CPU, as much again as the
whole ``python -c 'import nni'`` a trial starts with. The parser and the encoder themselves are
CPython's C accelerator (``_json``), which :mod:`json` uses too; this module only sets them up
the way ``json.loads(s)`` and ``json.dumps(obj, default=...)`` (default arguments) do, so the
text and the objects are the same. Where ``_json`` is missing (another interpreter) it falls
back to :mod:`json`. Errors are json's: :class:`json.JSONDecodeError` (a ``ValueError``, imported
only when raised), ``TypeError`` for an object that is not serializable, ``ValueError`` for a
circular reference.
"""
from __future__ import annotations

__all__ = ["loads", "dumps"]

_WHITESPACE = " \t\n\r"

try:
    from _json import encode_basestring_ascii as _encode_str
    from _json import make_encoder as _make_encoder
    from _json import make_scanner as _make_scanner
except ImportError:  # pragma: no cover - not CPython
    _make_encoder = None


def _decode_error(msg: str, doc: str, pos: int) -> Exception:
    from json import JSONDecodeError

    return JSONDecodeError(msg, doc, pos)


def _not_serializable(obj):
    raise TypeError(f"Object of type {obj.__class__.__name__} is not JSON serializable")


if _make_encoder is not None:

    class _ScannerContext:
        # the attributes json.JSONDecoder() gives the C scanner
        strict = True
        object_hook = None
        object_pairs_hook = None
        parse_float = float
        parse_int = int
        parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__
        memo: dict = {}

    _scan = _make_scanner(_ScannerContext())

    def loads(s):
        """``json.loads(s)`` for a ``str`` (bytes are decoded as UTF-8)."""
        if isinstance(s, (bytes, bytearray)):
            s = s.decode("utf-8")
        if not isinstance(s, str):
            raise TypeError(f"the JSON object must be str or bytes, not {s.__class__.__name__}")
        start = len(s) - len(s.lstrip(_WHITESPACE))
        try:
            obj, end = _scan(s, start)
        except StopIteration as err:
            raise _decode_error("Expecting value", s, err.value) from None
        if s[end:].strip(_WHITESPACE):
            raise _decode_error("Extra data", s, end + len(s[end:]) - len(s[end:].lstrip(_WHITESPACE)))
        return obj

    def dumps(obj, default=None) -> str:
        """``json.dumps(obj, default=default)``: ASCII, ``', '`` / ``': '`` separators, NaN allowed."""
        if isinstance(obj, str):
            return _encode_str(obj)
        # a fresh encoder per call: its markers (circular-reference check) must start empty
        encode = _make_encoder({}, default or _not_serializable, _encode_str, None, ": ", ", ", False, False, True)
        return "".join(encode(obj, 0))

else:  # pragma: no cover - not CPython

    def loads(s):
        import json

        return json.loads(s)

    def dumps(obj, default=None) -> str:
        import json

        return json.dumps(obj, default=default)
