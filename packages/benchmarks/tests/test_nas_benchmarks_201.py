"""NAS-Bench-201: a small release in the official .pth format, written here, turned into the
database by ``db_gen``, then queried."""
import math

import pytest

torch = pytest.importorskip("torch")

from nni.nas.benchmarks import BenchmarkDatabaseNotFoundError, database_dir
from nni.nas.benchmarks import query_speed
from nni.nas.benchmarks.nasbench201 import (AVG_POOL_3X3, CONV_1X1, SKIP_CONNECT, Nb201TrialConfig,
                                            query_nb201_trial_stats)
from nni.nas.benchmarks.nasbench201.db_gen import generate, parse_arch_str

ARCH_STRS = [
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
]
DOC_ARCH = {"0_1": AVG_POOL_3X3, "0_2": CONV_1X1, "1_2": SKIP_CONNECT, "0_3": CONV_1X1, "1_3": SKIP_CONNECT, "2_3": SKIP_CONNECT}


def _results(dataset, seed, epochs, base, nan_loss=False):
    splits = {"cifar10-valid": ["x-valid", "ori-test"]}.get(dataset, ["x-valid", "x-test", "ori-test"])
    offset = {"x-valid": 1.0, "x-test": 2.0, "ori-test": 3.0}
    return {
        "name": dataset, "seed": seed, "epochs": epochs, "net_state_dict": None,
        "train_acc1es": {e: base + e / epochs for e in range(epochs)},
        "train_acc5es": {e: 99.0 for e in range(epochs)},
        "train_losses": {e: (math.nan if nan_loss else 1.0 / (e + 1)) for e in range(epochs)},
        "train_times": {e: 2.0 for e in range(epochs)},
        "eval_names": splits,
        "eval_acc1es": {f"{s}@{e}": base + offset[s] + e / epochs for s in splits for e in range(epochs)},
        "eval_losses": {f"{s}@{e}": (math.nan if nan_loss else 0.5 + offset[s]) for s in splits for e in range(epochs)},
        "eval_times": {f"{s}@{e}": 0.1 * offset[s] for s in splits for e in range(epochs)},
        "params": 0.5 + base / 1000, "flop": 80.0, "latency": [0.01, 0.03],
        "arch_config": {"name": "infer.tiny", "C": 16, "N": 5, "num_classes": 10},
    }


def _arch_results(index, epochs, datasets):
    all_results = {}
    for dataset, seeds, nan_loss in datasets:
        for seed in seeds:
            all_results[(dataset, seed)] = _results(dataset, seed, epochs, 10.0 * (index + 1) + seed / 1000, nan_loss)
    return {"arch_index": index, "arch_str": ARCH_STRS[index], "all_results": all_results,
            "dataset_seed": {d: list(s) for d, s, _ in datasets}, "clear_net_done": True}


