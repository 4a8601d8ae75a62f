import json

import pytest

from nni.runtime.trial_metrics import (
    MetricFormatError,
    MetricRecordReader,
    decode_metric_records,
    dump_metric_value,
    encode_metric_record,
    make_metric_record,
)


def test_reader_keeps_partial_tail():
    records = [make_metric_record(i, "T", "PERIODICAL", i, json.dumps(i * 0.5)) for i in range(3)]
    data = b"".join(encode_metric_record(r) for r in records)
    reader = MetricRecordReader()
    got = []
    for i in range(0, len(data), 7):  # byte-by-byte-ish chunks
        got.extend(reader.feed(data[i:i + 7]))
    assert got == records
    assert reader.pending == 0 and reader.offset == len(data)
    got = list(reader.feed(data[:10]))
    assert got == [] and reader.pending == 10


def test_reader_rejects_garbage():
    with pytest.raises(MetricFormatError, match="expected b'ME'"):
        list(MetricRecordReader().feed(b"XX000002{}"))
    with pytest.raises(MetricFormatError, match="ends inside a record"):
        decode_metric_records(encode_metric_record({"a": 1})[:-1])


def test_dump_metric_value():
    assert dump_metric_value(3) == "3"
    assert dump_metric_value(float("inf")) == "Infinity"
    assert dump_metric_value({"default": 1, "x": [1, 2]}) == '{"default": 1, "x": [1, 2]}'
    assert dump_metric_value({"x": 1}) == '{"x": 1}'
    assert dump_metric_value([1, 2.5]) == "[1, 2.5]"


def test_record_too_large():
    with pytest.raises(ValueError, match="at most 999999"):
        encode_metric_record({"value": "x" * 1_000_000})
