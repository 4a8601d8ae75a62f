"""The distribution is installed and its import path lives in the shared ``nni`` namespace."""
import importlib
import importlib.metadata


def test_distribution_installed():
    assert importlib.metadata.version("nni-ts-kubernetes") == "0.1.0"


def test_import_path_in_nni_namespace():
    mod = importlib.import_module("nni.training_services.kubernetes")
    import nni

    assert mod.__name__ == "nni.training_services.kubernetes"
    assert nni.__file__ is not None  # nni-core's regular package, not a bare namespace
