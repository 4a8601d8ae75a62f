"""nni-fe is installed but ships no implementation yet: its module says so when imported,
and the distribution drags in no dependency it does not use."""
import importlib
import importlib.metadata
import importlib.util
import tomllib
from pathlib import Path

import pytest

from nni.runtime.distributions import NotBuiltYetError

PACKAGE = Path(__file__).resolve().parents[1]


def test_distribution_installed():
    assert importlib.metadata.version("nni-fe") == "0.1.0"


def test_module_comes_from_this_distribution():
    spec = importlib.util.find_spec("nni.feature_engineering")
    assert Path(spec.origin).resolve().is_relative_to(PACKAGE / "src")


@pytest.mark.parametrize("module", ["nni.feature_engineering", "nni.feature_engineering.gradient_selector"])
def test_import_says_which_distribution_and_feature_is_not_built_yet(module):
    with pytest.raises(ModuleNotFoundError) as info:
        importlib.import_module(module)
    err = info.value
    assert isinstance(err, NotBuiltYetError) and err.distribution == "nni-fe" and err.name == "nni.feature_engineering"
    message = str(err)
    assert "\n" not in message and message.startswith("nni.feature_engineering: ")
    assert "feature engineering" in message and "not built yet" in message and "nni-fe" in message


def test_declares_no_dependency_it_does_not_use_yet():
    project = tomllib.loads((PACKAGE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["dependencies"] == ["nni-core"]