@pytest.fixture(scope="module")
def nb201_db(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("nb201")
    raw = {"meta_archs": ARCH_STRS, "total_archs": len(ARCH_STRS), "evaluated_indexes": [0, 1, 2], "arch2infos": {}}
    for i in range(len(ARCH_STRS)):
        raw["arch2infos"][i] = {
            "less": _arch_results(i, 12, [("cifar10-valid", [777, 888], False), ("cifar100", [777], False)]),
            "full": _arch_results(i, 20, [("cifar10-valid", [777], False), ("ImageNet16-120", [777], i == 2)]),
        }
    path = tmp_path / "NAS-Bench-201-v1_1-096897.pth"
    torch.save(raw, path)
    out_dir = tmp_path / "db"
    assert generate(str(path), str(out_dir / "nasbench201.db")) == 3 * (3 + 2)
    return out_dir


@pytest.fixture
def nb201_dir(nb201_db, monkeypatch):
    monkeypatch.setenv("NASBENCHMARK_DIR", str(nb201_db))
    return nb201_db


def test_parse_arch_str():
    assert parse_arch_str(ARCH_STRS[0]) == DOC_ARCH


def test_docs_query_and_key_order(nb201_dir):
    rows = list(query_nb201_trial_stats(DOC_ARCH, 12, "cifar100"))
    assert len(rows) == 1
    row = rows[0]
    assert row["config"]["arch"] == DOC_ARCH and row["config"]["num_epochs"] == 12
    assert row["config"]["dataset"] == "cifar100" and row["config"]["num_channels"] == 16 and row["config"]["num_cells"] == 5
    assert row["seed"] == 777 and "intermediates" not in row and isinstance(row["id"], int)
    # final = the last epoch of the raw per-epoch tables; valid/test/ori-test come from their splits
    base = 10.777
    assert row["train_acc"] == pytest.approx(base + 11 / 12)
    assert row["valid_acc"] == pytest.approx(base + 1 + 11 / 12)
    assert row["test_acc"] == pytest.approx(base + 2 + 11 / 12)
    assert row["ori_test_acc"] == pytest.approx(base + 3 + 11 / 12)
    assert row["train_loss"] == pytest.approx(1 / 12) and row["ori_test_loss"] == pytest.approx(3.5)
    assert row["training_time"] == pytest.approx(24.0) and row["latency"] == pytest.approx(0.02)
    assert row["test_evaluation_time"] == pytest.approx(0.2) and row["flops"] == 80.0
    reordered = dict(reversed(list(DOC_ARCH.items())))
    assert [r["id"] for r in query_nb201_trial_stats(reordered, 12, "cifar100")] == [row["id"]]


def test_cifar10_valid_tests_on_the_original_test_set(nb201_dir):
    row = next(query_nb201_trial_stats(DOC_ARCH, 20, "cifar10-valid"))
    assert row["test_acc"] == row["ori_test_acc"] == pytest.approx(10.777 + 3 + 19 / 20)


def test_wildcards_and_filters(nb201_dir):
    assert len(list(query_nb201_trial_stats(None, None, None))) == 15
    assert len(list(query_nb201_trial_stats(None, 12, None))) == 9
    assert len(list(query_nb201_trial_stats(None, 200, None))) == 0
    assert len(list(query_nb201_trial_stats(None, None, "imagenet16-120"))) == 3
    assert len(list(query_nb201_trial_stats(DOC_ARCH, None, None))) == 5
    assert len(list(query_nb201_trial_stats(DOC_ARCH, 12, "cifar10-valid"))) == 2
    assert {r["config"]["dataset"] for r in query_nb201_trial_stats(None, 20, None)} == {"cifar10-valid", "imagenet16-120"}


def test_intermediates(nb201_dir):
    rows = list(query_nb201_trial_stats(DOC_ARCH, None, "imagenet16-120", include_intermediates=True))
    assert len(rows) == 1
    inters = rows[0]["intermediates"]
    assert [r["current_epoch"] for r in inters] == list(range(1, 21))
    assert "trial" not in inters[0] and "id" in inters[0]
    assert inters[4]["train_acc"] == pytest.approx(10.777 + 4 / 20)
    assert inters[4]["test_acc"] == pytest.approx(10.777 + 2 + 4 / 20)
    assert inters[4]["train_loss"] == pytest.approx(1 / 5)


def test_nan_losses_are_none(nb201_dir):
    arch = parse_arch_str(ARCH_STRS[2])
    row = next(query_nb201_trial_stats(arch, 20, "imagenet16-120", include_intermediates=True))
    assert row["train_loss"] is None and row["valid_loss"] is None and row["test_loss"] is None and row["ori_test_loss"] is None
    assert row["train_acc"] is not None
    assert all(r["train_loss"] is None and r["valid_loss"] is None for r in row["intermediates"])


def test_reduction_mean(nb201_dir):
    trials = list(query_nb201_trial_stats(DOC_ARCH, 12, "cifar10-valid", include_intermediates=True))
    assert sorted(t["seed"] for t in trials) == [777, 888]
    assert list(query_nb201_trial_stats(DOC_ARCH, 12, "cifar10-valid", reduction="none")) == \
        [{k: v for k, v in t.items() if k != "intermediates"} for t in trials]
    means = list(query_nb201_trial_stats(DOC_ARCH, 12, "cifar10-valid", reduction="mean", include_intermediates=True))
    assert len(means) == 1
    mean = means[0]
    assert "seed" not in mean and "id" not in mean and mean["config"] == trials[0]["config"]
    assert mean["train_acc"] == pytest.approx((trials[0]["train_acc"] + trials[1]["train_acc"]) / 2)
    assert mean["parameters"] == pytest.approx((trials[0]["parameters"] + trials[1]["parameters"]) / 2)
    assert len(mean["intermediates"]) == 12
    assert mean["intermediates"][3]["valid_acc"] == pytest.approx(
        (trials[0]["intermediates"][3]["valid_acc"] + trials[1]["intermediates"][3]["valid_acc"]) / 2)
    # one mean per config
    assert len(list(query_nb201_trial_stats(None, None, None, reduction="mean"))) == 12


@pytest.mark.parametrize("args,match", [
    (({"0_1": "conv_5x5", "0_2": "none", "0_3": "none", "1_2": "none", "1_3": "none", "2_3": "none"}, 12, None),
     r"arch\['0_1'\]: 'conv_5x5' is not one of none, skip_connect"),
    (({"0_1": "none"}, 12, None), r"arch: keys \['0_1'\] are not the NAS-Bench-201 edges"),
    ((None, 12, "cifar20"), r"dataset: 'cifar20' is not one of 'cifar10-valid'"),
])
def test_bad_arguments_are_one_line_errors(nb201_dir, args, match):
    with pytest.raises(ValueError, match=match) as info:
        query_nb201_trial_stats(*args)
    assert "\n" not in str(info.value)


def test_bad_reduction(nb201_dir):
    with pytest.raises(ValueError, match=r"reduction: 'median' is not supported; allowed: None, 'none', 'mean'"):
        query_nb201_trial_stats(None, None, None, reduction="median")


def test_missing_database(tmp_path, monkeypatch):
    monkeypatch.setenv("NASBENCHMARK_DIR", str(tmp_path / "empty"))
    with pytest.raises(BenchmarkDatabaseNotFoundError) as info:
        query_nb201_trial_stats(None, None, None)  # raised at the call, before iterating
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / "empty" / "nasbench201.db") in message
    assert "python -m nni.nas.benchmarks.nasbench201.db_gen" in message
    assert not (tmp_path / "empty" / "nasbench201.db").exists()  # no empty database created


