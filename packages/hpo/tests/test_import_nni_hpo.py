"""The distribution is installed and its import path lives in the shared ``nni`` namespace."""
import importlib
import importlib.metadata
from pathlib import Path


def test_distribution_installed():
    assert importlib.metadata.version("nni-hpo") == "0.1.0"


def test_import_path_in_nni_namespace():
    mod = importlib.import_module("nni.algorithms.hpo")
    import nni

    assert mod.__name__ == "nni.algorithms.hpo"
    assert Path(mod.__file__).resolve().is_relative_to(Path(__file__).resolve().parents[1] / "src")
    # nni itself is nni-core's regular package, not a bare namespace
    assert Path(nni.__file__).name == "__init__.py" and nni.__version__ == importlib.metadata.version("nni-core")
