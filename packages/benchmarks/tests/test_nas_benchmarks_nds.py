"""NDS: small release files in the official JSON format (named as in the release), turned into the
database by ``python -m nni.nas.benchmarks.nds.db_gen`` and queried as the docs' examples do."""
import json
import math
import subprocess
import sys

import pytest

from nni.nas.benchmarks import BenchmarkDatabaseNotFoundError
from nni.nas.benchmarks.nds import CONV_7X1_1X7, NdsTrialConfig, query_nds_trial_stats
from nni.nas.benchmarks.nds.db_gen import parse_file_name

# The docs' nas_cell example (5 nodes per cell), as a release genotype: [op, input] for x then y.
NORMAL = [["avg_pool_3x3", 0], ["conv_7x1_1x7", 1], ["sep_conv_3x3", 2], ["sep_conv_5x5", 0],
          ["dil_sep_conv_3x3", 2], ["dil_sep_conv_3x3", 2], ["skip_connect", 4], ["dil_sep_conv_3x3", 4],
          ["conv_7x1_1x7", 2], ["sep_conv_3x3", 4]]
REDUCE = [["avg_pool_3x3", 0], ["dil_sep_conv_3x3", 1], ["sep_conv_3x3", 0], ["sep_conv_3x3", 0],
          ["skip_connect", 2], ["sep_conv_7x7", 0], ["conv_7x1_1x7", 4], ["skip_connect", 4],
          ["conv_7x1_1x7", 0], ["conv_7x1_1x7", 5]]
CELL_MODEL_SPEC = {"num_nodes_normal": 5, "num_nodes_reduce": 5, "depth": 12, "width": 32, "aux": False, "drop_prob": 0.0}
BOTTLENECK_SPEC = {"bot_muls": [0.0, 0.25, 0.25, 0.25], "ds": [1, 16, 1, 4], "num_gs": [1, 2, 1, 2],
                   "ss": [1, 1, 2, 2], "ws": [16, 64, 128, 16]}
BASIC_SPEC = {"ds": [1, 12, 12, 12], "ss": [1, 1, 2, 2], "ws": [16, 24, 24, 40]}


def _cell_spec():
    spec = {}
    for cell, pairs in (("normal", NORMAL), ("reduce", REDUCE)):
        for k, (op, inp) in enumerate(pairs):
            node, xy = divmod(k, 2)
            spec[f"{cell}_{node}_op_{'xy'[xy]}"] = op
            spec[f"{cell}_{node}_input_{'xy'[xy]}"] = inp
    spec["normal_concat"], spec["reduce_concat"] = [3, 5, 6], [3, 6]
    return spec


def _trial(net, seed, epochs=4, lr=0.1, wd=5e-4, base_err=30.0, nan_loss=False):
    return {"net": net, "optim": {"base_lr": lr, "wd": wd, "max_ep": epochs, "lr_policy": "cos"}, "rng_seed": seed,
            "params": 1_500_000 + seed, "flops": 250_000_000,
            "train_ep_top1": [base_err + 10 - 2 * e for e in range(epochs)],
            "test_ep_top1": [base_err + 12 - 2 * e + (3 if e == epochs - 1 else 0) for e in range(epochs)],
            "train_ep_loss": [math.nan if nan_loss and e == epochs - 1 else 2.0 - 0.3 * e for e in range(epochs)],
            "prec_time": {"train_fw_bw_time": 0.05, "test_fw_time": 0.01}, "min_test_top1": base_err}


