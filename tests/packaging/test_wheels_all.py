"""Install mode (b): every distribution's wheel into one fresh venv."""
from __future__ import annotations

import pytest


pytestmark = pytest.mark.slow

CHECK = r"""
import importlib, importlib.metadata as md, importlib.util, json, sys
import nni
mods = ["nni.algorithms.hpo", "nni.training_services.local", "nni.server", "nni.tools.nnictl",
        "nni.hpo_benchmark", "nni.runtime.registry", "nni.training_services.remote", "nni.compression.pytorch",
        "nni.algorithms.compression.pytorch.pruning", "nni.algorithms.compression.v2.pytorch.pruning",
        "nni.algorithms.compression.pytorch.quantization", "nni.retiarii", "nni.retiarii.nn.pytorch",
        "nni.retiarii.evaluator", "nni.nas.benchmarks.nasbench201"]
for m in mods:
    importlib.import_module(m)
from nni.runtime.distributions import NotBuiltYetError, installed_distributions
not_built = {}
for m in ["nni.retiarii", "nni.compression", "nni.feature_engineering", "nni.training_services.remote",
          "nni.training_services.kubernetes", "nni.nas.benchmarks"]:
    try:
        importlib.import_module(m)
    except NotBuiltYetError as err:
        not_built[m] = err.distribution
heavy = [h for h in ("torch", "paramiko", "kubernetes") if importlib.util.find_spec(h) is not None]
print(json.dumps({"dists": installed_distributions(), "path": list(nni.__path__),
                  "version": nni.__version__, "not_built": not_built, "heavy": heavy}))
"""


def test_all_wheels_in_one_venv(wheel_dir, fresh_venv, sh):
    import json

    wheels = sorted(wheel_dir.glob("*.whl"))
    sh([fresh_venv, "-m", "pip", "install", "-q", *wheels])
    out = json.loads(sh([fresh_venv, "-c", CHECK], cwd=fresh_venv.parent).stdout)
    assert out["version"] == "0.1.0"
    # One site-packages folder holds the whole namespace: no editable paths leaked in.
    assert len(out["path"]) == 1 and "site-packages" in out["path"][0]
    for dist in ["nni", "nni-core", "nni-hpo", "nni-nas", "nni-compress", "nni-fe", "nni-ts-local",
                 "nni-ts-remote", "nni-ts-kubernetes", "nni-webui-server", "nni-cli", "nni-benchmarks"]:
        assert out["dists"].get(dist) == "0.1.0", dist
    assert out["not_built"] == {}  # every part is built
    # torch (nni-compress), paramiko (nni-ts-remote) and the Kubernetes client (nni-ts-kubernetes)
    # come with built parts
    assert sorted(out["heavy"]) == ["kubernetes", "paramiko", "torch"]
