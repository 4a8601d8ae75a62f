"""Install mode (c): one distribution alone with its dependencies (nni-core + nni-hpo)."""
from __future__ import annotations

import json

import pytest


pytestmark = pytest.mark.slow

CHECK = r"""
import importlib.metadata as md, json, sys
import nni
assert "torch" not in sys.modules
import nni.algorithms.hpo
from nni.runtime import registry
names = registry.list_names("tuner") + registry.list_names("assessor") + registry.list_names("advisor")
loaded = {}
for kind in ("tuner", "assessor", "advisor"):
    for name in registry.list_names(kind):
        loaded[name] = registry.load_class(kind, name).__name__
try:
    import nni.server
    server = True
except ImportError:
    server = False
print(json.dumps({"names": names, "loaded": loaded, "server": server,
                  "dists": sorted(d.metadata["Name"] for d in md.distributions() if d.metadata["Name"].startswith("nni"))}))
"""


def test_core_and_hpo_alone(wheel, fresh_venv, sh):
    sh([fresh_venv, "-m", "pip", "install", "-q", wheel("nni-core"), wheel("nni-hpo")])
    out = json.loads(sh([fresh_venv, "-c", CHECK], cwd=fresh_venv.parent).stdout)
    assert out["dists"] == ["nni-core", "nni-hpo"]
    assert out["server"] is False, "nni.server must not exist without nni-webui-server"
    # Every entry point nni-hpo declares resolves to a class in this minimal install.
    assert set(out["loaded"]) == set(out["names"])


def test_core_alone_imports_light(wheel, fresh_venv, sh):
    sh([fresh_venv, "-m", "pip", "install", "-q", wheel("nni-core")])
    code = "import sys, nni; assert 'torch' not in sys.modules and 'scipy' not in sys.modules; print(nni.__version__)"
    assert sh([fresh_venv, "-c", code], cwd=fresh_venv.parent).stdout.strip() == "0.1.0"
    with pytest.raises(AssertionError):
        sh([fresh_venv, "-c", "import nni.algorithms.hpo"], cwd=fresh_venv.parent)