def test_nasbenchmark_dir_override_and_default(nb201_dir, tmp_path, monkeypatch):
    assert database_dir() == nb201_dir
    other = tmp_path / "other"
    query_speed.build_database(str(other), archs=7, epochs=3)
    assert len(list(query_nb201_trial_stats(None, None, None))) == 15
    monkeypatch.setenv("NASBENCHMARK_DIR", str(other))
    assert len(list(query_nb201_trial_stats(None, None, None))) == 7
    monkeypatch.setenv("NASBENCHMARK_DIR", str(nb201_dir))
    assert len(list(query_nb201_trial_stats(None, None, None))) == 15
    monkeypatch.delenv("NASBENCHMARK_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert database_dir() == tmp_path / "home" / ".cache" / "nni" / "nasbenchmark"


def test_query_speed_benchmark_small(tmp_path):
    info = query_speed.build_database(str(tmp_path), archs=100, epochs=12)
    assert info["trials"] == 100 and info["intermediate_rows"] == 1200
    result = query_speed.measure(str(tmp_path), epochs=12, queries=20, archs=100)
    assert result["queries"] == 20 and 0 < result["median_ms"] <= result["max_ms"]
    assert len(query_speed.all_archs()) == 15625


def test_peewee_models_read_the_database(nb201_dir):
    from nni.nas.benchmarks.nasbench201.model import DATABASE
    DATABASE.connect()
    assert Nb201TrialConfig.select().where(Nb201TrialConfig.dataset == "cifar100").count() == 3
