"""NAS-Bench-101: graph utilities, and a small release in the official TFRecord format (JSON rows
with base64 ``ModelMetrics`` protobufs, encoded here by hand) turned into the database and queried."""
import base64
import json
import struct
import subprocess
import sys

import pytest

from nni.nas.benchmarks import BenchmarkDatabaseNotFoundError
from nni.nas.benchmarks.nasbench101 import (CONV1X1_BN_RELU, CONV3X3_BN_RELU, INPUT, MAXPOOL3X3, OUTPUT,
                                            query_nb101_trial_stats)
from nni.nas.benchmarks.nasbench101.graph_util import (hash_module, infer_num_vertices,
                                                       nasbench_format_to_architecture_repr)

DOC_ARCH = {"op1": "conv3x3-bn-relu", "op2": "maxpool3x3", "op3": "conv3x3-bn-relu", "op4": "conv3x3-bn-relu",
            "op5": "conv1x1-bn-relu", "input1": [0], "input2": [1], "input3": [2], "input4": [0],
            "input5": [0, 3, 4], "input6": [2, 5]}
DOC_MATRIX = [[0, 1, 0, 0, 1, 1, 0],
              [0, 0, 1, 0, 0, 0, 0],
              [0, 0, 0, 1, 0, 0, 1],
              [0, 0, 0, 0, 0, 1, 0],
              [0, 0, 0, 0, 0, 1, 0],
              [0, 0, 0, 0, 0, 0, 1],
              [0, 0, 0, 0, 0, 0, 0]]
DOC_LABELS = [INPUT, CONV3X3_BN_RELU, MAXPOOL3X3, CONV3X3_BN_RELU, CONV3X3_BN_RELU, CONV1X1_BN_RELU, OUTPUT]
# Two parallel branches 0 -> 1 -> 3 and 0 -> 2 -> 3, numbered both ways round: the same cell.
BRANCHES_A = {"op1": CONV3X3_BN_RELU, "op2": MAXPOOL3X3, "input1": [0], "input2": [0], "input3": [1, 2]}
BRANCHES_B = {"op1": MAXPOOL3X3, "op2": CONV3X3_BN_RELU, "input1": [0], "input2": [0], "input3": [2, 1]}
OTHER = {"op1": CONV1X1_BN_RELU, "op2": MAXPOOL3X3, "input1": [0], "input2": [0], "input3": [1, 2]}


def test_format_conversion_of_the_docs_example():
    assert nasbench_format_to_architecture_repr(DOC_MATRIX, DOC_LABELS) == (7, DOC_ARCH)
    assert infer_num_vertices(DOC_ARCH) == 7
    assert infer_num_vertices({"input1": [0]}) == 2


def test_hash_is_invariant_under_renumbering():
    ha, hb, ho = (hash_module(a, infer_num_vertices(a)) for a in (BRANCHES_A, BRANCHES_B, OTHER))
    assert ha == hb and ha != ho and len(ha) == 32 and int(ha, 16) >= 0
    assert hash_module(DOC_ARCH, 7) != ha


@pytest.mark.parametrize("arch,match", [
    ({"op1": CONV3X3_BN_RELU, "inputs1": [0]}, r"arch: key 'inputs1' is not 'op<i>' or 'input<i>'"),
    ({"op1": CONV3X3_BN_RELU, "op2": CONV3X3_BN_RELU, "input1": [0], "input2": [1]}, r"arch: op keys must be op1 … op1 for 3 vertices, got \[.op1., .op2.\]"),
    ({"op1": "conv5x5", "input1": [0], "input2": [1]}, r"arch\['op1'\]: 'conv5x5' is not one of conv3x3-bn-relu"),
    ({"op1": CONV3X3_BN_RELU, "input1": [0], "input2": [2]}, r"arch\['input2'\]: 2 is not an earlier vertex"),
])
def test_bad_arch_is_a_one_line_error(nb101_dir, arch, match):
    with pytest.raises(ValueError, match=match):
        query_nb101_trial_stats(arch, None)


# ---- the official raw format -------------------------------------------------------------

def _varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def _double(field, value):
    return _varint(field << 3 | 1) + struct.pack("<d", value)


def _message(field, payload):
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _model_metrics(evals, params, total_time):
    body = b""
    for epoch, time_, train, valid, test in evals:
        data = (_double(1, epoch) + _double(2, time_) + _double(3, train) + _double(4, valid) + _double(5, test)
                + _message(6, b"gs://checkpoint"))
        body += _message(1, data)
    return body + _varint(2 << 3) + _varint(params) + _double(3, total_time)


def _record(matrix, labels, epochs, evals, params):
    adjacency = "".join(str(x) for row in matrix for x in row)
    metrics = base64.b64encode(_model_metrics(evals, params, 100.0)).decode()
    return json.dumps(["0" * 32, epochs, adjacency, ",".join(labels), metrics]).encode()


def _tfrecord(records):
    out = b""
    for rec in records:
        out += struct.pack("<Q", len(rec)) + b"\0" * 4 + rec + b"\0" * 4
    return out


def _arch_matrix(arch):
    n = infer_num_vertices(arch)
    matrix = [[0] * n for _ in range(n)]
    for v in range(1, n):
        for u in arch[f"input{v}"]:
            matrix[u][v] = 1
    return matrix, [INPUT] + [arch[f"op{v}"] for v in range(1, n - 1)] + [OUTPUT]


