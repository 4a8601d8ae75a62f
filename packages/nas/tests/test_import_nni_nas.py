"""nni-nas installs `nni.retiarii`, which imports torch but never the NNI manager or web server."""
import importlib.metadata
import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

import torch

PACKAGE = Path(__file__).resolve().parents[1]


def test_distribution_installed():
    assert importlib.metadata.version("nni-nas") == "0.1.0"


def test_modules_come_from_this_distribution():
    for module in ("nni.retiarii", "nni.retiarii.nn.pytorch"):
        spec = importlib.util.find_spec(module)
        assert Path(spec.origin).resolve().is_relative_to(PACKAGE / "src"), module


def test_shared_namespace_folders_have_no_init():
    assert not (PACKAGE / "src/nni/__init__.py").exists()


def test_declares_torch_dependency():
    project = tomllib.loads((PACKAGE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "nni-core" in project["dependencies"] and "torch" in project["dependencies"]


def test_import_pulls_in_torch_but_not_the_server_or_lightning():
    code = ("import sys, nni; assert 'torch' not in sys.modules; import nni.retiarii, nni.retiarii.nn.pytorch; "
            "assert 'torch' in sys.modules; "
            "bad = [m for m in sys.modules if m.startswith(('nni.server', 'nni.tools.nnictl', 'lightning', 'pytorch_lightning'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_names():
    import nni.retiarii as retiarii
    import nni.retiarii.nn.pytorch as nn

    for name in ("model_wrapper", "basic_unit", "fixed_arch", "Mutator", "Sampler", "InvalidMutation",
                 "Model", "Graph", "Node", "Edge", "Operation"):
        assert hasattr(retiarii, name), name
    for name in ("LayerChoice", "InputChoice", "ValueChoice", "ChosenInputs", "Repeat", "Cell", "NasBench101Cell", "NasBench201Cell",
                 "AutoActivation", "Placeholder"):
        assert isinstance(getattr(nn, name), type), name


def test_every_torch_nn_name_is_reachable():
    import nni.retiarii.nn.pytorch as nn

    missing = [name for name in dir(torch.nn) if not name.startswith("_") and not hasattr(nn, name)]
    assert not missing
    assert nn.functional is torch.nn.functional and nn.Sequential is torch.nn.Sequential
    conv = nn.Conv2d(1, 4, 3)
    assert isinstance(conv, torch.nn.Conv2d) and type(conv) is not torch.nn.Conv2d
    assert nn.Conv2d.__module__ == "nni.retiarii.nn.pytorch" and nn.Conv2d.__name__ == "Conv2d"
