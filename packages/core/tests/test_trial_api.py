import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nni
import nni.trial
from nni.runtime.trial_metrics import decode_metric_records, encode_metric_record

TRIAL = textwrap.dedent("""
    import argparse
    import nni
    from nni.utils import merge_parameter

    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--batch_size", type=int, default=32)
    args = parser.parse_args([])
    params = nni.get_next_parameter()
    merge_parameter(args, params)
    print("PARAMS", params, args.lr, args.batch_size)
    print("AGAIN", nni.get_next_parameter())
    print("IDS", nni.get_experiment_id(), nni.get_trial_id(), nni.get_sequence_id())
    for epoch in range(2):
        nni.report_intermediate_result({"default": 0.5 + epoch / 10, "loss": 1.5})
    nni.report_final_result(0.75)
""")


def _run(tmp_path, env_extra, script=TRIAL):
    path = tmp_path / "trial.py"
    path.write_text(script)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNI_") or k in ("NNI_CONFIG_DIR", "NNI_EXPERIMENTS_DIR")}
    env.pop("MULTI_PHASE", None)
    env.update(env_extra)
    return subprocess.run([sys.executable, str(path)], env=env, capture_output=True, text=True, timeout=30, cwd=tmp_path)


def test_standalone(tmp_path):
    proc = _run(tmp_path, {})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "PARAMS {} 0.01 32"
    assert lines[1] == "AGAIN None"
    assert lines[2] == "IDS STANDALONE STANDALONE 0"
    assert lines[3] == "[nni standalone] Intermediate result: {'default': 0.5, 'loss': 1.5}  (Index 0)"
    assert lines[5] == "[nni standalone] Final result: 0.75"


def _local_env(tmp_path, **extra):
    sys_dir = tmp_path / "trials" / "nrbb2"
    sys_dir.mkdir(parents=True)
    env = {"NNI_PLATFORM": "local", "NNI_EXP_ID": "egchD4qy", "NNI_TRIAL_JOB_ID": "nrbb2", "NNI_TRIAL_SEQ_ID": "1",
           "NNI_SYS_DIR": str(sys_dir), "NNI_OUTPUT_DIR": str(sys_dir), "MULTI_PHASE": "false"}
    env.update(extra)
    return sys_dir, env


