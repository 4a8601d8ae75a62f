"""The distribution is installed; its HPO benchmark and its NAS benchmark databases come from its
own source folder, and it declares peewee, which the NAS benchmark databases use."""
import importlib
import importlib.metadata
import tomllib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]


def test_distribution_installed():
    assert importlib.metadata.version("nni-benchmarks") == "0.1.0"


def test_hpo_benchmark_comes_from_this_distribution():
    mod = importlib.import_module("nni.hpo_benchmark")
    assert Path(mod.__file__).resolve().is_relative_to(PACKAGE / "src")


def test_nas_benchmarks_come_from_this_distribution():
    for name in ("nni.nas.benchmarks", "nni.nas.benchmarks.nasbench101", "nni.nas.benchmarks.nasbench201",
                 "nni.nas.benchmarks.nds"):
        mod = importlib.import_module(name)
        assert Path(mod.__file__).resolve().is_relative_to(PACKAGE / "src"), name
    from nni.nas.benchmarks.nasbench201 import query_nb201_trial_stats
    assert callable(query_nb201_trial_stats)


def test_declares_peewee_for_the_nas_benchmarks():
    deps = tomllib.loads((PACKAGE / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    assert [d for d in deps if d.lower().startswith("peewee")]