@pytest.fixture(scope="module")
def nds_db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nds")
    raw = tmp / "nds_data"
    raw.mkdir()
    cell_net = {"genotype": {"normal": NORMAL, "normal_concat": [3, 5, 6], "reduce": REDUCE, "reduce_concat": [3, 6]},
                "width": 32, "depth": 12, "aux": False, "drop_prob": 0.0}
    files = {
        "Amoeba.json": [_trial(cell_net, 1), _trial(cell_net, 2, base_err=20.0),
                        _trial(dict(cell_net, width=16), 1, nan_loss=True)],
        "DARTS_lr-wd_in.json": [_trial(cell_net, 1, lr=0.3, wd=1e-4)],
        "ResNeXt-A.json": [_trial(dict(BOTTLENECK_SPEC, stem_w=16), 1, epochs=6)],
        "ResNet.json": [_trial(dict(BASIC_SPEC), 1), _trial({"ds": [1, 2, 2, 2], "ss": [1, 1, 2, 2], "ws": [8, 8, 16, 32]}, 1)],
        "Vanilla_reruns.json": [_trial(dict(BASIC_SPEC), 3)],
    }
    for name, records in files.items():
        (raw / name).write_text(json.dumps(records))  # NaN as the release writes it
    out = tmp / "db"
    proc = subprocess.run([sys.executable, "-m", "nni.nas.benchmarks.nds.db_gen", str(raw), "--out", str(out / "nds.db"),
                           "--quiet"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "8 trials written" in proc.stdout
    return out


@pytest.fixture
def nds_dir(nds_db, monkeypatch):
    monkeypatch.setenv("NASBENCHMARK_DIR", str(nds_db))
    return nds_db


def test_file_names():
    assert parse_file_name("DARTS_lr-wd_in.json") == {"proposer": "darts", "model_family": "nas_cell",
                                                      "generator": "tune_lr_wd", "dataset": "imagenet"}
    assert parse_file_name("PNAS_fix-w-d.json")["generator"] == "fix_w_d"
    assert parse_file_name("ResNet-B.json") == {"proposer": "resnet-b", "model_family": "residual_bottleneck",
                                                "generator": "random", "dataset": "cifar10"}
    with pytest.raises(ValueError, match=r"Mobile.json: not an NDS file name"):
        parse_file_name("Mobile.json")


def test_nas_cell_round_trip(nds_dir):
    cell_spec = _cell_spec()
    assert cell_spec["normal_1_op_x"] == "sep_conv_3x3" and cell_spec["reduce_4_input_y"] == 5
    rows = list(query_nds_trial_stats("nas_cell", None, None, CELL_MODEL_SPEC, cell_spec, "cifar10"))
    assert [r["seed"] for r in rows] == [1, 2]
    for t in rows:
        assert t["config"]["model_spec"] == CELL_MODEL_SPEC and t["config"]["cell_spec"] == cell_spec
        assert t["config"]["proposer"] == "amoeba" and t["config"]["generator"] == "random"
        assert t["config"]["num_epochs"] == 4 and t["config"]["base_lr"] == 0.1 and t["config"]["weight_decay"] == 5e-4
    assert type(rows[0]["config"]["model_spec"]["aux"]) is bool and type(rows[0]["config"]["model_spec"]["drop_prob"]) is float
    # the same dicts with their keys in another order
    shuffled_cell = dict(reversed(list(cell_spec.items())))
    shuffled_model = dict(reversed(list(CELL_MODEL_SPEC.items())))
    assert [r["id"] for r in query_nds_trial_stats("nas_cell", None, None, shuffled_model, shuffled_cell, "cifar10")] == \
        [r["id"] for r in rows]


def test_stats_are_accuracies_and_millions(nds_dir):
    t = next(query_nds_trial_stats("residual_bottleneck", None, None, BOTTLENECK_SPEC, None, "cifar10",
                                   include_intermediates=True))
    assert t["config"]["proposer"] == "resnext-a" and t["config"]["cell_spec"] == {} and t["config"]["num_epochs"] == 6
    assert t["final_train_acc"] == pytest.approx(100 - 30.0) and t["best_train_acc"] == pytest.approx(70.0)
    assert t["final_test_acc"] == pytest.approx(100 - 35.0) and t["best_test_acc"] == pytest.approx(100 - 34.0)
    assert t["final_train_loss"] == pytest.approx(0.5) and t["best_train_loss"] == pytest.approx(0.5)
    assert t["parameters"] == pytest.approx(1.500001) and t["flops"] == pytest.approx(250.0) and t["iter_time"] == 0.05
    assert [r["current_epoch"] for r in t["intermediates"]] == [1, 2, 3, 4, 5, 6]
    assert t["intermediates"][0] == {"id": t["intermediates"][0]["id"], "current_epoch": 1, "train_loss": 2.0,
                                     "train_acc": 60.0, "test_acc": 58.0}


def test_nan_loss_is_none(nds_dir):
    (t,) = query_nds_trial_stats("nas_cell", "amoeba", None, dict(CELL_MODEL_SPEC, width=16), None, None,
                                 include_intermediates=True)
    assert t["final_train_loss"] is None and t["best_train_loss"] == pytest.approx(1.4)
    assert t["intermediates"][-1]["train_loss"] is None and t["intermediates"][0]["train_loss"] == 2.0


def test_filters_and_wildcards(nds_dir):
    assert len(list(query_nds_trial_stats(None, None, None, None, None, None))) == 8
    assert len(list(query_nds_trial_stats(None, "amoeba", None, None, None, None, None))) == 3
    assert len(list(query_nds_trial_stats("nas_cell", None, None, None, None, None))) == 4
    assert len(list(query_nds_trial_stats(None, None, "tune_lr_wd", None, None, None))) == 1
    assert len(list(query_nds_trial_stats(None, None, None, None, None, "imagenet"))) == 1
    assert len(list(query_nds_trial_stats(None, None, None, None, None, None, num_epochs=6))) == 1
    assert len(list(query_nds_trial_stats(None, None, None, None, None, None, num_epochs=6.0))) == 1
    assert len(list(query_nds_trial_stats(None, None, None, None, {}, None))) == 4
    rows = list(query_nds_trial_stats("residual_basic", "resnet", "random", BASIC_SPEC, {}, "cifar10"))
    assert len(rows) == 1 and rows[0]["config"]["model_spec"] == BASIC_SPEC
    first = next(query_nds_trial_stats("vanilla", None, None, None, None, None))
    assert first["config"]["proposer"] == "vanilla" and first["seed"] == 3


def test_reduction_mean(nds_dir):
    (mean,) = query_nds_trial_stats("nas_cell", "amoeba", None, CELL_MODEL_SPEC, None, None, reduction="mean",
                                    include_intermediates=True)
    assert mean["final_train_acc"] == pytest.approx((66.0 + 76.0) / 2) and "seed" not in mean
    assert mean["intermediates"][0]["test_acc"] == pytest.approx(100 - 37.0)
    assert len(list(query_nds_trial_stats(None, None, None, None, None, None, reduction="mean"))) == 7


@pytest.mark.parametrize("args,match", [
    (("cells", None, None, None, None, None), r"model_family: 'cells' is not one of 'nas_cell', 'residual_bottleneck'"),
    ((None, "google", None, None, None, None), r"proposer: 'google' is not one of 'nasnet'"),
    ((None, None, "grid", None, None, None), r"generator: 'grid' is not one of 'random', 'fix_w_d', 'tune_lr_wd'"),
    ((None, None, None, None, None, "mnist"), r"dataset: 'mnist' is not one of 'cifar10', 'imagenet'"),
    ((None, None, None, [1, 2], None, None), r"model_spec: expected a dict \(or None for any\), got list"),
])
def test_bad_arguments(nds_dir, args, match):
    with pytest.raises(ValueError, match=match):
        query_nds_trial_stats(*args)


def test_missing_database(tmp_path, monkeypatch):
    monkeypatch.setenv("NASBENCHMARK_DIR", str(tmp_path))
    with pytest.raises(BenchmarkDatabaseNotFoundError, match=r"NDS database not found: .*nds.db; create it with "
                       r"`python -m nni.nas.benchmarks.nds.db_gen"):
        query_nds_trial_stats(None, None, None, None, None, None)


def test_db_gen_rejects_unknown_operators(tmp_path):
    bad = _trial({"genotype": {"normal": [["conv_9x9", 0], ["none", 1]], "normal_concat": [2],
                               "reduce": [["none", 0], ["none", 1]], "reduce_concat": [2]},
                  "width": 8, "depth": 2, "aux": False, "drop_prob": 0.0}, 1)
    (tmp_path / "ENAS.json").write_text(json.dumps([bad]))
    proc = subprocess.run([sys.executable, "-m", "nni.nas.benchmarks.nds.db_gen", str(tmp_path / "ENAS.json"),
                           "--out", str(tmp_path / "nds.db")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "ENAS.json[0]: genotype.normal[0] operator 'conv_9x9' is not one of" in proc.stderr
    assert not (tmp_path / "nds.db").exists()


def test_constants():
    assert CONV_7X1_1X7 == "conv_7x1_1x7" and NdsTrialConfig._meta.table_name == "ndstrialconfig"