def test_local_platform_byte_exact_metrics(tmp_path):
    sys_dir, env = _local_env(tmp_path)
    (sys_dir / "parameter.cfg").write_text(json.dumps(
        {"parameter_id": 7, "parameter_source": "algorithm", "parameters": {"lr": 0.1, "batch_size": 64}, "parameter_index": 0}) + "\n")
    proc = _run(tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[:3] == ["PARAMS {'lr': 0.1, 'batch_size': 64} 0.1 64", "AGAIN None", "IDS egchD4qy nrbb2 1"]
    data = (sys_dir / ".nni" / "metrics").read_bytes()
    r0 = b'{"parameter_id": 7, "trial_job_id": "nrbb2", "type": "PERIODICAL", "sequence": 0, "value": "{\\"default\\": 0.5, \\"loss\\": 1.5}"}'
    r1 = b'{"parameter_id": 7, "trial_job_id": "nrbb2", "type": "PERIODICAL", "sequence": 1, "value": "{\\"default\\": 0.6, \\"loss\\": 1.5}"}'
    r2 = b'{"parameter_id": 7, "trial_job_id": "nrbb2", "type": "FINAL", "sequence": 0, "value": "0.75"}'
    expected = b"".join(b"ME%06d" % len(r) + r for r in (r0, r1, r2))
    assert data == expected
    assert [r["type"] for r in decode_metric_records(data)] == ["PERIODICAL", "PERIODICAL", "FINAL"]


def test_local_platform_missing_parameter_file_is_clear(tmp_path):
    sys_dir, env = _local_env(tmp_path)
    proc = _run(tmp_path, env)
    assert proc.returncode != 0
    assert "no parameters for trial 'nrbb2'" in proc.stderr


def test_multiphase_requests_next_parameters(tmp_path):
    sys_dir, env = _local_env(tmp_path, MULTI_PHASE="true")
    lines = [{"parameter_id": i, "parameter_source": "algorithm", "parameters": {"x": i}, "parameter_index": i} for i in range(2)]
    lines.append({"parameter_id": None, "parameter_source": "algorithm", "parameters": None, "parameter_index": 2})
    (sys_dir / "parameter.cfg").write_text("".join(json.dumps(line) + "\n" for line in lines))
    script = "import nni\nprint(nni.get_next_parameter(), nni.get_next_parameter(), nni.get_next_parameter(), nni.get_current_parameter('x'))\n"
    proc = _run(tmp_path, env, script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "{'x': 0} {'x': 1} None 1"
    records = decode_metric_records((sys_dir / ".nni" / "metrics").read_bytes())
    assert [(r["type"], r["parameter_index"]) for r in records] == [("REQUEST_PARAMETER", 1), ("REQUEST_PARAMETER", 2)]


@pytest.fixture
def local_inprocess(tmp_path, monkeypatch):
    sys_dir, env = _local_env(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    (sys_dir / "parameter.cfg").write_text(json.dumps(
        {"parameter_id": 1, "parameter_source": "algorithm", "parameters": {"a": 1, "b": "x"}, "parameter_index": 0}) + "\n")
    nni.trial._reset()
    yield sys_dir
    nni.trial._reset()


def test_in_process_numpy_and_current_parameter(local_inprocess):
    assert nni.get_current_parameter() is None
    assert nni.get_next_parameter() == {"a": 1, "b": "x"}
    assert nni.get_current_parameter() == {"a": 1, "b": "x"}
    assert nni.get_current_parameter("b") == "x"
    nni.report_intermediate_result(np.float32(0.5))
    nni.report_final_result({"default": np.float64(0.25), "arr": np.arange(2)})
    records = decode_metric_records((local_inprocess / ".nni" / "metrics").read_bytes())
    assert [r["value"] for r in records] == ["0.5", '{"default": 0.25, "arr": [0, 1]}']


@pytest.mark.parametrize("metric,expected", [
    ([0.1, 0.2], "[0.1, 0.2]"),
    ({"acc": 1, "loss": [1, 2]}, '{"acc": 1, "loss": [1, 2]}'),
    ({"default": None}, '{"default": null}'),
    ("0.5", '"0.5"'),
    (np.array([[1.5, 2.0]]), "[[1.5, 2.0]]"),
    (np.int64(7), "7"),
    ([np.float32(0.5), {"x": np.arange(2)}], '[0.5, {"x": [0, 1]}]'),
])
def test_any_json_serializable_metric_is_reported(local_inprocess, metric, expected):
    """v2.5: report_* accept any JSON-serializable metric; only built-in tuners need a scalar."""
    nni.report_intermediate_result(metric)
    nni.report_final_result(metric)
    records = decode_metric_records((local_inprocess / ".nni" / "metrics").read_bytes())
    assert [(r["type"], r["value"]) for r in records] == [("PERIODICAL", expected), ("FINAL", expected)]


@pytest.mark.parametrize("metric", [object(), {"x": {1, 2}}])
def test_unserializable_metric_rejected(local_inprocess, metric):
    with pytest.raises(TypeError, match="^metric must be JSON serializable: .*not JSON serializable$"):
        nni.report_final_result(metric)
    assert not (local_inprocess / ".nni" / "metrics").exists()


def test_nan_metric_is_reported_as_json_token(local_inprocess):
    nni.report_final_result(float("nan"))
    records = decode_metric_records((local_inprocess / ".nni" / "metrics").read_bytes())
    assert records[0]["value"] == "NaN"


def test_reports_without_get_next_parameter_use_file_parameter_id(local_inprocess):
    nni.report_final_result(1)
    assert decode_metric_records((local_inprocess / ".nni" / "metrics").read_bytes())[0]["parameter_id"] == 1


def test_encode_metric_record_counts_bytes():
    record = {"value": "é"}
    data = encode_metric_record(record)
    payload = json.dumps(record).encode()
    assert data == b"ME%06d" % len(payload) + payload


def test_parameter_file_helpers(tmp_path):
    from nni.runtime import protocol
    from nni.runtime.platform.local import append_parameter_line, read_parameter_file

    path = tmp_path / "parameter.cfg"
    append_parameter_line(str(path), protocol.pack_parameter(3, {"a": 1}))
    append_parameter_line(str(path), {"parameter_id": 4, "parameters": {"a": 2}, "parameter_index": 1})
    with open(path, "a") as f:
        f.write('{"parameter_id": 5, "param')  # a line being written
    assert [r["parameter_id"] for r in read_parameter_file(str(path))] == [3, 4]
    assert read_parameter_file(str(tmp_path / "missing.cfg")) == []


def test_scenario_trial_script_under_local_platform(tmp_path):
    from nni.testing.scenario import trial_script

    sys_dir, env = _local_env(tmp_path)
    (sys_dir / "parameter.cfg").write_text('{"parameter_id": 0, "parameter_source": "algorithm", "parameters": {"x": 2}, "parameter_index": 0}\n')
    proc = _run(tmp_path, env, trial_script(steps=3))
    assert proc.returncode == 0, proc.stderr
    records = decode_metric_records((sys_dir / ".nni" / "metrics").read_bytes())
    assert [(r["type"], r["sequence"], r["value"]) for r in records] == [
        ("PERIODICAL", 0, "2"), ("PERIODICAL", 1, "4"), ("PERIODICAL", 2, "8"), ("FINAL", 0, "8")]