@pytest.fixture(scope="module")
def nb101_db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nb101")
    records = []
    for arch, base in ((DOC_ARCH, 0.90), (BRANCHES_A, 0.80), (OTHER, 0.70)):
        matrix, labels = _arch_matrix(arch)
        for epochs in (4, 108):
            for repeat in range(3):
                final = base + repeat / 100
                evals = [(0.0, 0.0, 0.1, 0.1, 0.1), (epochs / 2, 50.0, final - 0.1, final - 0.15, final - 0.2),
                         (float(epochs), 100.0 + repeat, final, final - 0.05, final - 0.1)]
                records.append(_record(matrix, labels, epochs, evals, 1_234_567 + repeat))
    raw = tmp / "nasbench_full.tfrecord"
    raw.write_bytes(_tfrecord(records))
    out = tmp / "db"
    proc = subprocess.run([sys.executable, "-m", "nni.nas.benchmarks.nasbench101.db_gen", str(raw),
                           "--out", str(out / "nasbench101.db"), "--quiet"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "18 trials written" in proc.stdout
    return out


@pytest.fixture
def nb101_dir(nb101_db, monkeypatch):
    monkeypatch.setenv("NASBENCHMARK_DIR", str(nb101_db))
    return nb101_db


def test_docs_query_with_intermediates(nb101_dir):
    rows = list(query_nb101_trial_stats(DOC_ARCH, 108, include_intermediates=True))
    assert len(rows) == 3
    row = rows[0]
    assert row["config"]["arch"] == DOC_ARCH and row["config"]["num_vertices"] == 7 and row["config"]["num_epochs"] == 108
    assert row["config"]["hash"] == hash_module(DOC_ARCH, 7)
    # 0-1 accuracies become 0-100, parameters millions, the final stats are the last evaluation
    assert row["train_acc"] == pytest.approx(90.0) and row["valid_acc"] == pytest.approx(85.0)
    assert row["test_acc"] == pytest.approx(80.0) and row["training_time"] == pytest.approx(100.0)
    assert row["parameters"] == pytest.approx(1.234567)
    assert [r["current_epoch"] for r in row["intermediates"]] == [0, 54, 108]
    assert row["intermediates"][1]["valid_acc"] == pytest.approx(75.0)
    assert row["intermediates"][1]["training_time"] == pytest.approx(50.0)


def test_isomorphism(nb101_dir):
    iso = list(query_nb101_trial_stats(BRANCHES_B, 4))
    assert len(iso) == 3 and iso[0]["config"]["arch"] == BRANCHES_A
    assert list(query_nb101_trial_stats(BRANCHES_B, 4, isomorphism=False)) == []
    exact = list(query_nb101_trial_stats(BRANCHES_A, 4, isomorphism=False))
    assert [r["id"] for r in exact] == [r["id"] for r in iso]


def test_key_and_input_order_do_not_matter(nb101_dir):
    shuffled = {k: (list(reversed(v)) if isinstance(v, list) else v) for k, v in reversed(list(DOC_ARCH.items()))}
    expected = [r["id"] for r in query_nb101_trial_stats(DOC_ARCH, 108, isomorphism=False)]
    assert len(expected) == 3
    assert [r["id"] for r in query_nb101_trial_stats(shuffled, 108, isomorphism=False)] == expected


def test_wildcards_epochs_and_mean(nb101_dir):
    assert len(list(query_nb101_trial_stats(None, None))) == 18
    assert len(list(query_nb101_trial_stats(None, 4))) == 9
    assert len(list(query_nb101_trial_stats(OTHER, None))) == 6
    assert list(query_nb101_trial_stats(None, 36)) == []
    means = list(query_nb101_trial_stats(OTHER, 108, reduction="mean", include_intermediates=True))
    assert len(means) == 1
    assert means[0]["train_acc"] == pytest.approx(71.0) and means[0]["training_time"] == pytest.approx(101.0)
    assert means[0]["intermediates"][2] == pytest.approx(
        {"current_epoch": 108, "train_acc": 71.0, "valid_acc": 66.0, "test_acc": 61.0, "training_time": 101.0})
    assert len(list(query_nb101_trial_stats(None, None, reduction="mean"))) == 6


def test_missing_database_names_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("NASBENCHMARK_DIR", str(tmp_path))
    with pytest.raises(BenchmarkDatabaseNotFoundError, match=r"NAS-Bench-101 database not found: .*nasbench101.db; "
                       r"create it with `python -m nni.nas.benchmarks.nasbench101.db_gen nasbench_full.tfrecord`"):
        query_nb101_trial_stats(DOC_ARCH, 108)


def test_db_gen_rejects_a_file_that_is_not_nasbench101(tmp_path):
    raw = tmp_path / "bad.tfrecord"
    raw.write_bytes(_tfrecord([b"not json"]))
    proc = subprocess.run([sys.executable, "-m", "nni.nas.benchmarks.nasbench101.db_gen", str(raw),
                           "--out", str(tmp_path / "x.db")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "record 0: not the NAS-Bench-101 JSON list" in proc.stderr
    assert not (tmp_path / "x.db").exists() and not (tmp_path / "x.db.tmp").exists()
