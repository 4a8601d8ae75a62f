"""The distribution is installed; its HPO benchmark is built, its NAS benchmark databases are not yet
(importing ``nni.nas.benchmarks`` says so) and it declares no dependency only they would use."""
import importlib
import importlib.metadata
import tomllib
from pathlib import Path

import pytest

from nni.runtime.distributions import NotBuiltYetError

PACKAGE = Path(__file__).resolve().parents[1]


def test_distribution_installed():
    assert importlib.metadata.version("nni-benchmarks") == "0.1.0"


def test_hpo_benchmark_comes_from_this_distribution():
    mod = importlib.import_module("nni.hpo_benchmark")
    assert Path(mod.__file__).resolve().is_relative_to(PACKAGE / "src")


def test_nas_benchmarks_say_they_are_not_built_yet():
    with pytest.raises(ModuleNotFoundError) as info:
        importlib.import_module("nni.nas.benchmarks.nasbench201")
    err = info.value
    assert isinstance(err, NotBuiltYetError) and err.distribution == "nni-benchmarks" and err.name == "nni.nas.benchmarks"
    message = str(err)
    assert "\n" not in message and message.startswith("nni.nas.benchmarks: the NAS benchmark databases")
    assert "not built yet" in message and "nni-benchmarks" in message


def test_declares_no_dependency_of_the_unbuilt_nas_benchmarks():
    deps = tomllib.loads((PACKAGE / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    assert not [d for d in deps if d.lower().startswith(("peewee", "torch"))]
