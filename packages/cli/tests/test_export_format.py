"""``experiment export`` JSON / CSV from REST-shaped data, and the import-file check."""
from __future__ import annotations

import csv
import io
import json

import pytest

from nni.tools.nnictl import export as ex

EXPORT_DATA = [
    {"parameter": {"lr": 0.1, "opt": {"_name": "sgd", "m": 0.9}}, "value": "0.5", "trialJobId": "A"},
    {"parameter": {"lr": 0.01, "opt": {"_name": "adam"}}, "value": json.dumps({"default": 0.7, "loss": 0.3}), "trialJobId": "B"},
    {"parameter": {"lr": 0.2}, "value": json.dumps(json.dumps(0.25)), "trialJobId": "C"},  # JSON of a JSON string
]
METRICS = [
    {"trialJobId": "A", "type": "PERIODICAL", "sequence": 1, "timestamp": 2, "data": "0.4"},
    {"trialJobId": "A", "type": "PERIODICAL", "sequence": 0, "timestamp": 1, "data": "0.2"},
    {"trialJobId": "A", "type": "FINAL", "sequence": 0, "timestamp": 3, "data": "0.5"},
    {"trialJobId": "B", "type": "PERIODICAL", "sequence": 0, "timestamp": 1, "data": json.dumps({"default": 0.6, "loss": 0.4})},
]


def test_json_is_valid_import_input():
    records = ex.export_records(EXPORT_DATA)
    assert records[0] == {"parameter": {"lr": 0.1, "opt": {"_name": "sgd", "m": 0.9}}, "value": 0.5, "trialJobId": "A"}
    assert records[1]["value"] == {"default": 0.7, "loss": 0.3}
    assert records[2]["value"] == 0.25
    parsed = json.loads(ex.to_json(records))
    assert ex.check_import_data(parsed, "f.json") == [{"parameter": r["parameter"], "value": r["value"]} for r in records]


def test_intermediate_in_order():
    inter = ex.intermediates_by_trial(METRICS)
    assert inter == {"A": [0.2, 0.4], "B": [{"default": 0.6, "loss": 0.4}]}
    records = ex.export_records(EXPORT_DATA, inter)
    assert records[0]["intermediate"] == [0.2, 0.4] and records[2]["intermediate"] == []


def test_csv_one_row_per_trial():
    records = ex.export_records(EXPORT_DATA, ex.intermediates_by_trial(METRICS))
    rows = list(csv.reader(io.StringIO(ex.to_csv(records, intermediate=True))))
    assert rows[0] == ["trialJobId", "lr", "opt", "reward", "loss", "intermediate"]
    assert rows[1] == ["A", "0.1", '{"_name": "sgd", "m": 0.9}', "0.5", "", "[0.2, 0.4]"]
    assert rows[2] == ["B", "0.01", '{"_name": "adam"}', "0.7", "0.3", '[{"default": 0.6, "loss": 0.4}]']
    assert rows[3][:4] == ["C", "0.2", "", "0.25"]
    plain = list(csv.reader(io.StringIO(ex.to_csv(records))))
    assert plain[0] == ["trialJobId", "lr", "opt", "reward", "loss"] and len(plain) == 4


@pytest.mark.parametrize("data, message", [
    ({"parameter": {}}, "expected a JSON list"),
    ([1], r"f\[0\]: expected an object"),
    ([{"value": 1}], r"f\[0\].parameter: required field is missing"),
    ([{"parameter": {"x": 1}}], r"f\[0\].value: required field is missing"),
    ([{"parameter": [1], "value": 1}], r"f\[0\].parameter: expected an object"),
    ([{"parameter": {"x": 1}, "value": {"loss": 1}}], r"f\[0\].value: expected a number or a dict with a numeric 'default'"),
])
def test_import_check_names_the_field(data, message):
    with pytest.raises(ValueError, match=message):
        ex.check_import_data(data, "f")


def test_default_metric():
    assert ex.default_metric("0.5") == 0.5
    assert ex.default_metric({"default": 2, "x": 1}) == 2
    assert ex.default_metric(True) is None and ex.default_metric("nan?") is None
