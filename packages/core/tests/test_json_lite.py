"""nni.runtime.json_lite gives json.loads / json.dumps results without importing json."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from nni.runtime import json_lite

VALUES = [
    0, -1, 2**70, 1.5, -0.0, 1e-300, 3.141592653589793, True, False, None, "", "héllo \u2603 \U0001f600 \"q\" \\ \n\t\x01",
    [], {}, [1, [2, [3, {"a": None}]]], {"b": 1, "a": [1.25, "x"], "ü": {"nested": [True, None]}},
    {1: "int key", 2.5: "float key", False: "bool key", None: "none key"},
    (1, 2), float("inf"), float("-inf"),
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_dumps_matches_json(value):
    assert json_lite.dumps(value) == json.dumps(value)


def test_nan_and_default_hook():
    assert json_lite.dumps(float("nan")) == "NaN"

    class Scalar:
        def item(self):
            return 7

    hook = lambda o: o.item()  # noqa: E731
    assert json_lite.dumps({"v": Scalar()}, default=hook) == json.dumps({"v": Scalar()}, default=hook) == '{"v": 7}'


def test_dumps_errors_are_jsons():
    with pytest.raises(TypeError, match="not JSON serializable"):
        json_lite.dumps({"x": object()})
    circular: list = []
    circular.append(circular)
    with pytest.raises(ValueError, match="Circular reference"):
        json_lite.dumps(circular)
    # the encoder of a failed call leaves nothing behind for the next one
    shared = [1]
    assert json_lite.dumps([shared, shared]) == "[[1], [1]]"


@pytest.mark.parametrize("value", [v for v in VALUES if not isinstance(v, (tuple, dict)) or v == {}], ids=str)
def test_loads_round_trip(value):
    text = json.dumps(value)
    assert json_lite.loads(text) == json.loads(text)
    assert json_lite.loads(("  \n" + text + " \r\n").encode()) == json.loads(text)


def test_loads_nan_and_nesting():
    got = json_lite.loads('{"a": [NaN, Infinity, -Infinity, 1E3, 2, "x\\u00e9"], "b": {"c": null}}')
    assert math.isnan(got["a"][0]) and got["a"][1:] == [math.inf, -math.inf, 1000.0, 2, "xé"]
    assert isinstance(got["a"][3], float) and isinstance(got["a"][4], int) and got["b"] == {"c": None}


@pytest.mark.parametrize("text, message", [("", "Expecting value"), ("  ", "Expecting value"), ("[1,", "Expecting value"),
                                           ("{} x", "Extra data"), ('{"a" 1}', "Expecting ':' delimiter")])
def test_loads_errors_are_jsons(text, message):
    with pytest.raises(json.JSONDecodeError, match=message) as got:
        json_lite.loads(text)
    with pytest.raises(json.JSONDecodeError) as want:
        json.loads(text)
    assert got.value.pos == want.value.pos


def test_trial_process_does_not_import_json(tmp_path):
    """The trial API (read parameters, report) costs a trial process no `import json` / `re`."""
    (tmp_path / ".nni").mkdir()
    (tmp_path / "parameter.cfg").write_text('{"parameter_id": 3, "parameter_source": "algorithm", "parameters": {"x": 1.5}, "parameter_index": 0}\n')
    env = {"NNI_PLATFORM": "local", "NNI_EXP_ID": "e", "NNI_TRIAL_JOB_ID": "t", "NNI_TRIAL_SEQ_ID": "0",
           "NNI_SYS_DIR": str(tmp_path), "NNI_OUTPUT_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    code = ("import sys, nni\nassert nni.get_next_parameter() == {'x': 1.5}\nnni.report_intermediate_result({'default': 0.5})\n"
            "nni.report_final_result(0.75)\nprint(sorted(m for m in ('json', 're', 'enum', 'importlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    from nni.runtime.trial_metrics import decode_metric_records

    records = decode_metric_records((tmp_path / ".nni" / "metrics").read_bytes())
    assert [(r["type"], r["value"], r["parameter_id"]) for r in records] == [("PERIODICAL", '{"default": 0.5}', 3), ("FINAL", "0.75", 3)]
