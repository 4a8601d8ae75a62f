"""nni-compress installs its modules, depends on torch, and `import nni.compression` stays light."""
import importlib.metadata
import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1]


def test_distribution_installed():
    assert importlib.metadata.version("nni-compress") == "0.1.0"


def test_modules_come_from_this_distribution():
    for module in ("nni.compression", "nni.compression.pytorch", "nni.algorithms.compression.pytorch.pruning"):
        spec = importlib.util.find_spec(module)
        assert Path(spec.origin).resolve().is_relative_to(PACKAGE / "src"), module


def test_shared_namespace_folders_have_no_init():
    assert not (PACKAGE / "src/nni/__init__.py").exists()
    assert not (PACKAGE / "src/nni/algorithms/__init__.py").exists()
    assert not (PACKAGE / "src/nni/algorithms/compression/__init__.py").exists()


def test_declares_torch_dependency():
    project = tomllib.loads((PACKAGE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "nni-core" in project["dependencies"] and "torch" in project["dependencies"]


def test_import_nni_compression_does_not_import_torch():
    code = "import sys, nni, nni.compression; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_names():
    from nni.algorithms.compression.pytorch import pruning
    from nni.algorithms.compression.pytorch.pruning import iterative_pruner, one_shot_pruner
    from nni.compression.pytorch import compressor

    for name in ("LevelPruner", "L1FilterPruner", "L2FilterPruner", "FPGMPruner", "SlimPruner", "AGPPruner",
                 "ActivationAPoZRankFilterPruner", "ActivationMeanRankFilterPruner", "TaylorFOWeightFilterPruner",
                 "LotteryTicketPruner", "ADMMPruner"):
        assert isinstance(getattr(pruning, name), type)
    assert one_shot_pruner.L1FilterPruner is pruning.L1FilterPruner
    assert iterative_pruner.AGPPruner is pruning.AGPPruner
    for name in ("Compressor", "Pruner", "PrunerModuleWrapper"):
        assert isinstance(getattr(compressor, name), type)


def test_speedup_names_are_lazy_attributes():
    code = ("import sys, nni.compression.pytorch as p; assert 'nni.compression.pytorch.speedup' not in sys.modules; "
            "import nni.compression.pytorch.speedup as s; assert p.ModelSpeedup is s.ModelSpeedup; "
            "assert p.apply_compression_results is s.apply_compression_results")
    subprocess.run([sys.executable, "-c", code], check=True)
    import nni.compression.pytorch as p

    with pytest.raises(AttributeError, match="has no attribute 'NoSuchThing'"):
        p.NoSuchThing  # noqa: B018
