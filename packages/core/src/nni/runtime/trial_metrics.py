"""The trial metric record: one definition used by the trial side and by training services.

A trial reports a metric with ``nni.report_intermediate_result`` / ``nni.report_final_result``;
it travels as a *record* (a JSON object)::

    {"parameter_id": 0, "trial_job_id": "MoXrp", "type": "PERIODICAL", "sequence": 3,
     "value": "0.93"}

* ``type``: ``"PERIODICAL"`` (intermediate), ``"FINAL"``, or ``"REQUEST_PARAMETER"`` (a
  multi-phase trial asks for its next parameters; then ``value`` is ``""`` and the record has an
  extra ``"parameter_index"``).
* ``sequence``: 0, 1, 2, ... for the intermediate results of a trial; 0 for the final result.
* ``value``: the metric *as a JSON string* (``json.dumps(metric)``), as NNI does; any
  JSON-serializable metric is accepted (numbers, dicts, lists, ...); numpy scalars and arrays
  are converted to Python numbers / lists first. NaN and infinities are kept and
  written as the JSON tokens ``NaN`` / ``Infinity`` / ``-Infinity`` (Python's ``json`` reads them).

In the metrics file (``$NNI_OUTPUT_DIR/.nni/metrics``, local mode) each record is framed as::

    b"ME" + 6-digit zero-padded length in BYTES of the UTF-8 JSON + the UTF-8 JSON

so a record is at most 999,999 bytes. Records are appended with one ``write`` each; a reader
that tails the file uses :class:`MetricRecordReader`, which keeps an incomplete tail until the
rest arrives. Over HTTP (:mod:`nni.runtime.platform.http`) the same record dict is POSTed as JSON.
"""
from __future__ import annotations

from . import json_lite as json  # json's own C parser / encoder without `import json` (see json_lite)

TYPE_CHECKING = False  # typing is left out: every trial process imports this module
if TYPE_CHECKING:
    from typing import Any, Iterator

__all__ = [
    "METRIC_PREFIX",
    "MAX_RECORD_BYTES",
    "MetricFormatError",
    "dump_metric_value",
    "load_metric_value",
    "make_metric_record",
    "encode_metric_record",
    "decode_metric_records",
    "MetricRecordReader",
]

METRIC_PREFIX = b"ME"
_LEN_DIGITS = 6
_HEADER = len(METRIC_PREFIX) + _LEN_DIGITS
MAX_RECORD_BYTES = 10**_LEN_DIGITS - 1
METRIC_TYPES = ("PERIODICAL", "FINAL", "REQUEST_PARAMETER")


class MetricFormatError(ValueError):
    """A metrics stream is corrupt (bad prefix or length field)."""


def _to_builtin(obj: Any) -> Any:
    """json ``default`` hook: numpy (or torch) scalars and arrays -> Python numbers / lists.

    Duck-typed (``.tolist()``, then ``.item()``) so that numpy is never imported here: every
    trial process imports this module.
    """
    for method in ("tolist", "item"):
        convert = getattr(obj, method, None)
        if callable(convert):
            try:
                return convert()
            except (TypeError, ValueError):
                continue
    raise TypeError(f"metric contains an object of type {type(obj).__name__} that is not JSON serializable")


def dump_metric_value(metric: Any) -> str:
    """Return a reported metric as the JSON string that goes into ``value``.

    Any JSON-serializable metric is accepted, as in NNI v2.5: numbers (NaN/inf allowed), dicts,
    lists, strings, numpy scalars and arrays (converted to numbers / lists). Built-in tuners and
    assessors need a number or a dict with a numeric ``'default'`` key; they say so, naming the
    metric, when they get something else (:func:`nni.utils.extract_scalar_reward`).

    Raises:
        TypeError: the metric (or something inside it) is not JSON serializable.
    """
    if isinstance(metric, float) and type(metric) is not float:
        metric = float(metric)  # numpy.float64 is a float subclass; keep the plain number
    try:
        return json.dumps(metric, default=_to_builtin)
    except TypeError as err:
        raise TypeError(f"metric must be JSON serializable: {err}") from None
    except ValueError as err:  # circular reference
        raise TypeError(f"metric must be JSON serializable: {err}") from None


def load_metric_value(value: str) -> Any:
    """Inverse of :func:`dump_metric_value` (the ``value`` field of a record back to an object)."""
    return json.loads(value)


def make_metric_record(
    parameter_id: Any, trial_job_id: str, metric_type: str, sequence: int, value: str, **extra: Any
) -> dict:
    """The record dict, keys in canonical order."""
    if metric_type not in METRIC_TYPES:
        raise ValueError(f"metric type must be one of {', '.join(METRIC_TYPES)}, got {metric_type!r}")
    record = {
        "parameter_id": parameter_id,
        "trial_job_id": trial_job_id,
        "type": metric_type,
        "sequence": sequence,
        "value": value,
    }
    record.update(extra)
    return record


def encode_metric_record(record: dict) -> bytes:
    """``b'ME' + b'%06d' % len(payload) + payload`` with ``payload = json.dumps(record)`` (UTF-8)."""
    payload = json.dumps(record).encode("utf-8")
    if len(payload) > MAX_RECORD_BYTES:
        raise ValueError(f"metric record is {len(payload)} bytes; at most {MAX_RECORD_BYTES} are allowed")
    return METRIC_PREFIX + b"%06d" % len(payload) + payload


class MetricRecordReader:
    """Incremental decoder of a metrics byte stream.

    Example:
        >>> reader = MetricRecordReader()
        >>> data = encode_metric_record({"type": "FINAL", "value": "1"})
        >>> list(reader.feed(data[:5])), list(reader.feed(data[5:]))
        ([], [{'type': 'FINAL', 'value': '1'}])
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.offset = 0  # bytes consumed in complete records (for resuming a tail)

    @property
    def pending(self) -> int:
        """Bytes held back because their record is not complete yet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> Iterator[dict]:
        """Add ``data``; yield every record it completes, in order."""
        self._buffer += data
        return iter(self._drain())

    def _drain(self) -> list[dict]:
        out = []
        buf = self._buffer
        pos = 0
        while len(buf) - pos >= _HEADER:
            if buf[pos : pos + 2] != METRIC_PREFIX:
                raise MetricFormatError(f"metrics stream: expected b'ME' at byte {self.offset + pos}, got {bytes(buf[pos:pos + 2])!r}")
            digits = bytes(buf[pos + 2 : pos + _HEADER])
            if not digits.isdigit():
                raise MetricFormatError(f"metrics stream: bad length field {digits!r} at byte {self.offset + pos}")
            size = int(digits)
            if len(buf) - pos - _HEADER < size:
                break
            payload = bytes(buf[pos + _HEADER : pos + _HEADER + size])
            out.append(json.loads(payload.decode("utf-8")))
            pos += _HEADER + size
        del buf[:pos]
        self.offset += pos
        return out


def decode_metric_records(data: bytes) -> list[dict]:
    """Every record of a complete metrics file; raises :class:`MetricFormatError` on a partial tail."""
    reader = MetricRecordReader()
    records = list(reader.feed(data))
    if reader.pending:
        raise MetricFormatError(f"metrics stream ends inside a record ({reader.pending} bytes left)")
    return records
